import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { withAssetRules } from '../attributes';
import { errnoCode, GitmlError } from '../errors';
import { runGit } from '../git/exec';
import type { Repo } from '../git/repo';
import { ASSET_FILE, assetDigest, formatAssetYaml, sortedFiles, validateAsset, type SourceDigestEntry } from './document';
import { folderOf, formatRef, nextVersion, validateName, validateVersion, type AssetType } from './names';
import { headCommit, authorOf, listVersions, retiredVersions, versionDir } from './registry';
import { sha256Of, writeHashing } from '../hash';
import { openSource, type SourceSettings } from './remote-data';
import { checkRelativePath, confinedPath, makeDirs } from '../safe-path';
import type { AssetDocument, DigestEntry, LineageEntry } from './schema';

export interface RegisterRequest {
  repo: Repo;
  cwd: string;
  type: AssetType;
  name: string;
  /** 'auto' for the next integer. */
  version: string;
  paths: string[];
  move: boolean;
  description: string;
  tags: Record<string, string>;
  spec: Record<string, unknown>;
  /** Resolved inputs (lineage). */
  inputs: LineageEntry[];
  run?: { id: string; experiment: string; commit: string };
  /** Data by reference instead of paths. */
  uri?: string;
  hash: boolean;
  copy: boolean;
  source: SourceSettings;
  commit: boolean;
  /** Nothing to copy or list: the spec itself points at the data (an azureml:// path). */
  referenceOnly?: boolean;
}

export interface Registered {
  dir: string;
  ref: string;
  doc: AssetDocument;
  commit: string | null;
}

/**
 * Registers a new immutable version `<type>s/<name>/<version>/`: copies (or moves) the paths in, or
 * records data by reference, writes asset.yaml with the contents' digest and lineage, makes sure the
 * folder's files go through gitml, stages, and optionally commits. Everything is prepared in a temp
 * folder and renamed into place at the end: on any error nothing is written.
 */
