import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { errnoCode, GitmlError } from '../errors';
import { makeDirs } from '../safe-path';
import { BodyGuard } from './body';
import { blocksOf, type ReadBlocks } from '../util/read-blocks';
import { fileStoreError } from './errors';
import { assertValidKey, missingObjectError, type BodySource, type ByteRange, type PutOptions, type PutResult, type RequestOptions, type Store, type StoreEntry } from './store';

const TMP_DIR = 'tmp';
/** Filesystems without hard links (some NFS setups, FAT, some FUSE): fall back to rename. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'ENOSYS', 'EMLINK']);
/** Temp files of writers killed mid-way are removed once they are this old (no writer takes a day). */
export const STALE_TEMP_MS = 24 * 3600 * 1000;

/**
 * A store in a local directory or on a network mount (NFS, SMB): `<root>/<key>`.
 *
 * Writes go to `<root>/tmp/` (same filesystem), are fsynced, then hard-linked into place: link fails
 * if the key exists, so two writers at once cannot replace each other's object, and readers never see
 * a partial file. Where hard links are not supported it renames instead (same-content objects, so a
 * lost race is harmless). Temp files a killed writer left are cleaned by age on the next write.
 */
export class DirectoryStore implements Store {
  readonly url: string;
  /** Measured on a 1 GiB clone (docs/performance.md): in order, hashed as read, beats 8 parts at once. */
  readonly readsInOrder = true;
  private ready: Promise<void> | null = null;

  constructor(readonly root: string) {
    this.url = pathToFileURL(root).href;
  }

