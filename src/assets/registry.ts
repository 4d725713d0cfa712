import fsp from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { errnoCode, GitmlError } from '../errors';
import { gitText, runGit, type GitContext } from '../git/exec';
import { ASSET_FILE, parseAssetYaml } from './document';
import { ASSET_TYPES, DEPRECATION_RECORDS_DIR, folderOf, latestVersion, type AssetRef, type AssetType } from './names';
import type { AssetDocument } from './schema';

/** Where assets are read from: the work tree (what is registered here, committed or not) or a commit. */
export type AssetSource = { kind: 'worktree'; root: string; git: GitContext } | { kind: 'tree'; treeish: string; git: GitContext };

export interface AssetVersion {
  type: AssetType;
  name: string;
  version: string;
  /** Folder of the version, relative to the repository root (always with "/"). */
  dir: string;
}

export function versionDir(type: AssetType, name: string, version: string): string {
  return `${folderOf(type)}/${name}/${version}`;
}

/** Every registered version: folders `<type>s/<name>/<version>/` that hold an asset.yaml. */
export async function listVersions(source: AssetSource, only?: AssetType): Promise<AssetVersion[]> {
  const types = only ? [only] : [...ASSET_TYPES];
  const out: AssetVersion[] = [];
  if (source.kind === 'tree') {
    const r = await runGit(source.git, ['ls-tree', '-r', '--name-only', '-z', source.treeish, '--', ...types.map(folderOf)], { okCodes: [128] });
    if (r.code !== 0) return [];
    for (const p of r.stdout.toString('utf8').split('\0')) {
      const m = /^([a-z]+)s\/([^/]+)\/([^/]+)\/asset\.yaml$/.exec(p);
      if (m && types.includes(m[1] as AssetType)) out.push({ type: m[1] as AssetType, name: m[2]!, version: m[3]!, dir: `${m[1]}s/${m[2]}/${m[3]}` });
    }
  } else {
    for (const type of types) {
      for (const name of await dirs(path.join(source.root, folderOf(type)))) {
        for (const version of await dirs(path.join(source.root, folderOf(type), name))) {
          if (await exists(path.join(source.root, folderOf(type), name, version, ASSET_FILE))) out.push({ type, name, version, dir: versionDir(type, name, version) });
        }
      }
    }
  }
  return out.sort((a, b) => a.dir.localeCompare(b.dir, 'en', { numeric: true }));
}

