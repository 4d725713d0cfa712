import YAML from 'yaml';
import { gitText, gitZ, runGit, type GitContext } from '../git/exec';
import { digestFromGit, describeDifference, treeEntries } from './verify';
import { assetDigest, digestValue, parseAssetYaml } from './document';
import { sourceOf } from './materialize';
import { ASSET_TYPES, DEPRECATION_RECORDS_DIR, folderOf, type AssetType } from './names';

/**
 * Registered versions are immutable (docs/assets.md): once a version folder is committed, every later
 * commit must hold the very same folder (the same git tree, asset.yaml included), and it may only
 * disappear after an explicit, recorded retirement (`gitml deprecate --remove`). Checks compare git
 * tree ids, so their cost follows the versions a change touches, not the size of the registry.
 */
export const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

export interface VersionEntry {
  type: AssetType;
  name: string;
  version: string;
  dir: string;
  /** The git tree id of the version folder. */
  tree: string;
}

export interface Deprecation {
  version: string;
  reason: string;
  by: string;
  time: string;
  /** The version's folder was removed (it can be restored from history). */
  removed: boolean;
}

export interface Violation {
  dir: string;
  problem: string;
}

const VERSION_DIR = /^([a-z]+)s\/([^/]+)\/([^/]+)$/;

/** Every registered version in a tree (a commit, or a tree written from the index), with its tree id. */
export async function versionsIn(git: GitContext, treeish: string): Promise<Map<string, VersionEntry>> {
  const out = new Map<string, VersionEntry>();
  if (treeish === EMPTY_TREE) return out;
  const lines = await gitZ(git, ['ls-tree', '-r', '-t', '-z', treeish, '--', ...ASSET_TYPES.map(folderOf)]);
  const trees = new Map<string, string>();
  const hasAsset = new Set<string>();
  for (const l of lines) {
    const tab = l.indexOf('\t');
    const [, type, sha] = l.slice(0, tab).split(' ');
    const p = l.slice(tab + 1);
    if (type === 'tree' && VERSION_DIR.test(p)) trees.set(p, sha!);
    if (type === 'blob' && p.endsWith('/asset.yaml')) hasAsset.add(p.slice(0, -'/asset.yaml'.length));
  }
  for (const [dir, tree] of trees) {
    const m = VERSION_DIR.exec(dir)!;
    if (!hasAsset.has(dir) || !(ASSET_TYPES as readonly string[]).includes(m[1]!)) continue;
    out.set(dir, { type: m[1] as AssetType, name: m[2]!, version: m[3]!, dir, tree });
  }
  return out;
}

/** The retirement record files in a tree (.gitml/deprecated/<type>s/<name>.yaml), by path, with their blob ids. */
async function recordFilesIn(git: GitContext, treeish: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (treeish === EMPTY_TREE) return out;
  for (const l of await gitZ(git, ['ls-tree', '-r', '-z', treeish, '--', DEPRECATION_RECORDS_DIR])) {
    const tab = l.indexOf('\t');
    if (/^\.gitml\/deprecated\/[a-z]+s\/[^/]+\.yaml$/.test(l.slice(tab + 1))) out.set(l.slice(tab + 1), l.slice(0, tab).split(' ')[2]!);
  }
  return out;
}

/** One record's entries, by version folder. */
async function readRecord(git: GitContext, blob: string | undefined, file: string): Promise<Map<string, Deprecation>> {
  const out = new Map<string, Deprecation>();
  if (!blob) return out;
  const m = /^\.gitml\/deprecated\/([a-z]+s)\/([^/]+)\.yaml$/.exec(file)!;
  const r = await runGit(git, ['cat-file', 'blob', blob]);
  const list = (YAML.parse(r.stdout.toString('utf8')) as { deprecated?: Deprecation[] } | null)?.deprecated ?? [];
  for (const d of list) if (d && typeof d.version === 'string') out.set(`${m[1]}/${m[2]}/${d.version}`, d);
  return out;
}