  async stat(key: string): Promise<StoreEntry | null> {
    const file = this.pathOf(key);
    let st: fs.Stats;
    try {
      st = await fsp.stat(file);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') {
        await this.assertRootExists();
        return null;
      }
      throw fileStoreError(this.url, this.root, `cannot read ${key}`, e);
    }
    if (st.isDirectory()) throw fileStoreError(this.url, this.root, `cannot read ${key}`, Object.assign(new Error('is a directory'), { code: 'EISDIR' }));
    return st.isFile() ? { key, size: st.size, modified: st.mtime, etag: `${st.mtimeMs}-${st.ino}` } : null;
  }

  async put(key: string, body: BodySource, options: PutOptions = {}): Promise<PutResult> {
    const target = this.pathOf(key);
    await this.prepare();
    const tmp = path.join(this.root, TMP_DIR, `${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
    // A sealed local file becomes the object without passing through this process: on the same file
    // system linked (as git-lfs's file remote does), else copied by the kernel; made read-only, its
    // data synced, then placed like any other write.
    if (body.localFile && !options.overwrite && (await this.placeLocal(body.localFile, body.size, tmp))) {
      try {
        const placed = await this.place(tmp, target);
        if (placed) await syncDir(path.dirname(target));
        return placed ? 'created' : 'exists';
      } catch (e) {
        throw fileStoreError(this.url, this.root, `cannot write ${key}`, e);
      } finally {
        await fsp.rm(tmp, { force: true }).catch(() => undefined);
      }
    }
    const guard = new BodyGuard(options.signal);
    try {
      let handle: fsp.FileHandle;
      try {
        handle = await fsp.open(tmp, 'wx', 0o444);
      } catch (e) {
        throw fileStoreError(this.url, this.root, `cannot write ${key}`, e);
      }
      try {
        const source = guard.watch(body.open());
        let size = 0;
        try {
          for await (const chunk of source) {
            const data = chunk as Buffer;
            for (let offset = 0; offset < data.length; ) offset += (await handle.write(data, offset, data.length - offset)).bytesWritten;
            size += data.length;
            if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
          }
        } finally {
          source.destroy();
        }
        if (size !== body.size) {
          throw new GitmlError('E_CACHE_IO', `the local copy of ${key} gave ${size} of ${body.size} bytes while it was stored`, { hint: 'It changed during the upload; add the file again.' });
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (options.overwrite) {
        // rename replaces atomically: readers see the old file or the new one, never a mix.
        await makeDirs(path.dirname(target));
        await fsp.rm(target, { recursive: true, force: true }).catch(() => undefined);
        await fsp.rename(tmp, target);
        await syncDir(path.dirname(target));
        return 'created';
      }
      const placed = await this.place(tmp, target);
      if (placed) await syncDir(path.dirname(target));
      return placed ? 'created' : 'exists';
    } catch (e) {
      // A failed read of the body is the local disk's fault, not the store's.
      const explained = guard.explain(e);
      if (explained instanceof GitmlError) throw explained;
      throw fileStoreError(this.url, this.root, `cannot write ${key}`, e);
    } finally {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  async get(key: string, options: RequestOptions & { range?: ByteRange } = {}): Promise<Readable> {
    const { handle, length } = await this.openForRead(key, options.range);
    if (length === 0) {
      await handle.close();
      return Readable.from([]);
    }
    const range = options.range;
    return handle.createReadStream({
      highWaterMark: Math.min(1 << 20, Math.max(16 << 10, length)),
      ...(range ? { start: range.start, end: range.end - 1 } : {}),
    });
  }

  async getInBlocks(key: string, options: RequestOptions & { range?: ByteRange; blocks: ReadBlocks }): Promise<AsyncIterable<Buffer>> {
    // Opened when the reading starts: an iterable that is never read holds no file open.
    const open = () => this.openForRead(key, options.range);
    const { blocks, signal } = options;
    return (async function* () {
      const { handle, size } = await open();
      const range = options.range ?? { start: 0, end: size };
      try {
        if (range.end > range.start) yield* blocksOf(handle, blocks, range, signal);
      } finally {
        await handle.close();
      }
    })();
  }

  /** The file under `key`, open for reading, with its size and the length of `range` (or of the file). */
  private async openForRead(key: string, range?: ByteRange): Promise<{ handle: fsp.FileHandle; size: number; length: number }> {
    const file = this.pathOf(key);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(file, 'r');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') {
        await this.assertRootExists();
        throw missingObjectError(this.url, key);
      }
      throw fileStoreError(this.url, this.root, `cannot read ${key}`, e);
    }
    const st = await handle.stat();
    if (st.isDirectory()) {
      await handle.close();
      throw fileStoreError(this.url, this.root, `cannot read ${key}`, Object.assign(new Error('is a directory'), { code: 'EISDIR' }));
    }
    return { handle, size: st.size, length: range ? Math.max(0, range.end - range.start) : st.size };
  }

  async *list(prefix: string): AsyncIterable<StoreEntry> {
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    yield* this.walk(base, prefix);
  }

  async delete(key: string): Promise<void> {
    try {
      await fsp.rm(this.pathOf(key), { force: true });
    } catch (e) {
      throw fileStoreError(this.url, this.root, `cannot delete ${key}`, e);
    }
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }

  /** Temp files left by killed writers, older than `olderThanMs`; removed unless `dryRun`. */
  async staleTemp(olderThanMs: number, dryRun: boolean, now = Date.now()): Promise<{ files: number; bytes: number }> {
    let files = 0;
    let bytes = 0;
    const dir = path.join(this.root, TMP_DIR);
    for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
      const file = path.join(dir, name);
      const st = await fsp.lstat(file).catch(() => null);
      if (!st || !st.isFile() || now - st.mtimeMs <= olderThanMs) continue;
      files++;
      bytes += st.size;
      if (!dryRun) await fsp.rm(file, { force: true }).catch(() => undefined);
    }
    return { files, bytes };
  }

  private async *walk(dirKey: string, prefix: string): AsyncIterable<StoreEntry> {
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(path.join(this.root, dirKey), { withFileTypes: true });
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw fileStoreError(this.url, this.root, `cannot list ${dirKey || '/'}`, e);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const key = dirKey ? `${dirKey}/${entry.name}` : entry.name;
      if (key === TMP_DIR) continue;
      if (entry.isDirectory()) {
        if (prefix.startsWith(`${key}/`) || key.startsWith(prefix)) yield* this.walk(key, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const st = await fsp.stat(path.join(this.root, key)).catch(() => null);
        if (st) yield { key, size: st.size, modified: st.mtime, etag: `${st.mtimeMs}-${st.ino}` };
      }
    }
  }

  /**
   * Checks once that the store root exists (never creates it: an unmounted NFS path must not become
   * a local folder), makes its temp directory, and clears temp files killed writers left a day ago.
   */
  private prepare(): Promise<void> {
    this.ready ??= (async () => {
      await this.assertRootExists();
      try {
        await makeDirs(path.join(this.root, TMP_DIR));
      } catch (e) {
        throw fileStoreError(this.url, this.root, 'cannot write to the store', e);
      }
      await this.staleTemp(STALE_TEMP_MS, false);
    })();
    return this.ready.catch((e) => {
      this.ready = null;
      throw e;
    });
  }

  /**
   * A sealed local file as the temp file: hard-linked on the same file system, else copied by the
   * kernel (copy_file_range: a reflink where the file system has them, a server-side copy on NFS 4.2;
   * the bytes never pass through this process). Checked for size and synced. False when neither
   * worked: the caller streams the bytes instead, and says what failed.
   */
  private async placeLocal(file: string, size: number, tmp: string): Promise<boolean> {
    try {
      await fsp.link(file, tmp);
    } catch {
      try {
        await fsp.copyFile(file, tmp, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
      } catch {
        await fsp.rm(tmp, { force: true }).catch(() => undefined);
        return false;
      }
    }
    try {
      const handle = await fsp.open(tmp, 'r');
      try {
        if ((await handle.stat()).size !== size) throw new Error('size changed');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fsp.chmod(tmp, 0o444);
      return true;
    } catch {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      return false;
    }
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

  localFile(key: string): string {
    return this.pathOf(key);
  }

  private pathOf(key: string): string {
    assertValidKey(key, this.url);
    return path.join(this.root, ...key.split('/'));
  }

  private async assertRootExists(): Promise<void> {
    try {
      const st = await fsp.stat(this.root);
      if (st.isDirectory()) return;
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw fileStoreError(this.url, this.root, 'cannot open the store directory', e);
    }
    throw new GitmlError('E_STORE_IO', `store directory ${this.root} does not exist (or is not a directory)`, {
      hint: `If it is a network share, it is not mounted on this machine: mount it. If gitml.store names a path of another machine, point this clone at the store it can reach: git config gitml.store <url> (\`gitml env\` shows where the setting comes from). Create the directory only to start a new, empty store.`,
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