export async function readDocument(source: AssetSource, v: { type: AssetType; name: string; version: string }): Promise<AssetDocument | null> {
  const rel = `${versionDir(v.type, v.name, v.version)}/${ASSET_FILE}`;
  let text: string;
  if (source.kind === 'tree') {
    const r = await runGit(source.git, ['show', `${source.treeish}:${rel}`], { okCodes: [128] });
    if (r.code !== 0) return null;
    text = r.stdout.toString('utf8');
  } else {
    try {
      text = await fsp.readFile(path.join(source.root, rel), 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return null;
      throw e;
    }
  }
  return parseAssetYaml(text, rel);
}

export interface ResolvedAsset extends AssetVersion {
  doc: AssetDocument;
  /** How the selector was resolved ("3", "latest → 3", "production → 2"). */
  via: string;
}

/** Stage bookkeeping on a stage's branch: which version of an asset is in that stage. */
export function stageFile(type: AssetType, name: string): string {
  return `.gitml/stages/${folderOf(type)}/${name}.yaml`;
}

/** The record of an asset's retired versions (gitml deprecate): append-only. */
export function deprecationFile(type: AssetType, name: string): string {
  return `${DEPRECATION_RECORDS_DIR}/${folderOf(type)}/${name}.yaml`;
}

/**
 * Resolves a reference in one repository. A version must exist; `latest` is the highest; any other
 * selector is a stage, read from the stage's branch (`<remote>/<branch>` when fetched, else the local
 * branch). `stageBranch` maps a stage name to its branch.
 */
export async function resolveInRepo(source: AssetSource, ref: AssetRef, stageBranch: (stage: string) => string, remote = 'origin'): Promise<ResolvedAsset> {
  const all = (await listVersions(source, ref.type)).filter((v) => v.name === ref.name);
  let version: string;
  let via = ref.selector;
  if (ref.selector === 'latest') {
    // Retired versions are never "latest" (they stay reachable by their number).
    const retired = await retiredVersions(source, ref.type, ref.name);
    const latest = latestVersion(all.map((v) => v.version).filter((v) => !retired.has(v)));
    if (!latest) throw notFound(ref, `no version of ${folderOf(ref.type)}/${ref.name} is registered`);
    version = latest;
    via = `latest → ${latest}`;
  } else if (all.some((v) => v.version === ref.selector)) {
    version = ref.selector;
  } else if (/^[0-9]+$/.test(ref.selector)) {
    const have = all.map((v) => v.version).sort((a, b) => Number(a) - Number(b));
    throw notFound(ref, `${folderOf(ref.type)}/${ref.name} has no version ${ref.selector}${have.length ? ` (registered: ${have.join(', ')})` : ' (none is registered here)'}`);
  } else {
    const branch = stageBranch(ref.selector);
    const candidates = [`refs/remotes/${remote}/${branch}`, `refs/heads/${branch}`];
    let stageVersion: string | null = null;
    for (const c of candidates) {
      const r = await runGit(source.git, ['show', `${c}:${stageFile(ref.type, ref.name)}`], { okCodes: [128] });
      if (r.code === 0) {
        const m = /^version:\s*["']?([a-z0-9._-]+)["']?\s*$/m.exec(r.stdout.toString('utf8'));
        if (m) {
          stageVersion = m[1]!;
          via = `${ref.selector} (${c.replace(/^refs\/(remotes|heads)\//, '')}) → ${stageVersion}`;
          break;
        }
      }
    }
    if (!stageVersion) {
      throw notFound(ref, `${folderOf(ref.type)}/${ref.name} has no version ${JSON.stringify(ref.selector)}, and no branch "${branch}" records one in stage ${JSON.stringify(ref.selector)}`);
    }
    version = stageVersion;
    // The promoted version lives on the stage branch; it may not exist in this checkout yet.
    if (!all.some((v) => v.version === version)) {
      for (const c of candidates) {
        const doc = await readDocument({ kind: 'tree', treeish: c, git: source.git }, { type: ref.type, name: ref.name, version });
        if (doc) return { type: ref.type, name: ref.name, version, dir: versionDir(ref.type, ref.name, version), doc, via };
      }
    }
  }
  const doc = await readDocument(source, { type: ref.type, name: ref.name, version });
  if (!doc) throw notFound(ref, `${versionDir(ref.type, ref.name, version)}/${ASSET_FILE} is missing`);
  return { type: ref.type, name: ref.name, version, dir: versionDir(ref.type, ref.name, version), doc, via };
}

/** Versions of an asset retired with `gitml deprecate` (its record in .gitml/deprecated/). */
export async function retiredVersions(source: AssetSource, type: AssetType, name: string): Promise<Set<string>> {
  const rel = deprecationFile(type, name);
  let text: string | null;
  if (source.kind === 'tree') {
    const r = await runGit(source.git, ['show', `${source.treeish}:${rel}`], { okCodes: [128] });
    text = r.code === 0 ? r.stdout.toString('utf8') : null;
  } else {
    text = await fsp.readFile(path.join(source.root, rel), 'utf8').catch(() => null);
  }
  if (!text) return new Set();
  const list = (YAML.parse(text) as { deprecated?: { version?: unknown }[] } | null)?.deprecated ?? [];
  return new Set(list.map((d) => d?.version).filter((v): v is string => typeof v === 'string'));
}

export async function headCommit(git: GitContext): Promise<string | null> {
  const r = await runGit(git, ['rev-parse', '--verify', '--quiet', 'HEAD'], { okCodes: [1, 128] });
  return r.code === 0 ? r.stdout.toString('utf8').trim() : null;
}

export async function authorOf(git: GitContext): Promise<string> {
  const name = await gitText(git, ['config', 'user.name'], { okCodes: [1] });
  const email = await gitText(git, ['config', 'user.email'], { okCodes: [1] });
  return name || email ? `${name}${email ? ` <${email}>` : ''}`.trim() : 'unknown';
}

function notFound(ref: AssetRef, why: string): GitmlError {
  return new GitmlError('E_USAGE', `cannot resolve ${folderOf(ref.type)}/${ref.name}@${ref.selector}: ${why}`, {
    hint: 'See `gitml assets list` for what is registered.',
  });
}

async function dirs(dir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return [];
    throw e;
  }
}

async function exists(file: string): Promise<boolean> {
  return fsp.access(file).then(
    () => true,
    () => false,
  );
}
