import { createHash, randomBytes, type Hash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import pLimit from 'p-limit';
import type { ObjectCache } from '../cache';
import { GitmlError, isGitmlError } from '../errors';
import { shortOid } from '../pointer';
import type { BodySource, PutResult, Store } from '../store/store';
import { withRetry, type RetryPolicy } from '../transfer/retry';
import { Chunker, DEFAULT_CHUNK_PARAMS, type ChunkParams } from './cdc';
import { ChunkIndex } from './index';
import { coalesce, encodeManifest, encodePackIndex, manifestKey, packIndexKey, packKey, type Run } from './format';
import { makeDirs } from '../safe-path';

export interface ChunkedUploadOptions {
  store: Store;
  cache: ObjectCache;
  index: ChunkIndex;
  log: Logger;
  retry: RetryPolicy;
  /** Packs are sealed and uploaded once they reach this size. */
  packTarget?: number;
  /** Packs uploading at once. */
  concurrency?: number;
  params?: ChunkParams;
  onBytes?: (n: number) => void;
}

export interface ChunkedResult {
  /** Objects whose manifests are now stored. */
  oids: string[];
  /** Bytes of packs this push actually added to the store (a pack already there costs nothing). */
  newBytes: number;
}

/** A pack being filled: a temp file in the cache, its running hash, and its chunk list. */
class PackBuilder {
  id: string | null = null;
  size = 0;
  readonly chunks: [string, number, number][] = [];
  private readonly hash: Hash = createHash('sha256');
  private constructor(
    readonly file: string,
    private readonly handle: fsp.FileHandle,
  ) {}

  static async create(dir: string): Promise<PackBuilder> {
    await makeDirs(dir);
    const file = path.join(dir, `pack-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
    return new PackBuilder(file, await fsp.open(file, 'wx', 0o600));
  }

  async append(chunkHash: string, data: Buffer): Promise<number> {
    const offset = this.size;
    for (let at = 0; at < data.length; ) at += (await this.handle.write(data, at, data.length - at)).bytesWritten;
    this.hash.update(data);
    this.chunks.push([chunkHash, offset, data.length]);
    this.size += data.length;
    return offset;
  }

  async seal(): Promise<string> {
    await this.handle.close();
    this.id = this.hash.digest('hex');
    return this.id;
  }

  async dispose(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await fsp.rm(this.file, { force: true });
  }
}

interface PendingRun {
  pack: PackBuilder | string;
  offset: number;
  length: number;
}

/**
 * Stores objects as content-defined chunks in packs (docs/chunking.md): each object is read once from
 * the cache, its sha256 re-checked, cut with FastCDC, and only chunks the store does not have (per its
 * index, or earlier in this push) go into new packs. Packs upload while chunking goes on; manifests
 * are written last, after every pack they name is stored, so an interrupted push leaves at worst
 * unreferenced packs, and a re-run reuses what already arrived.
 */
export class ChunkedUploader {
  private current: PackBuilder | null = null;
  private readonly local = new Map<string, { pack: PackBuilder; offset: number; length: number }>();
  private readonly uploads: Promise<void>[] = [];
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly objects: { oid: string; size: number; runs: PendingRun[] }[] = [];
  private newBytes = 0;
  private readonly packTarget: number;

  constructor(private readonly options: ChunkedUploadOptions) {
    this.limit = pLimit(options.concurrency ?? 4);
    this.packTarget = options.packTarget ?? 16 * 1024 * 1024;
  }

  /** Chunks one cached object into packs. Its manifest is written by finish(). */
  async add(ref: { oid: string; size: number; path?: string }): Promise<void> {
    const chunker = new Chunker(this.options.params ?? DEFAULT_CHUNK_PARAMS);
    const whole = createHash('sha256');
    const runs: PendingRun[] = [];
    let size = 0;
    const take = async (chunk: Buffer) => {
      const hash = createHash('sha256').update(chunk).digest('hex');
      const known = this.options.index.get(hash) ?? this.local.get(hash);
      if (known) {
        runs.push({ pack: known.pack, offset: known.offset, length: known.length });
        return;
      }
      const pack = await this.packFor();
      const offset = await pack.append(hash, chunk);
      this.local.set(hash, { pack, offset, length: chunk.length });
      runs.push({ pack, offset, length: chunk.length });
      if (pack.size >= this.packTarget) await this.sealCurrent();
    };
    for await (const block of this.options.cache.openRead(ref.oid, undefined, ref.size)) {
      const data = block as Buffer;
      whole.update(data);
      size += data.length;
      for (const chunk of chunker.push(data)) await take(chunk);
      this.options.onBytes?.(data.length);
    }
    for (const chunk of chunker.end()) await take(chunk);
    const digest = whole.digest('hex');
    if (digest !== ref.oid || size !== ref.size) {
      await this.options.cache.remove(ref.oid);
      throw new GitmlError('E_OBJECT_CORRUPT', `the cached copy of ${ref.path ? `'${ref.path}' ` : ''}(sha256:${shortOid(ref.oid)}) is damaged; it was removed from the cache and not published`, {
        hint: 'Restore the file from a good copy (or another clone) and `git add` it again.',
      });
    }
    this.objects.push({ oid: ref.oid, size: ref.size, runs });
  }

  /** Uploads the last pack, waits for all packs, then writes the manifests. */
  async finish(): Promise<ChunkedResult> {
    await this.sealCurrent();
    const results = await Promise.allSettled(this.uploads);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const oids: string[] = [];
    const manifests = pLimit(8);
    await Promise.all(
      this.objects.map((o) =>
        manifests(async () => {
          const runs: Run[] = coalesce(o.runs.map((r) => ({ pack: typeof r.pack === 'string' ? r.pack : r.pack.id!, offset: r.offset, length: r.length })));
          const data = encodeManifest({ oid: o.oid, size: o.size, runs });
          await this.put(manifestKey(o.oid), bufferBody(data));
          oids.push(o.oid);
        }),
      ),
    );
    return { oids, newBytes: this.newBytes };
  }

  /** Removes temp packs (after a failure). */
  async abort(): Promise<void> {
    await this.current?.dispose();
    this.current = null;
  }

  private async packFor(): Promise<PackBuilder> {
    this.current ??= await PackBuilder.create(this.options.cache.tmpDir);
    return this.current;
  }

  private async sealCurrent(): Promise<void> {
    const pack = this.current;
    if (!pack) return;
    this.current = null;
    if (pack.size === 0) {
      await pack.dispose();
      return;
    }
    const id = await pack.seal();
    const task = this.limit(async () => {
      try {
        if ((await this.put(packKey(id), fileBody(pack.file, pack.size))) === 'created') this.newBytes += pack.size;
        await this.put(packIndexKey(id), bufferBody(encodePackIndex({ pack: id, chunks: pack.chunks })));
        this.options.index.add({ pack: id, chunks: pack.chunks });
        this.options.log.debug({ pack: id, bytes: pack.size, chunks: pack.chunks.length }, 'pack stored');
      } finally {
        await pack.dispose();
      }
    });
    task.catch(() => undefined); // observed in finish()
    this.uploads.push(task);
  }

  private put(key: string, body: BodySource): Promise<PutResult> {
    return withRetry(
      async () => {
        try {
          return await this.options.store.put(key, body);
        } catch (e) {
          // A pack or manifest of the wrong size under its content-derived name is half an earlier
          // upload that a server kept: replace it (these bytes hash to the name).
          if (!isGitmlError(e, 'E_STORE_CONFLICT')) throw e;
          this.options.log.warn({ key }, 'replacing a stored copy of the wrong size');
          return this.options.store.put(key, body, { replace: true });
        }
      },
      this.options.retry,
      (err, attempt, delay) => this.options.log.warn({ key, attempt, delay, err: String(err) }, 'chunked upload failed, retrying'),
    );
  }
}

function fileBody(file: string, size: number): BodySource {
  return {
    size,
    open: (range) => fs.createReadStream(file, { highWaterMark: 1 << 20, ...(range ? { start: range.start, end: range.end - 1 } : {}) }),
  };
}

function bufferBody(data: Buffer): BodySource {
  return {
    size: data.length,
    open: (range) => Readable.from([range ? data.subarray(range.start, range.end) : data]),
  };
}
