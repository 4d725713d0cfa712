import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Gitml } from '../context';
import { GitmlError } from '../errors';
import { CatFileBatch } from '../git/cat-file';
import { gitText, gitZ, runGit } from '../git/exec';
import { scanRangeForPointers } from '../git/scan';
import { requireWorkTree } from '../git/repo';
import { CHAINED_SUFFIX, installHooks, installLfsCompat } from '../install';
import { formatPointer, GITML_SPEC, LFS_SPEC, MAX_FOREIGN_POINTER_SIZE, parsePointer } from '../pointer';
import { uploadObjects, type ObjectRef } from '../transfer/transfer';
import { findOnPath } from '../which';

/**
 * `gitml migrate --from-lfs` (docs/migrate.md). Every git-lfs object reachable from the chosen refs
 * comes into the gitml cache (from .git/lfs/objects, or through `git lfs fetch --all` when git-lfs is
 * installed), verified by its sha256, and into the gitml store. Then either:
 * - forward: `.gitattributes` rules switch from lfs to gitml in a new commit, and this clone serves
 *   the older commits' `filter=lfs` files through gitml (filter.lfs.* set to gitml here; `gitml install`
 *   does the same on machines without git-lfs), so old commits still check out;
 * - `--rewrite`: history is rewritten like `git lfs migrate import` does, so no commit holds an LFS
 *   pointer or an lfs rule (same file ids: the pointers name the same sha256 and size), with backup
 *   refs under refs/gitml-backup/ and the old → new commit map written out.
 */
export interface MigrateOptions {
  rewrite: boolean;
  /** Refs to migrate (full names or branch/tag names); default: every local branch and tag. */
  includeRefs: string[];
  dryRun: boolean;
  onProgress?: (message: string) => void;
}

export interface MigrateReport {
  refs: string[];
  objects: number;
  bytes: number;
  /** Found in .git/lfs/objects (or the gitml cache already) before any fetch. */
  local: number;
  /** Brought by `git lfs fetch --all`. */
  fetched: number;
  uploaded: number;
  dryRun: boolean;
  attributes: string[];
  commit: string | null;
  rewritten: { ref: string; old: string; new: string }[];
  commitMap: string | null;
  backupRefs: string[];
  /** git-lfs's hooks removed from this clone. */
  hooksRemoved: string[];
}

/** `filter=lfs diff=lfs merge=lfs` → gitml's, in one .gitattributes text. Pure. */
export function migrateAttributes(text: string): string {
  return text.replace(/(^|\s)(filter|diff|merge)=lfs(?=\s|$)/gm, '$1$2=gitml');
}

/** The refs a migration covers, as full names. */
async function refsOf(gitml: Gitml, include: string[]): Promise<string[]> {
  const git = gitml.repo.git;
  if (include.length === 0) return (await gitText(git, ['for-each-ref', '--format=%(refname)', 'refs/heads', 'refs/tags'])).split('\n').filter(Boolean);
  const out: string[] = [];
  for (const r of include) {
    const full = r.startsWith('refs/') ? r : (await gitText(git, ['rev-parse', '--symbolic-full-name', r]).catch(() => '')) || (await gitText(git, ['rev-parse', '--verify', '-q', `refs/tags/${r}`]).then(() => `refs/tags/${r}`).catch(() => ''));
    if (!full || (await runGit(git, ['rev-parse', '--verify', '-q', full], { okCodes: [1, 128] })).code !== 0) {
      throw new GitmlError('E_USAGE', `--include-ref ${JSON.stringify(r)} names no branch or tag here`, { hint: 'Give branch or tag names (git branch -a, git tag).' });
    }
    out.push(full);
  }
  return out;
}

/** Where git-lfs keeps an object in this clone. */
function lfsObjectPath(gitDir: string, oid: string): string {
  return path.join(gitDir, 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid);
}

/** Copies what .git/lfs/objects has into the gitml cache, verified; returns the oids still missing. */
async function importLocal(gitml: Gitml, refs: ObjectRef[]): Promise<ObjectRef[]> {
  const missing: ObjectRef[] = [];
  for (const ref of refs) {
    if (await gitml.cache.has(ref.oid, ref.size)) continue;
    const file = lfsObjectPath(gitml.repo.commonDir, ref.oid);
    if (!fs.existsSync(file)) {
      missing.push(ref);
      continue;
    }
    // writeStream checks the bytes against the pointer: a damaged LFS object is refused, not copied.
    await gitml.cache.writeStream(fs.createReadStream(file, { highWaterMark: 1 << 20 }), ref);
  }
  return missing;
}