/** The retirement records in a tree, by version folder (every record: for fsck). */
export async function deprecationsIn(git: GitContext, treeish: string): Promise<Map<string, Deprecation>> {
  const out = new Map<string, Deprecation>();
  for (const [file, blob] of await recordFilesIn(git, treeish)) for (const [dir, d] of await readRecord(git, blob, file)) out.set(dir, d);
  return out;
}

const recordFileOf = (dir: string) => `${DEPRECATION_RECORDS_DIR}/${dir.split('/').slice(0, 2).join('/')}.yaml`;

/**
 * What a change from `base` to `target` does to registered versions: a version of `base` that is
 * different or gone in `target` (unless retired with removal in `target`'s record), a retirement
 * record that lost an entry, and a new version whose files do not match its asset.yaml (or reuses a
 * retired number). Everything a change leaves alone is compared by id and never read.
 */
export async function checkChange(git: GitContext, base: string, target: string): Promise<Violation[]> {
  const [before, after, recordsBefore, recordsAfter] = await Promise.all([versionsIn(git, base), versionsIn(git, target), recordFilesIn(git, base), recordFilesIn(git, target)]);
  const records = new Map<string, Map<string, Deprecation>>();
  const retiredAfter = async (dir: string) => {
    const file = recordFileOf(dir);
    if (!records.has(file)) records.set(file, await readRecord(git, recordsAfter.get(file), file));
    return records.get(file)!.get(dir);
  };
  const out: Violation[] = [];
  for (const [dir, v] of before) {
    const now = after.get(dir);
    if (!now) {
      if (!(await retiredAfter(dir))?.removed) out.push({ dir, problem: 'it was removed without being retired (gitml deprecate --remove records why)' });
      continue;
    }
    if (now.tree !== v.tree) out.push({ dir, problem: `it changed: ${await describeTreeChange(git, base, target, dir)}` });
  }
  for (const [file, blob] of recordsBefore) {
    if (recordsAfter.get(file) === blob) continue;
    const then = await readRecord(git, blob, file);
    const now = await readRecord(git, recordsAfter.get(file), file);
    for (const [dir, d] of then) {
      const n = now.get(dir);
      if (!n || n.reason !== d.reason || (d.removed && !n.removed)) out.push({ dir, problem: 'its retirement record was changed or dropped' });
    }
  }
  for (const [dir, v] of after) {
    if (before.has(dir)) continue;
    if (await retiredAfter(dir)) {
      out.push({ dir, problem: 'this version number was retired; a retired version is never registered again (register the next version)' });
      continue;
    }
    const problem = await newVersionProblem(git, target, v);
    if (problem) out.push({ dir, problem });
  }
  return out;
}

/** A new version's files against its own asset.yaml. */
async function newVersionProblem(git: GitContext, treeish: string, v: VersionEntry): Promise<string | null> {
  const r = await runGit(git, ['show', `${treeish}:${v.dir}/asset.yaml`], { okCodes: [128] });
  let doc;
  try {
    doc = parseAssetYaml(r.stdout.toString('utf8'), `${v.dir}/asset.yaml`);
  } catch (e) {
    return (e as Error).message;
  }
  if (doc.type !== v.type || doc.name !== v.name || doc.version !== v.version) return `its asset.yaml names ${doc.type}s/${doc.name}@${doc.version}`;
  const actual = await digestFromGit(git, await treeEntries(git, treeish, v.dir), v.dir);
  const source = sourceOf(doc);
  // Versions registered by reference before the digest covered their source matched their files alone.
  if (assetDigest(actual, source) !== doc.digest.value && !(source && digestValue(actual) === doc.digest.value)) return describeDifference(doc.digest.files, actual);
  return null;
}

async function describeTreeChange(git: GitContext, base: string, target: string, dir: string): Promise<string> {
  const r = await runGit(git, ['diff', '--name-status', '--no-renames', base, target, '--', `${dir}/`], { okCodes: [1] });
  const changes = r.stdout
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [status, p] = l.split('\t');
      const rel = p!.slice(dir.length + 1);
      return status === 'A' ? `added ${rel}` : status === 'D' ? `removed ${rel}` : `modified ${rel}`;
    });
  return changes.join(', ') || 'its tree differs';
}

