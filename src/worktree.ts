import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { readBufferSize, type ObjectCache } from './cache';
import { sha256Of } from './hash';
import { errnoCode, GitmlError } from './errors';
import { confinedPath, joinChecked, makeDirs } from './safe-path';
import { MAX_FOREIGN_POINTER_SIZE, parsePointer, type Pointer } from './pointer';

/**
 * - materialized: the file has the pointer's size (the bytes are checked out; not re-hashed here)
 * - pointer:      the file holds the pointer text (checked out with GITML_SKIP_SMUDGE, or failed)
 * - missing:      no file at that path
 * - other:        anything else (a local edit)
 */
export type FileState = 'materialized' | 'pointer' | 'missing' | 'other';

/** A path git names (index, tree, filter request) in the work tree: checked, not resolved on disk. */
export function worktreePath(workTree: string, gitPath: string): string {
  return joinChecked(workTree, gitPath, { what: 'path', source: 'git' });
}

/** The same, for writing: no symbolic link on the way inside the work tree (src/safe-path.ts). */
export function worktreeTarget(workTree: string, gitPath: string): Promise<string> {
  return confinedPath(workTree, gitPath, { what: 'path', source: 'git' });
}

export async function fileState(workTree: string, gitPath: string, pointer: Pointer): Promise<FileState> {
  const file = worktreePath(workTree, gitPath);
  let st: fs.Stats;
  try {
    st = await fsp.lstat(file);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return 'missing';
    throw e;
  }
  if (!st.isFile()) return 'other';
  if (st.size < MAX_FOREIGN_POINTER_SIZE) {
    const onDisk = parsePointer(await fsp.readFile(file));
    // A file can never hold a pointer to its own bytes, so this is the pointer text.
    if (onDisk && onDisk.oid === pointer.oid) return 'pointer';
  }
  return st.size === pointer.size ? 'materialized' : 'other';
}

/**
 * Writes the object's bytes at `gitPath` (`gitml pull`), verified and atomically: the copy made while
 * the object downloaded when there is one (`staged`, placeStaged), otherwise from the cache
 * (writeFromCache).
 */
export async function materialize(cache: ObjectCache, workTree: string, gitPath: string, pointer: Pointer, mode: string, staged?: string): Promise<'staged' | 'copied'> {
  try {
    const target = await worktreeTarget(workTree, gitPath);
    const bits = mode === '100755' ? 0o755 : 0o644;
    if (staged && (await placeStaged(cache, staged, target, pointer, bits))) return 'staged';
    await writeFromCache(cache, target, pointer, bits);
    return 'copied';
  } catch (e) {
    if (e instanceof GitmlError) throw e;
    throw new GitmlError('E_CACHE_IO', `cannot write '${gitPath}': ${(e as Error).message}`, { cause: e, hint: 'Check free space and permissions in the work tree.' });
  }
}

/**
 * How far in the past gitml dates the files it writes. A file's mtime then changes with any later
 * write, even one within the same timestamp tick as gitml's own (kernels stamp files with a coarse
 * clock), so an unchanged (inode, size, mtime) really means unchanged bytes (src/written.ts).
 */
export const WRITTEN_MTIME_AGE_MS = 60_000;

/**
 * Writes an object's bytes from the cache at `target`: a copy (a reflink where the filesystem can)
 * beside it, compared with the pointer, dated WRITTEN_MTIME_AGE_MS in the past, then renamed over the
 * target, so a reader never sees half a file or wrong bytes. The cached object is hashed while the
 * kernel copies it (two cores instead of a copy and then a read-back of the copy: a 1 GiB direct
 * checkout 1.55 s -> see docs/performance.md); cached objects are never modified in place (written
 * under a temp name and renamed), so the bytes hashed are the bytes copied. A damaged cached copy is
 * removed from the cache (the next `gitml pull` downloads it again) and nothing is written.
 */
