import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { ObjectCache } from './cache';
import { errnoCode, GitmlError } from './errors';
import { MAX_FOREIGN_POINTER_SIZE, parsePointer, type Pointer } from './pointer';

/**
 * - materialized: the file has the pointer's size (the bytes are checked out; not re-hashed here)
 * - pointer:      the file holds the pointer text (checked out with GITML_SKIP_SMUDGE, or failed)
 * - missing:      no file at that path
 * - other:        anything else (a local edit)
 */
export type FileState = 'materialized' | 'pointer' | 'missing' | 'other';

export function worktreePath(workTree: string, gitPath: string): string {
  const full = path.resolve(workTree, gitPath);
  if (full !== workTree && !full.startsWith(workTree + path.sep)) {
    throw new GitmlError('E_INTERNAL', `path ${JSON.stringify(gitPath)} points outside the work tree`);
  }
  return full;
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
 * Writes the object's bytes at `gitPath`, atomically: a copy (a reflink where the filesystem can)
 * next to the target, renamed over it, so a reader never sees half a file.
 */
export async function materialize(cache: ObjectCache, workTree: string, gitPath: string, pointer: Pointer, mode: string): Promise<void> {
  const target = worktreePath(workTree, gitPath);
  const tmp = path.join(path.dirname(target), `.gitml-${randomBytes(6).toString('hex')}.tmp`);
  try {
    await fsp.copyFile(cache.pathOf(pointer.oid), tmp, fs.constants.COPYFILE_FICLONE);
    await fsp.chmod(tmp, mode === '100755' ? 0o755 : 0o644);
    await fsp.rename(tmp, target);
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw new GitmlError('E_CACHE_IO', `cannot write '${gitPath}': ${(e as Error).message}`, { cause: e, hint: 'Check free space and permissions in the work tree.' });
  }
}