/** The tree the index would commit (written into the object store, as `git commit` would). */
export function indexTree(git: GitContext): Promise<string> {
  return gitText(git, ['write-tree']);
}

/** HEAD's tree, or the empty tree before the first commit. */
export async function headTree(git: GitContext): Promise<string> {
  const r = await runGit(git, ['rev-parse', '--verify', '--quiet', 'HEAD^{tree}'], { okCodes: [1, 128] });
  return r.code === 0 ? r.stdout.toString('utf8').trim() : EMPTY_TREE;
}

/**
 * Every version in HEAD against the commit that first added it (fsck): a change committed since,
 * even one that rewrote asset.yaml's digest to match, is found.
 */
export async function checkAgainstFirstCommit(git: GitContext): Promise<Violation[]> {
  const head = await headTree(git);
  const out: Violation[] = [];
  for (const v of (await versionsIn(git, head)).values()) {
    const first = (await gitText(git, ['log', '--diff-filter=A', '--format=%H', '--', `${v.dir}/asset.yaml`])).split('\n').filter(Boolean).pop();
    if (!first) continue;
    const then = await runGit(git, ['rev-parse', '--verify', '--quiet', `${first}:${v.dir}`], { okCodes: [1, 128] });
    if (then.code === 0 && then.stdout.toString('utf8').trim() !== v.tree) out.push({ dir: v.dir, problem: `it changed since it was registered in ${first.slice(0, 12)}: ${await describeTreeChange(git, first, 'HEAD', v.dir)}` });
    else if (then.code === 0) {
      const problem = await newVersionProblem(git, 'HEAD', v);
      if (problem) out.push({ dir: v.dir, problem });
    }
  }
  return out;
}

/**
 * Versions that HEAD's history once held and HEAD lacks, without a retirement that removed them
 * (one `git log` over the asset folders, for fsck).
 */
export async function removedWithoutRetirement(git: GitContext): Promise<Violation[]> {
  const head = await headTree(git);
  if (head === EMPTY_TREE) return [];
  const [present, retired] = await Promise.all([versionsIn(git, head), deprecationsIn(git, head)]);
  const deleted = await gitZ(git, ['log', '--diff-filter=D', '--name-only', '--format=', '-z', 'HEAD', '--', ...ASSET_TYPES.map(folderOf)]);
  const out = new Map<string, Violation>();
  for (const p of deleted) {
    const file = p.replace(/^\n+/, '');
    if (!file.endsWith('/asset.yaml')) continue;
    const dir = file.slice(0, -'/asset.yaml'.length);
    if (!VERSION_DIR.test(dir) || present.has(dir) || retired.get(dir)?.removed || out.has(dir)) continue;
    out.set(dir, { dir, problem: 'it was removed without being retired (gitml deprecate --remove records why; git checkout <commit> -- <dir> restores it)' });
  }
  return [...out.values()];
}

/** Registered versions with edits in the work tree that are not staged (one `git status` call). */
export async function worktreeEdits(git: GitContext): Promise<Violation[]> {
  const head = await headTree(git);
  const versions = await versionsIn(git, head);
  if (versions.size === 0) return [];
  const status = await gitZ(git, ['status', '--porcelain', '-z', '--untracked-files=all', '--', ...ASSET_TYPES.map(folderOf)]);
  const byDir = new Map<string, string[]>();
  for (const entry of status) {
    const p = entry.slice(3);
    const dir = p.split('/').slice(0, 3).join('/');
    if (versions.has(dir)) byDir.set(dir, [...(byDir.get(dir) ?? []), p.slice(dir.length + 1)]);
  }
  return [...byDir].map(([dir, files]) => ({ dir, problem: `changed in the work tree: ${files.join(', ')}` }));
}
