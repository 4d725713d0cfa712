import { createHash } from 'node:crypto';
import { CatFileBatch } from '../git/cat-file';
import { gitZ, type GitContext } from '../git/exec';
import { parsePointer } from '../pointer';
import { ASSET_FILE } from './document';
import type { DigestEntry } from './schema';

/** A blob in git under a version folder. */
interface Entry {
  path: string;
  blob: string;
  /** git file mode: 100644, 100755, 120000 (a symbolic link), 160000 (a submodule). */
  mode: string;
}

/**
 * The digest entries of a version folder as git holds it (a commit's tree, or the index): a pointer
 * blob contributes its oid and size without any download; any other blob is hashed.
 */
export async function digestFromGit(git: GitContext, entries: Entry[], dir: string): Promise<DigestEntry[]> {
  const batch = new CatFileBatch(git);
  try {
    const out: DigestEntry[] = [];
    for (const e of entries) {
      const rel = e.path.slice(dir.length + 1);
      if (rel === ASSET_FILE) continue;
      const blob = await batch.get(e.blob);
      if (!blob) continue;
      const pointer = blob.size < 1024 ? parsePointer(blob.content) : null;
      out.push(pointer ? { path: rel, sha256: pointer.oid, size: pointer.size } : { path: rel, sha256: createHash('sha256').update(blob.content).digest('hex'), size: blob.size });
    }
    return out;
  } finally {
    batch.close();
  }
}

export async function treeEntries(git: GitContext, treeish: string, dir: string): Promise<Entry[]> {
  const lines = await gitZ(git, ['ls-tree', '-r', '-z', treeish, '--', `${dir}/`]);
  return lines.map((l) => {
    const tab = l.indexOf('\t');
    const [mode, , blob] = l.slice(0, tab).split(' ');
    return { path: l.slice(tab + 1), blob: blob!, mode: mode! };
  });
}

export async function indexEntries(git: GitContext, dir: string): Promise<Entry[]> {
  const lines = await gitZ(git, ['ls-files', '-s', '-z', '--', `${dir}/`]);
  return lines.map((l) => {
    const tab = l.indexOf('\t');
    const [mode, blob] = l.slice(0, tab).split(' ');
    return { path: l.slice(tab + 1), blob: blob!, mode: mode! };
  });
}

/** Which files were added, removed or changed. Pure. */
export function describeDifference(recorded: readonly DigestEntry[], actual: readonly DigestEntry[]): string {
  const was = new Map(recorded.map((f) => [f.path, f]));
  const now = new Map(actual.map((f) => [f.path, f]));
  const parts: string[] = [];
  for (const [p, f] of now) {
    const old = was.get(p);
    if (!old) parts.push(`added ${p}`);
    else if (old.sha256 !== f.sha256 || old.size !== f.size) parts.push(`modified ${p}`);
  }
  for (const p of was.keys()) if (!now.has(p)) parts.push(`removed ${p}`);
  return parts.length ? parts.join(', ') : 'digest does not match asset.yaml';
}