export async function registerAsset(req: RegisterRequest): Promise<Registered> {
  const root = req.repo.workTree;
  if (!root) throw new GitmlError('E_USAGE', 'registering needs a work tree', { hint: 'Run it in a clone with a work tree.' });
  validateName(req.name);
  if (req.uri && req.paths.length > 0) throw new GitmlError('E_USAGE', 'give either paths or --uri, not both', { hint: '--uri registers data that stays where it is.' });
  if (!req.uri && req.paths.length === 0 && !req.referenceOnly) throw new GitmlError('E_USAGE', 'nothing to register: give paths, or --uri for data by reference', { hint: 'For example: gitml register model mnist model.pt' });

  const existing = new Set<string>();
  for (const v of await listVersions({ kind: 'worktree', root, git: req.repo.git }, req.type)) if (v.name === req.name) existing.add(v.version);
  if (await headCommit(req.repo.git)) {
    for (const v of await listVersions({ kind: 'tree', treeish: 'HEAD', git: req.repo.git }, req.type)) if (v.name === req.name) existing.add(v.version);
  }
  // A retired version's number stays taken, even when its folder was removed.
  for (const v of await retiredVersions({ kind: 'worktree', root, git: req.repo.git }, req.type, req.name)) existing.add(v);
  const version = req.version === 'auto' ? nextVersion([...existing]) : validateVersion(req.version);
  const dirRel = versionDir(req.type, req.name, version);
  const ref = formatRef({ type: req.type, name: req.name, selector: version });
  const target = path.join(root, ...dirRel.split('/'));
  if (existing.has(version) || (await fsp.stat(target).then(() => true, () => false))) {
    throw new GitmlError('E_USAGE', `${ref} is already registered, and registered versions are immutable`, {
      hint: `Register a new version instead: gitml register ${req.type} ${req.name} ... --version auto`,
    });
  }

  // Check every input before writing anything.
  const sources = await Promise.all(req.paths.map((p) => inspectInput(path.resolve(req.cwd, p), target)));
  const names = new Set<string>();
  for (const s of sources) {
    if (names.has(s.name)) throw new GitmlError('E_USAGE', `two inputs are both named ${JSON.stringify(s.name)}`, { hint: 'Register them from different folders, or rename one.' });
    names.add(s.name);
  }

  const parent = path.dirname(target);
  await makeDirs(parent);
  const tmp = path.join(parent, `.gitml-tmp-${randomBytes(6).toString('hex')}`);
  await fsp.mkdir(tmp);
  try {
    const files: DigestEntry[] = [];
    // One folder: its contents are the version (models/m/2/ holds what ./out held, whatever that
    // folder was called, so two versions from differently named folders diff file by file).
    const flatten = sources.length === 1 && sources[0]!.isDir;
    if (flatten) {
      for (const entry of (await fsp.readdir(sources[0]!.abs)).sort()) {
        if (entry === ASSET_FILE) throw new GitmlError('E_USAGE', `${sources[0]!.abs} holds a file named ${ASSET_FILE}, which gitml writes itself`, { hint: 'Rename that file, or register the folder\'s files one by one.' });
        files.push(...(await copyInto(path.join(sources[0]!.abs, entry), tmp, entry)));
      }
    } else {
      for (const s of sources) files.push(...(await copyInto(s.abs, tmp, s.name)));
    }
    const spec: Record<string, unknown> = { ...req.spec };
    if (req.uri) Object.assign(spec, await registerByReference(req, tmp, files));
    const defaultPath = flatten ? '.' : sources.length === 1 ? sources[0]!.name : '.';
    if (req.type === 'model' && spec.path === undefined && sources.length > 0) spec.path = defaultPath;
    if (req.type === 'dataset' && spec.path === undefined && sources.length > 0) {
      spec.path = defaultPath;
      spec.type ??= sources.length === 1 && !sources[0]!.isDir ? 'uri_file' : 'uri_folder';
    }
    const doc = validateAsset(
      {
        type: req.type,
        name: req.name,
        version,
        description: req.description,
        tags: req.tags,
        created: { time: new Date().toISOString(), author: await authorOf(req.repo.git) },
        spec,
        digest: { algorithm: 'sha256', value: assetDigest(files, (spec.source as { uri: string; objects: SourceDigestEntry[] } | undefined) ?? null), files: sortedFiles(files) },
        lineage: { commit: await headCommit(req.repo.git), inputs: req.inputs, ...(req.run ? { run: req.run } : {}) },
      },
      `${dirRel}/${ASSET_FILE}`,
    );
    await fsp.writeFile(path.join(tmp, ASSET_FILE), formatAssetYaml(doc));
    await fsp.rename(tmp, target);

    const attributes = path.join(root, '.gitattributes');
    const current = await fsp.readFile(attributes, 'utf8').catch((e) => (errnoCode(e) === 'ENOENT' ? '' : Promise.reject(e)));
    const rules = withAssetRules(current, folderOf(req.type));
    if (rules.added.length > 0) await fsp.writeFile(attributes, rules.text);
    await runGit(req.repo.git, ['add', '--', '.gitattributes', dirRel]);
    if (req.move) for (const s of sources) await fsp.rm(s.abs, { recursive: true, force: true });
    let commit: string | null = null;
    if (req.commit) {
      await runGit(req.repo.git, ['commit', '-q', '-m', `register ${ref}${req.description ? `: ${req.description}` : ''}`, '--', '.gitattributes', dirRel]);
      commit = await headCommit(req.repo.git);
    }
    return { dir: dirRel, ref, doc, commit };
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

interface Input {
  abs: string;
  name: string;
  isDir: boolean;
}

async function inspectInput(abs: string, target: string): Promise<Input> {
  // The folder keeps the input's name: it must be a name git can hold (not ".git", "..", ...).
  checkRelativePath(path.basename(abs), { what: 'file name', source: abs });
  let st: fs.Stats;
  try {
    st = await fsp.lstat(abs);
  } catch (e) {
    throw new GitmlError('E_USAGE', `${abs} does not exist (${errnoCode(e) ?? 'unreadable'})`, { hint: 'Check the path.' });
  }
  if (st.isSymbolicLink()) throw new GitmlError('E_USAGE', `${abs} is a symbolic link`, { hint: 'Register the file it points to instead: assets hold real files.' });
  if (!st.isFile() && !st.isDirectory()) throw new GitmlError('E_USAGE', `${abs} is not a file or folder`, { hint: 'Register regular files and folders.' });
  if (target === abs || target.startsWith(abs + path.sep)) throw new GitmlError('E_USAGE', `${abs} contains the version folder being created`, { hint: 'Register files from outside the asset folder.' });
  if (st.isDirectory()) await checkTree(abs);
  return { abs, name: path.basename(abs), isDir: st.isDirectory() };
}

/** Every name in a folder to register is one git can hold, and nothing is a link: checked before anything is written. */
async function checkTree(dir: string): Promise<void> {
  for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    checkRelativePath(entry.name, { what: 'file name', source: dir });
    if (entry.isSymbolicLink()) throw new GitmlError('E_USAGE', `${full} is a symbolic link`, { hint: 'Assets hold real files: replace the link with the file.' });
    if (entry.isDirectory()) await checkTree(full);
  }
}

/** Copies a file or a tree into `dir/name`, hashing as it copies; refuses links inside trees. */
async function copyInto(src: string, dir: string, name: string): Promise<DigestEntry[]> {
  const st = await fsp.lstat(src);
  const dest = path.join(dir, name);
  if (st.isSymbolicLink()) throw new GitmlError('E_USAGE', `${src} is a symbolic link`, { hint: 'Assets hold real files: replace the link with the file.' });
  if (st.isDirectory()) {
    await fsp.mkdir(dest);
    const out: DigestEntry[] = [];
    for (const entry of (await fsp.readdir(src)).sort()) out.push(...(await copyInto(path.join(src, entry), dest, entry)).map((e) => ({ ...e, path: `${name}/${e.path}` })));
    return out;
  }
  if (!st.isFile()) return [];
  const { sha256, size } = await writeHashing(fs.createReadStream(src, { highWaterMark: 1 << 20 }), dest, st.mode & 0o777);
  return [{ path: name, sha256, size }];
}

/** --uri: record what is at the source (and with --copy, bring it in under data/). */
async function registerByReference(req: RegisterRequest, tmp: string, files: DigestEntry[]): Promise<Record<string, unknown>> {
  const source = openSource(req.uri!, req.source);
  try {
    const objects = await source.list();
    const origin = { what: 'object key', source: req.uri! };
    for (const o of objects) checkRelativePath(o.key, origin);
    if (req.copy) {
      for (const o of objects) {
        const rel = `data/${o.key}`;
        const dest = await confinedPath(tmp, rel, origin, { mkdir: true });
        const { sha256, size } = await writeHashing(await source.open(o.key), dest);
        if (size !== o.size) throw new GitmlError('E_STORE_IO', `${o.key} changed while it was copied (${size} of ${o.size} bytes)`, { hint: 'Register again once the source is stable.' });
        o.sha256 = sha256;
        files.push({ path: rel, sha256, size });
      }
    } else {
      if (req.hash) for (const o of objects) o.sha256 = (await sha256Of(await source.open(o.key))).sha256;
      // The data is materialised under data/ by `gitml pull <ref>`; it is never committed.
      const ignore = Buffer.from('/data/\n');
      await fsp.writeFile(path.join(tmp, '.gitignore'), ignore);
      files.push({ path: '.gitignore', sha256: createHash('sha256').update(ignore).digest('hex'), size: ignore.length });
    }
    return {
      type: objects.length === 1 && !req.uri!.endsWith('/') ? 'uri_file' : 'uri_folder',
      path: 'data',
      source: { uri: req.uri!, objects, hashed: req.hash || req.copy },
    };
  } finally {
    source.close();
  }
}