export async function migrateFromLfs(gitml: Gitml, options: MigrateOptions): Promise<MigrateReport> {
  const root = requireWorkTree(gitml.repo);
  const git = gitml.repo.git;
  const say = options.onProgress ?? (() => undefined);
  const refs = await refsOf(gitml, options.includeRefs);
  if (refs.length === 0) throw new GitmlError('E_USAGE', 'this repository has no branch or tag to migrate', { hint: 'Commit first.' });
  if (options.rewrite && !options.dryRun) {
    const dirty = await gitText(git, ['status', '--porcelain', '--untracked-files=no']);
    if (dirty) throw new GitmlError('E_USAGE', 'the work tree has uncommitted changes: --rewrite rewrites history and resets the work tree', { hint: 'Commit or stash them first.' });
  }
  say(`scanning ${refs.length} ref(s) for git-lfs pointers`);
  const found = (await scanRangeForPointers(git, refs, [])).filter((p) => p.pointer.spec === LFS_SPEC);
  const unique = new Map<string, ObjectRef>();
  for (const p of found) unique.set(p.pointer.oid, { oid: p.pointer.oid, size: p.pointer.size, path: p.path });
  const objects = [...unique.values()];
  const report: MigrateReport = {
    refs,
    objects: objects.length,
    bytes: objects.reduce((n, o) => n + o.size, 0),
    local: 0,
    fetched: 0,
    uploaded: 0,
    dryRun: options.dryRun,
    attributes: [],
    commit: null,
    rewritten: [],
    commitMap: null,
    backupRefs: [],
    hooksRemoved: [],
  };
  if (options.dryRun) {
    let local = 0;
    for (const o of objects) if ((await gitml.cache.has(o.oid, o.size)) || fs.existsSync(lfsObjectPath(gitml.repo.commonDir, o.oid))) local++;
    report.local = local;
    report.attributes = await lfsAttributeFiles(gitml);
    return report;
  }

  let missing = await importLocal(gitml, objects);
  report.local = objects.length - missing.length;
  if (missing.length > 0 && findOnPath(gitml.env, 'git-lfs')) {
    say(`git lfs fetch --all: ${missing.length} object(s) are not in this clone`);
    const r = await runGit(git, ['lfs', 'fetch', '--all'], { okCodes: [0, 1, 2], inheritStderr: true });
    if (r.code !== 0) say('git lfs fetch did not get everything');
    const still = await importLocal(gitml, missing);
    report.fetched = missing.length - still.length;
    missing = still;
  }
  if (missing.length > 0) {
    throw new GitmlError('E_OBJECT_MISSING', `${missing.length} git-lfs object(s) are neither in this clone nor fetchable: ${missing.slice(0, 5).map((m) => `${m.path} (sha256:${m.oid.slice(0, 12)})`).join(', ')}${missing.length > 5 ? ', ...' : ''}`, {
      hint: 'Run `git lfs fetch --all` against a server that has them (git-lfs must be installed), then migrate again. Nothing was changed.',
    });
  }

  say(`uploading ${objects.length} object(s) to the gitml store`);
  const upload = await uploadObjects(objects, await gitml.transferOptions());
  if (upload.failed.length > 0 || upload.missing.length > 0) {
    const first = upload.failed[0]?.error.message ?? `${upload.missing[0]!.path} is not in the cache`;
    throw new GitmlError('E_STORE_IO', `could not store ${upload.failed.length + upload.missing.length} object(s) in the gitml store: ${first}`, { hint: 'Nothing in git was changed; fix the store (gitml env) and migrate again.' });
  }
  report.uploaded = upload.uploaded.length;

  if (options.rewrite) await rewriteHistory(gitml, refs, report, say);
  else await migrateForward(gitml, root, report);
  // git-lfs's hooks would now push LFS objects to remotes that have no LFS server (a gitml:: one):
  // they go, gitml's come (pre-push for plain remotes, pre-commit for registered assets).
  report.hooksRemoved = await removeLfsHooks(gitml);
  await installHooks(git);
  return report;
}