export async function writeFromCache(cache: ObjectCache, target: string, pointer: Pick<Pointer, 'oid' | 'size'>, mode: number): Promise<void> {
  const tmp = tempNameIn(await tempDirFor(cache, target));
  try {
    const source = cache.locate(pointer.oid);
    const [copied] = await Promise.all([
      sha256Of(fs.createReadStream(source, { highWaterMark: readBufferSize(pointer.size) })),
      fsp.copyFile(source, tmp, fs.constants.COPYFILE_FICLONE),
    ]);
    await fsp.chmod(tmp, mode);
    if (copied.sha256 !== pointer.oid || copied.size !== pointer.size) {
      await cache.remove(pointer.oid);
      throw new GitmlError('E_OBJECT_CORRUPT', `the cached copy of sha256:${pointer.oid.slice(0, 12)} is damaged (it hashes to sha256:${copied.sha256.slice(0, 12)}, ${copied.size} bytes)`, {
        hint: 'It was removed from the cache; run `gitml pull` to download it again.',
      });
    }
    cache.touch(pointer.oid);
    await placeWritten(tmp, target);
  } finally {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
  }
}

/**
 * Dates a finished temp copy WRITTEN_MTIME_AGE_MS in the past and moves it to the target. The file
 * there (the pointer text) is removed first, as git's own checkout does: ext4 (auto_da_alloc) allocates
 * and starts writing back every block of a file renamed over another one before the rename returns
 * (0.42 s for 1 GiB, measured with strace on a clone), work the kernel otherwise does in the background.
 */
async function placeWritten(tmp: string, target: string): Promise<void> {
  const past = new Date(Date.now() - WRITTEN_MTIME_AGE_MS);
  await fsp.utimes(tmp, past, past);
  await fsp.unlink(target).catch((e) => (errnoCode(e) === 'ENOENT' ? undefined : Promise.reject(e)));
  await fsp.rename(tmp, target);
}

/**
 * A new temp file name for a copy of a work-tree file made while its object downloads (a direct
 * checkout writes the cache and the work-tree copy in one pass), or null when the cache's temp
 * directory is on another filesystem than the work tree (a rename could not move it there).
 */
export async function stagingFileFor(cache: ObjectCache, workTree: string): Promise<string | null> {
  return (await cacheTempBeside(cache, workTree)) ? tempNameIn(cache.tmpDir) : null;
}

/**
 * Puts a copy made during the download (stagingFileFor; verified with the object it was written
 * beside) at `target`, as writeFromCache would have written it. Returns false, leaving the copy where
 * it is, when it is gone or cannot be moved there (another filesystem): write from the cache then.
 */
export async function placeStaged(cache: ObjectCache, staged: string, target: string, pointer: Pick<Pointer, 'oid' | 'size'>, mode: number): Promise<boolean> {
  const st = await fsp.stat(staged).catch(() => null);
  if (!st?.isFile() || st.size !== pointer.size) return false; // gone (a cleanup of old temp files) or not whole
  await fsp.chmod(staged, mode);
  try {
    await placeWritten(staged, target);
  } catch (e) {
    if (errnoCode(e) === 'EXDEV') return false;
    throw e;
  }
  cache.touch(pointer.oid);
  return true;
}

/**
 * Where to put the temp copy of a work-tree file: the cache's temp directory when it is on the same
 * filesystem (a killed process then leaves nothing in the work tree, and `gitml prune` clears it),
 * else beside the file (a rename cannot cross filesystems).
 */
async function tempDirFor(cache: ObjectCache, target: string): Promise<string> {
  const beside = path.dirname(target);
  return (await cacheTempBeside(cache, beside)) ? cache.tmpDir : beside;
}

/** Whether the cache's temp directory (made if missing) is on the filesystem of `dir`: false when unknown. */
async function cacheTempBeside(cache: ObjectCache, dir: string): Promise<boolean> {
  try {
    await makeDirs(cache.tmpDir);
    const [a, b] = await Promise.all([fsp.stat(dir), fsp.stat(cache.tmpDir)]);
    return a.dev === b.dev;
  } catch {
    return false;
  }
}

/** A fresh name for a work-tree file's temp copy in `dir`. */
function tempNameIn(dir: string): string {
  return path.join(dir, `.gitml-${randomBytes(6).toString('hex')}.tmp`);
}
