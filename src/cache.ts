import { createHash, randomBytes, type Hash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { errnoCode, GitmlError } from './errors';
import { isValidOid, shortOid } from './pointer';

/**
 * The local object cache: `<root>/objects/<aa>/<bb>/<oid>`, temp files in `<root>/tmp` on the same
 * filesystem. An object only ever appears under its name after its bytes were hashed and matched,
 * so a killed process leaves at most a temp file, never a wrong object.
 */
export class ObjectCache {
  readonly objectsDir: string;
  readonly tmpDir: string;
  private tmpReady: Promise<unknown> | null = null;

  constructor(
    readonly root: string,
    private readonly options: { fsync: boolean } = { fsync: true },
  ) {
    this.objectsDir = path.join(root, 'objects');
    this.tmpDir = path.join(root, 'tmp');
  }

  pathOf(oid: string): string {
    if (!isValidOid(oid)) throw new GitmlError('E_INTERNAL', `refusing to build a cache path from an invalid oid: ${JSON.stringify(oid)}`);
    return path.join(this.objectsDir, oid.slice(0, 2), oid.slice(2, 4), oid);
  }

  /** True when the object is present with the expected size (when one is given). */
  async has(oid: string, size?: number): Promise<boolean> {
    try {
      const st = await fsp.stat(this.pathOf(oid));
      return st.isFile() && (size === undefined || st.size === size);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return false;
      throw cacheIoError(`cannot read the cache at ${this.root}`, e);
    }
  }

  async createWriter(): Promise<CacheWriter> {
    try {
      // Once per process: this runs for every object of a checkout or a push.
      this.tmpReady ??= fsp.mkdir(this.tmpDir, { recursive: true });
      await this.tmpReady.catch((e) => {
        this.tmpReady = null;
        throw e;
      });
      const tmpPath = path.join(this.tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
      const handle = await fsp.open(tmpPath, 'wx', 0o644);
      return new CacheWriter(this, tmpPath, handle, this.options.fsync);
    } catch (e) {
      throw cacheIoError(`cannot write to the cache at ${this.root}`, e);
    }
  }

  /**
   * Stores a stream as an object. With `expected`, the bytes must hash to it or nothing is stored and
   * E_OBJECT_CORRUPT is thrown.
   */
  async writeStream(source: Readable | AsyncIterable<Buffer>, expected?: { oid: string; size: number }): Promise<{ oid: string; size: number }> {
    const writer = await this.createWriter();
    try {
      for await (const chunk of source) await writer.write(chunk as Buffer);
      return await writer.commit(expected);
    } catch (e) {
      await writer.abort();
      throw e;
    }
  }

  /** The object's bytes, or a half-open range of them. */
  openRead(oid: string, range?: { start: number; end: number }): fs.ReadStream {
    return fs.createReadStream(this.pathOf(oid), {
      highWaterMark: 1 << 20,
      ...(range ? { start: range.start, end: Math.max(range.start, range.end) - 1 } : {}),
    });
  }

  /** Every object in the cache, in no particular order. Names that are not oids are skipped. */
  async *list(): AsyncIterable<{ oid: string; size: number; path: string }> {
    for (const a of await readdirOrEmpty(this.objectsDir)) {
      for (const b of await readdirOrEmpty(path.join(this.objectsDir, a))) {
        const dir = path.join(this.objectsDir, a, b);
        for (const name of await readdirOrEmpty(dir)) {
          if (!isValidOid(name) || name.slice(0, 2) !== a || name.slice(2, 4) !== b) continue;
          const file = path.join(dir, name);
          const st = await fsp.stat(file).catch(() => null);
          if (st?.isFile()) yield { oid: name, size: st.size, path: file };
        }
      }
    }
  }

  async remove(oid: string): Promise<void> {
    await fsp.rm(this.pathOf(oid), { force: true });
  }

  /** Removes temp files older than `olderThanMs` (left by killed processes). */
  async removeStaleTemp(olderThanMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const name of await readdirOrEmpty(this.tmpDir)) {
      const file = path.join(this.tmpDir, name);
      const st = await fsp.stat(file).catch(() => null);
      if (st && now - st.mtimeMs > olderThanMs) {
        await fsp.rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }
}

/** Bytes are hashed as they are written; `commit` renames the temp file into place once it matches. */
export class CacheWriter {
  private readonly hash: Hash = createHash('sha256');
  private size = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private done = false;
  private static readonly WRITE_BATCH = 1 << 20;

  constructor(
    private readonly cache: ObjectCache,
    readonly tmpPath: string,
    private readonly handle: fsp.FileHandle,
    private readonly fsync: boolean,
  ) {}

  get bytesWritten(): number {
    return this.size;
  }

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.hash.update(chunk);
    this.size += chunk.length;
    // Small packets (64 KiB from git) are gathered into fewer, larger writes.
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= CacheWriter.WRITE_BATCH) await this.flushPending();
  }

  async commit(expected?: { oid: string; size: number }): Promise<{ oid: string; size: number }> {
    if (this.done) throw new GitmlError('E_INTERNAL', 'cache writer used after commit or abort');
    const oid = this.hash.digest('hex');
    const size = this.size;
    try {
      await this.flushPending();
      if (expected && (expected.oid !== oid || expected.size !== size)) {
        throw new GitmlError(
          'E_OBJECT_CORRUPT',
          `content does not match its pointer: expected sha256:${shortOid(expected.oid)} (${expected.size} bytes), got sha256:${shortOid(oid)} (${size} bytes)`,
        );
      }
      if (this.fsync) await this.handle.sync();
      await this.handle.close();
      this.done = true;
      const target = this.cache.pathOf(oid);
      await renameCreatingDir(this.tmpPath, target);
      return { oid, size };
    } catch (e) {
      await this.abort();
      if (e instanceof GitmlError) throw e;
      throw cacheIoError(`cannot store object sha256:${shortOid(oid)} in the cache at ${this.cache.root}`, e);
    }
  }

  async abort(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.handle.close().catch(() => undefined);
    }
    await fsp.rm(this.tmpPath, { force: true }).catch(() => undefined);
  }

  private async flushPending(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    try {
      for (let offset = 0; offset < data.length; ) {
        const { bytesWritten } = await this.handle.write(data, offset, data.length - offset);
        offset += bytesWritten;
      }
    } catch (e) {
      throw cacheIoError(`cannot write to the cache at ${this.cache.root}`, e);
    }
  }
}

function cacheIoError(message: string, cause: unknown): GitmlError {
  const code = errnoCode(cause);
  const hint =
    code === 'ENOSPC'
      ? 'The disk holding the gitml cache is full: free space, or point gitml.cachedir at a larger disk.'
      : code === 'EACCES' || code === 'EPERM'
        ? 'Check the permissions of the gitml cache directory (gitml.cachedir).'
        : 'Check that the gitml cache directory is writable (`gitml env` shows where it is).';
  return new GitmlError('E_CACHE_IO', `${message}: ${cause instanceof Error ? cause.message : String(cause)}`, { hint, cause });
}

/** rename, creating the target's directory only when it is missing (the common case is that it exists). */
async function renameCreatingDir(from: string, to: string): Promise<void> {
  try {
    await fsp.rename(from, to);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
    await fsp.mkdir(path.dirname(to), { recursive: true });
    await fsp.rename(from, to);
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
}