/** Removes the hooks git-lfs installed in this clone (they run `git lfs <hook>`). */
async function removeLfsHooks(gitml: Gitml): Promise<string[]> {
  const removed: string[] = [];
  for (const name of ['pre-push', 'post-checkout', 'post-commit', 'post-merge']) {
    const hook = path.resolve(gitml.repo.git.cwd, await gitText(gitml.repo.git, ['rev-parse', '--git-path', `hooks/${name}`]));
    // Where gitml's hook already runs, git-lfs's was kept beside it to run after it.
    for (const file of [hook, `${hook}${CHAINED_SUFFIX}`]) {
      const text = await fsp.readFile(file, 'utf8').catch(() => '');
      if (/^\s*git lfs /m.test(text) && !text.includes('installed by gitml')) {
        await fsp.rm(file, { force: true });
        removed.push(name);
      }
    }
  }
  return removed;
}

/** Tracked .gitattributes files at HEAD that name the lfs filter. */
async function lfsAttributeFiles(gitml: Gitml): Promise<string[]> {
  const files = await gitZ(gitml.repo.git, ['ls-files', '-z', '--', '.gitattributes', '*/.gitattributes']);
  const out: string[] = [];
  for (const f of files) {
    const text = await fsp.readFile(path.join(gitml.repo.workTree!, f), 'utf8').catch(() => '');
    if (migrateAttributes(text) !== text) out.push(f);
  }
  return out;
}

async function migrateForward(gitml: Gitml, root: string, report: MigrateReport): Promise<void> {
  const git = gitml.repo.git;
  report.attributes = await lfsAttributeFiles(gitml);
  for (const f of report.attributes) {
    const file = path.join(root, f);
    await fsp.writeFile(file, migrateAttributes(await fsp.readFile(file, 'utf8')));
  }
  // Older commits name filter=lfs: in this clone gitml serves them (it reads git-lfs pointers).
  await installLfsCompat(git, { kind: 'local' }, true);
  if (report.attributes.length === 0) return;
  await runGit(git, ['add', '--', ...report.attributes]);
  if (fs.existsSync(path.join(root, '.gitmlconfig'))) await runGit(git, ['add', '--', '.gitmlconfig']);
  // Files under the new rules are cleaned again through gitml (their bytes are in the cache).
  await runGit(git, ['add', '--renormalize', '--', '.']);
  await runGit(git, ['commit', '-q', '-m', 'Migrate large files from git-lfs to gitml\n\ngitml migrate --from-lfs: .gitattributes rules switched from lfs to gitml; the objects are in the gitml store.']);
  report.commit = await gitText(git, ['rev-parse', 'HEAD']);
}

/**
 * Rewrites every commit reachable from `refs`: LFS pointer blobs become gitml pointers (same oid and
 * size), lfs rules in .gitattributes become gitml rules. Trees are rewritten once each (memoized by
 * id), commits keep their author, committer, dates and message (a signature no longer matches and is
 * dropped). Refs move only after every commit is written; each old tip is kept under
 * refs/gitml-backup/.
 */
