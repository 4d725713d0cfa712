import { createHash } from 'node:crypto';
import { CatFileBatch } from '../git/cat-file';
import { gitZ, runGit, type GitContext } from '../git/exec';
import { parsePointer } from '../pointer';
import { ASSET_FILE, digestValue, parseAssetYaml } from './document';
import { listVersions, readDocument, type AssetVersion } from './registry';
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

export interface AssetProblem {
  dir: string;
  problem: string;
}

/**
 * Registered versions whose contents differ from their asset.yaml: in HEAD (a committed edit), in the
 * index (a staged edit), or in the work tree (an edit not staged yet).
 */
export async function checkRegistered(git: GitContext, where: 'head' | 'index', root: string | null): Promise<AssetProblem[]> {
  const problems: AssetProblem[] = [];
  const head = await runGit(git, ['rev-parse', '--verify', '--quiet', 'HEAD'], { okCodes: [1, 128] });
  const versions: AssetVersion[] =
    where === 'head' ? (head.code === 0 ? await listVersions({ kind: 'tree', treeish: 'HEAD', git }) : []) : await indexVersions(git);
  for (const v of versions) {
    const doc = where === 'head' ? await readDocument({ kind: 'tree', treeish: 'HEAD', git }, v) : await readIndexDocument(git, v);
    if (!doc) continue;
    const entries = where === 'head' ? await treeEntries(git, 'HEAD', v.dir) : await indexEntries(git, v.dir);
    const actual = await digestFromGit(git, entries, v.dir);
    if (digestValue(actual) !== doc.digest.value) {
      problems.push({ dir: v.dir, problem: describeDifference(doc.digest.files, actual) });
    }
  }
  if (root && where === 'head') {
    for (const v of versions) {
      const r = await runGit(git, ['status', '--porcelain', '--', `${v.dir}/`]);
      const changed = r.stdout.toString('utf8').split('\n').filter(Boolean);
      if (changed.length > 0) problems.push({ dir: v.dir, problem: `changed in the work tree: ${changed.map((c) => c.slice(3)).join(', ')}` });
    }
  }
  return problems;
}

async function indexVersions(git: GitContext): Promise<AssetVersion[]> {
  const lines = await gitZ(git, ['ls-files', '-z']);
  const out: AssetVersion[] = [];
  for (const p of lines) {
    const m = /^([a-z]+)s\/([^/]+)\/([^/]+)\/asset\.yaml$/.exec(p);
    if (m) out.push({ type: m[1] as AssetVersion['type'], name: m[2]!, version: m[3]!, dir: `${m[1]}s/${m[2]}/${m[3]}` });
  }
  return out;
}

async function readIndexDocument(git: GitContext, v: AssetVersion) {
  const r = await runGit(git, ['show', `:${v.dir}/${ASSET_FILE}`], { okCodes: [128] });
  return r.code === 0 ? parseAssetYaml(r.stdout.toString('utf8'), `${v.dir}/${ASSET_FILE}`) : null;
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
