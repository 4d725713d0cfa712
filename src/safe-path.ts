import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, GitmlError } from './errors';

/**
 * The one gate for paths that come from outside: a git tree, a manifest, asset.yaml, an experiment
 * file, a run record, a store listing, the command line. Every place that writes (or reads) such a
 * path under a target directory goes through here (docs/security.md).
 *
 * A relative path is refused when it is empty or absolute, holds a backslash or a NUL, or has a component that is empty, `.`, `..` or a name git itself refuses in trees
 * (verify_path): `.git` in any case, with trailing dots or spaces (`.git.`, `.git `), its NTFS short
 * name (`git~1`), or with characters HFS+ ignores (`.g\u200cit`). Resolution then never passes through a
 * symbolic link inside the target, whether it was there before or made earlier in the same operation.
 */
export interface PathOrigin {
  /** What the path names: "tree entry", "object key", "output path", ... */
  what: string;
  /** Where it came from: "repository https://host/x.git", "models/m/1/asset.yaml", "--to". */
  source: string;
}

/** Code points HFS+ ignores when comparing names (git's is_hfs_dotgit list). */
const HFS_IGNORABLE = /[\u200c\u200d\u200e\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g;

/** Why a single path component is refused, or null when it is fine. Pure. */
export function badComponent(component: string): string | null {
  if (component === '') return 'it has an empty component';
  if (component === '.' || component === '..') return `it has a "${component}" component`;
  const folded = component.replace(HFS_IGNORABLE, '').toLowerCase();
  if (/^\.git[. ]*$/.test(folded)) return `it has a "${component}" component (git's own directory)`;
  if (/^git~[0-9]+$/.test(folded)) return `it has a "${component}" component (a short name of .git)`;
  return null;
}

/** Why a relative path is refused, or null when it is a plain relative path. Pure. */
export function unsafeReason(rel: string): string | null {
  if (typeof rel !== 'string' || rel === '') return 'it is empty';
  if (rel.includes('\0')) return 'it contains a NUL byte';
  if (rel.includes('\\')) return 'it contains a backslash';
  if (rel.startsWith('/') || /^[A-Za-z]:/.test(rel)) return 'it is absolute';
  for (const c of rel.split('/')) {
    const why = badComponent(c);
    if (why) return why;
  }
  return null;
}

export function unsafePathError(rel: string, origin: PathOrigin, why: string): GitmlError {
  return new GitmlError('E_UNSAFE_PATH', `refusing ${origin.what} ${JSON.stringify(rel)} from ${origin.source}: ${why}; nothing was written`, {
    hint: 'The data is malformed or hostile. Ask its owner to fix it; gitml only writes plain relative paths inside the target.',
  });
}

/** The path's components after checking it (throws E_UNSAFE_PATH). Pure. */
export function checkRelativePath(rel: string, origin: PathOrigin): string[] {
  const why = unsafeReason(rel);
  if (why) throw unsafePathError(rel, origin, why);
  return rel.split('/');
}

/**
 * `rel` under `root`, checked, with no symbolic link on the way inside `root` (the final component
 * may not be one either: writing replaces it only by rename, reading would follow it). Parent
 * directories that do not exist yet are fine; `mkdir: true` creates them (one level at a time, so a
 * link raced in between is seen).
 */
export async function confinedPath(root: string, rel: string, origin: PathOrigin, options: { mkdir?: boolean } = {}): Promise<string> {
  const parts = checkRelativePath(rel, origin);
  const base = path.resolve(root);
  let at = base;
  for (let i = 0; i < parts.length; i++) {
    at = path.join(at, parts[i]!);
    const last = i === parts.length - 1;
    let st;
    try {
      st = await fsp.lstat(at);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      if (!last && options.mkdir) {
        await fsp.mkdir(at).catch((err) => {
          if (errnoCode(err) !== 'EEXIST') throw err;
        });
        // Created by us or by a racer: look again, it must be a plain directory.
        st = await fsp.lstat(at);
      } else {
        // Nothing further down can exist either.
        return path.join(base, ...parts);
      }
    }
    if (st.isSymbolicLink()) throw unsafePathError(rel, origin, `${path.relative(base, at)} is a symbolic link`);
    if (!last && !st.isDirectory()) throw unsafePathError(rel, origin, `${path.relative(base, at)} is not a directory`);
  }
  return at;
}

/** `rel` joined under `root` without touching the disk, after the checks of checkRelativePath. Pure. */
export function joinChecked(root: string, rel: string, origin: PathOrigin): string {
  return path.join(root, ...checkRelativePath(rel, origin));
}

/**
 * `mkdir -p` that always ends: Node's recursive mkdir loops forever where the kernel answers ENOENT
 * for a directory whose parent exists (/proc, some FUSE mounts). Here each level is tried at most
 * twice (before and after its parent is made), so the depth bounds the work. The common case, the
 * parent already there, costs one call.
 */
export async function makeDirs(dir: string): Promise<void> {
  const target = path.resolve(dir);
  try {
    await fsp.mkdir(target);
    return;
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'EEXIST') return assertDirectory(fs.statSync(target).isDirectory(), target);
    if (code !== 'ENOENT' || path.dirname(target) === target) throw e;
  }
  await makeDirs(path.dirname(target));
  try {
    await fsp.mkdir(target);
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST') throw e;
    assertDirectory((await fsp.stat(target)).isDirectory(), target);
  }
}

/** makeDirs with blocking calls (the cache's small-object path). */
export function makeDirsSync(dir: string): void {
  const target = path.resolve(dir);
  try {
    fs.mkdirSync(target);
    return;
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'EEXIST') return assertDirectory(fs.statSync(target).isDirectory(), target);
    if (code !== 'ENOENT' || path.dirname(target) === target) throw e;
  }
  makeDirsSync(path.dirname(target));
  try {
    fs.mkdirSync(target);
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST') throw e;
    assertDirectory(fs.statSync(target).isDirectory(), target);
  }
}

function assertDirectory(isDirectory: boolean, at: string): void {
  if (!isDirectory) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${at}'`), { code: 'ENOTDIR', syscall: 'mkdir', path: at });
}