async function rewriteHistory(gitml: Gitml, refs: string[], report: MigrateReport, say: (m: string) => void): Promise<void> {
  const git = gitml.repo.git;
  const batch = new CatFileBatch(git);
  const trees = new Map<string, string>();
  const blobs = new Map<string, string>();
  const commits = new Map<string, string>();
  try {
    const newBlob = async (sha: string, name: string, size: number): Promise<string> => {
      const key = `${sha}\0${name === '.gitattributes'}`;
      const known = blobs.get(key);
      if (known) return known;
      let out = sha;
      if (name === '.gitattributes' || size < MAX_FOREIGN_POINTER_SIZE) {
        const content = (await batch.get(sha))!.content;
        let next: string | null = null;
        if (name === '.gitattributes') {
          const text = content.toString('utf8');
          if (migrateAttributes(text) !== text) next = migrateAttributes(text);
        } else {
          const p = parsePointer(content);
          if (p && p.spec === LFS_SPEC) next = formatPointer({ oid: p.oid, size: p.size, spec: GITML_SPEC });
        }
        if (next !== null) out = await gitText(git, ['hash-object', '-w', '--stdin'], { input: next });
      }
      blobs.set(key, out);
      return out;
    };
    const newTree = async (sha: string): Promise<string> => {
      const known = trees.get(sha);
      if (known) return known;
      const entries = await gitZ(git, ['ls-tree', '-z', '-l', sha]);
      const lines: string[] = [];
      let changed = false;
      for (const e of entries) {
        const tab = e.indexOf('\t');
        const [mode, type, id, size] = e.slice(0, tab).split(/\s+/) as [string, string, string, string];
        const name = e.slice(tab + 1);
        let next = id;
        if (type === 'tree') next = await newTree(id);
        else if (type === 'blob') next = await newBlob(id, name, Number(size));
        if (next !== id) changed = true;
        lines.push(`${mode} ${type} ${next}\t${name}`);
      }
      const out = changed ? await gitText(git, ['mktree', '-z'], { input: lines.map((l) => `${l}\0`).join('') }) : sha;
      trees.set(sha, out);
      return out;
    };
    // Every commit also gets this repository's .gitmlconfig (the store), as git lfs migrate import
    // gives every commit its .gitattributes: an old commit checks out on its own.
    const config = (await gitZ(git, ['ls-tree', '-z', 'HEAD', '--', '.gitmlconfig']))[0];
    const withConfig = async (tree: string): Promise<string> => {
      if (!config) return tree;
      const entries = await gitZ(git, ['ls-tree', '-z', tree]);
      if (entries.some((e) => e.endsWith('\t.gitmlconfig'))) return tree;
      return gitText(git, ['mktree', '-z'], { input: [...entries, config].map((l) => `${l}\0`).join('') });
    };
    const order = (await gitText(git, ['rev-list', '--topo-order', '--reverse', ...refs])).split('\n').filter(Boolean);
    say(`rewriting ${order.length} commit(s)`);
    for (const sha of order) {
      const raw = (await batch.get(sha))!.content.toString('utf8');
      const headerEnd = raw.indexOf('\n\n');
      const headers = raw.slice(0, headerEnd).split('\n');
      const message = raw.slice(headerEnd);
      const out: string[] = [];
      let skippingSignature = false;
      let changed = false;
      for (const h of headers) {
        if (skippingSignature && h.startsWith(' ')) continue;
        skippingSignature = false;
        if (h.startsWith('gpgsig') || h.startsWith('gpgsig-sha256')) {
          skippingSignature = true;
          changed = true;
          continue;
        }
        if (h.startsWith('tree ')) {
          const t = await withConfig(await newTree(h.slice(5)));
          if (t !== h.slice(5)) changed = true;
          out.push(`tree ${t}`);
        } else if (h.startsWith('parent ')) {
          const p = commits.get(h.slice(7)) ?? h.slice(7);
          if (p !== h.slice(7)) changed = true;
          out.push(`parent ${p}`);
        } else out.push(h);
      }
      commits.set(sha, changed ? await gitText(git, ['hash-object', '-t', 'commit', '-w', '--stdin'], { input: out.join('\n') + message }) : sha);
    }
    // Move the refs (annotated tags get a new tag object for the new commit), old tips backed up.
    const head = await gitText(git, ['symbolic-ref', '-q', 'HEAD']).catch(() => '');
    for (const ref of refs) {
      const old = await gitText(git, ['rev-parse', ref]);
      const type = await gitText(git, ['cat-file', '-t', old]);
      let next: string;
      if (type === 'tag') {
        const raw = (await batch.get(old))!.content.toString('utf8');
        const target = /^object ([0-9a-f]+)$/m.exec(raw)![1]!;
        const mapped = commits.get(target) ?? target;
        next = mapped === target ? old : await gitText(git, ['mktag'], { input: raw.replace(/^object [0-9a-f]+$/m, `object ${mapped}`).replace(/\n-----BEGIN PGP SIGNATURE-----[\s\S]*$/, '\n') });
      } else next = commits.get(old) ?? old;
      if (next === old) continue;
      const backup = `refs/gitml-backup/${ref.replace(/^refs\//, '')}`;
      await runGit(git, ['update-ref', backup, old]);
      report.backupRefs.push(backup);
      await runGit(git, ['update-ref', '-m', 'gitml migrate --from-lfs --rewrite', ref, next, old]);
      report.rewritten.push({ ref, old, new: next });
    }
    const mapFile = path.join(gitml.repo.commonDir, 'gitml', 'migrate', `commit-map-${Date.now()}.txt`);
    await fsp.mkdir(path.dirname(mapFile), { recursive: true });
    await fsp.writeFile(mapFile, [...commits].filter(([a, b]) => a !== b).map(([a, b]) => `${a} ${b}\n`).join(''));
    report.commitMap = mapFile;
    // The checked-out branch moved: the work tree follows, every file now through gitml.
    if (head && report.rewritten.some((r) => r.ref === head)) await runGit(git, ['reset', '-q', '--hard', 'HEAD']);
    // What is left naming lfs at HEAD (nothing, unless HEAD is outside the migrated refs).
    report.attributes = await lfsAttributeFiles(gitml);
  } finally {
    batch.close();
  }
}
