import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { readBufferSize } from '../cache';
import { errnoCode, GitmlError } from '../errors';
import { assertValidKey, missingObjectError, type BodySource, type ByteRange, statEach, existingResult, type PutOptions, type PutResult, type Store, type StoreEntry } from './store';
import { makeDirs } from '../safe-path';

const TMP_DIR = 'tmp';
/** Errors an NFS mount or a busy disk can throw that a second try often gets past. */
const TRANSIENT = new Set(['EAGAIN', 'EBUSY', 'ESTALE', 'EINTR', 'ETIMEDOUT', 'EIO']);
/** Filesystems without hard links (some NFS setups, FAT, some FUSE): fall back to rename. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'ENOSYS', 'EMLINK']);

/**
 * A store in a local directory or on a network mount (NFS, SMB): `<root>/<key>`.
 *
 * Writes go to `<root>/tmp/` (same filesystem), are fsynced, then hard-linked into place: link fails
 * if the key exists, so two writers at once cannot replace each other's object, and readers never see
 * a partial file. Where hard links are not supported it renames instead (same-content objects, so a
 * lost race is harmless).
 */
export class DirectoryStore implements Store {
  readonly url: string;
  private ready: Promise<void> | null = null;

  constructor(readonly root: string) {
    this.url = pathToFileURL(root).href;
  }

  async stat(key: string): Promise<{ size: number } | null> {
    const file = this.pathOf(key);
    try {
      const st = await fsp.stat(file);
      return st.isFile() ? { size: st.size } : null;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') {
        await this.assertRootExists();
        return null;
      }
      throw this.ioError(`cannot read ${key}`, e);
    }
  }

  statMany(keys: readonly string[]): Promise<Map<string, number | null>> {
    return statEach(keys, (key) => this.stat(key));
  }

  async put(key: string, body: BodySource, options: PutOptions = {}): Promise<PutResult> {
    const target = this.pathOf(key);
    await this.prepare();
    const tmp = path.join(this.root, TMP_DIR, `${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
    try {
      const handle = await fsp.open(tmp, 'wx', 0o444);
      try {
        const source = body.open();
        let size = 0;
        try {
          for await (const chunk of source) {
            const data = chunk as Buffer;
            for (let offset = 0; offset < data.length; ) offset += (await handle.write(data, offset, data.length - offset)).bytesWritten;
            size += data.length;
          }
        } finally {
          source.destroy();
        }
        if (size !== body.size) {
          throw new GitmlError('E_STORE_IO', `short write to ${this.url}: ${key} has ${size} of ${body.size} bytes`, { retryable: true });
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (options.replace) {
        // rename replaces atomically: readers see the old file or the new one, never a mix.
        await makeDirs(path.dirname(target));
        await fsp.rename(tmp, target);
        await syncDir(path.dirname(target));
        return 'created';
      }
      const placed = await this.place(tmp, target);
      await syncDir(path.dirname(target));
      return placed ? 'created' : this.existing(key, body.size);
    } catch (e) {
      if (e instanceof GitmlError) throw e;
      throw this.ioError(`cannot write ${key}`, e);
    } finally {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  async get(key: string, options: { range?: ByteRange } = {}): Promise<Readable> {
    const file = this.pathOf(key);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(file, 'r');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') {
        await this.assertRootExists();
        throw missingObjectError(this, key);
      }
      throw this.ioError(`cannot read ${key}`, e);
    }
    const range = options.range;
    if (range && range.end <= range.start) {
      await handle.close();
      return Readable.from([]);
    }
    return handle.createReadStream({
      highWaterMark: readBufferSize(range ? range.end - range.start : (await handle.stat()).size),
      ...(range ? { start: range.start, end: range.end - 1 } : {}),
    });
  }

  async *list(prefix: string): AsyncIterable<StoreEntry> {
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    yield* this.walk(base, prefix);
  }

  async delete(key: string): Promise<void> {
    try {
      await fsp.rm(this.pathOf(key), { force: true });
    } catch (e) {
      throw this.ioError(`cannot delete ${key}`, e);
    }
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }

  private async *walk(dirKey: string, prefix: string): AsyncIterable<StoreEntry> {
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(path.join(this.root, dirKey), { withFileTypes: true });
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw this.ioError(`cannot list ${dirKey || '/'}`, e);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const key = dirKey ? `${dirKey}/${entry.name}` : entry.name;
      if (key === TMP_DIR) continue;
      if (entry.isDirectory()) {
        if (prefix.startsWith(`${key}/`) || key.startsWith(prefix)) yield* this.walk(key, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const st = await fsp.stat(path.join(this.root, key)).catch(() => null);
        if (st) yield { key, size: st.size };
      }
    }
  }

  /** Checks once that the store root exists (never creates it), and makes its temp directory. */
  private prepare(): Promise<void> {
    this.ready ??= (async () => {
      await this.assertRootExists();
      await makeDirs(path.join(this.root, TMP_DIR));
    })();
    return this.ready.catch((e) => {
      this.ready = null;
      throw e;
    });
  }

  /** True when the temp file became the object; false when another writer got there first. */
  private async place(tmp: string, target: string): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await fsp.link(tmp, target);
        return true;
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'EEXIST') return false;
        if (code === 'ENOENT' && attempt === 0) {
          await makeDirs(path.dirname(target));
          continue;
        }
        if (!code || !NO_LINKS.has(code)) throw e;
        break;
      }
    }
    await makeDirs(path.dirname(target));
    if (await fsp.stat(target).then(() => true, () => false)) return false;
    await fsp.rename(tmp, target);
    return true;
  }

  private async existing(key: string, size: number): Promise<PutResult> {
    const st = await this.stat(key);
    return st ? existingResult(this, key, st.size, size) : 'exists';
  }

  private pathOf(key: string): string {
    assertValidKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  private async assertRootExists(): Promise<void> {
    try {
      const st = await fsp.stat(this.root);
      if (st.isDirectory()) return;
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw this.ioError('cannot open the store directory', e);
    }
    throw new GitmlError('E_STORE_IO', `store directory ${this.root} does not exist (or is not a directory)`, {
      hint: `Create it (mkdir -p ${JSON.stringify(this.root)}), mount it, or fix gitml.store (see \`gitml env\`).`,
    });
  }

  private ioError(what: string, cause: unknown): GitmlError {
    const code = errnoCode(cause);
    const hint =
      code === 'ENOSPC'
        ? 'The store volume is full: free space or move the store.'
        : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
          ? `Check that you may write to ${this.root}.`
          : 'Check that the store directory is mounted and reachable.';
    return new GitmlError('E_STORE_IO', `${what} in ${this.url}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      hint,
      cause,
      retryable: code !== undefined && TRANSIENT.has(code),
    });
  }
}

/** Makes a new directory entry durable; not every filesystem supports it, so failures are ignored. */
async function syncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // Best effort (EINVAL/EISDIR on some platforms and network filesystems).
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
