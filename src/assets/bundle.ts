import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Gitml } from '../context';
import { openGitml } from '../context';
import { GitmlError } from '../errors';
import { CatFileBatch } from '../git/cat-file';
import { parsePointer } from '../pointer';
import { downloadObjects } from '../transfer/transfer';
import { ASSET_FILE } from './document';
import { materializeSource, sourceOf } from './materialize';
import { parseRef } from './names';
import { locate, type Located } from './resolve';
import { treeEntries } from './verify';
import { checkRelativePath, confinedPath, makeDirs, unsafePathError } from '../safe-path';

export interface BundleResult {
  dir: string;
  assets: string[];
  files: number;
  bytes: number;
  /** Objects downloaded from the store (the rest came from the cache). */
  downloaded: number;
}

/** Refs an asset declares it needs: a model's or component's environment, an endpoint's model. */
export function dependenciesOf(spec: Record<string, unknown>): string[] {
  return ['environment', 'model'].map((k) => spec[k]).filter((v): v is string => typeof v === 'string' && /^[a-z]+s?\/[^/@#]+(@[a-z0-9._-]+)?$/.test(v));
}

/**
 * `gitml get <ref> --to <dir>`: one asset version and what it declares it needs, from this repository or
 * another one (no clone: a blob-less fetch of the metadata, then just these objects), written to a temp
 * directory beside `dir` and renamed into place, so a server reading `dir` never sees half a model.
 * Every file is checked against asset.yaml.
 */
export async function getBundle(gitml: Gitml, refText: string, to: string, force: boolean): Promise<BundleResult> {
  const target = path.resolve(gitml.cwd, to);
  if (fs.existsSync(target) && !force) {
    throw new GitmlError('E_USAGE', `${target} already exists`, { hint: 'Choose a new directory, or pass --force to replace it (the old one is swapped out atomically).' });
  }
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.gitml-${randomBytes(4).toString('hex')}`);
  // Before any network work: the target's folder must be creatable (a typo fails here, at once).
  await makeDirs(path.dirname(target));
  await fsp.mkdir(tmp);
  const result: BundleResult = { dir: target, assets: [], files: 0, bytes: 0, downloaded: 0 };
  try {
    const main = await locate(gitml, refText);
    await writeAsset(gitml, main, tmp, result);
    const base = parseRef(refText).repo;
    for (const dep of dependenciesOf(main.asset.doc.spec)) {
      const located = await locate(gitml, base ? `${base}#${dep}` : dep);
      await writeAsset(gitml, located, path.join(tmp, '_deps', ...located.asset.dir.split('/')), result);
    }
    if (fs.existsSync(target)) {
      const old = `${tmp}.old`;
      await fsp.rename(target, old);
      await fsp.rename(tmp, target);
      await fsp.rm(old, { recursive: true, force: true });
    } else {
      await fsp.rename(tmp, target);
    }
    return result;
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function writeAsset(gitml: Gitml, located: Located, dest: string, result: BundleResult): Promise<void> {
  const { asset, remote } = located;
  const git = remote ? remote.git : gitml.repo.git;
  const treeish = remote ? remote.head : 'HEAD';
  const where = remote ? `repository ${remote.url}` : 'this repository';
  const entries = await treeEntries(git, treeish, asset.dir);
  if (entries.length === 0) {
    throw new GitmlError('E_USAGE', `${asset.dir} is not in ${remote ? remote.url : 'HEAD'}`, { hint: 'Commit the registered version first (gitml register ... --commit).' });
  }
  // Every entry is checked before anything is written: a tree can name "..", ".git" or a link.
  const origin = { what: `tree entry of ${asset.dir}`, source: where };
  const files = entries.map((e) => {
    const rel = e.path.startsWith(`${asset.dir}/`) ? e.path.slice(asset.dir.length + 1) : e.path;
    checkRelativePath(rel, origin);
    if (e.mode !== '100644' && e.mode !== '100755') throw unsafePathError(rel, origin, `it is not a regular file (mode ${e.mode})`);
    return { ...e, rel };
  });
  const ctx = remote ? await openGitml({ cwd: remote.git.cwd, env: remote.git.env, log: gitml.log, workTree: false, treeish }) : await gitml.atTreeish(treeish);
  const expected = new Map(asset.doc.digest.files.map((f) => [f.path, f]));
  const batch = new CatFileBatch(git);
  const pointers: { rel: string; oid: string; size: number }[] = [];
  try {
    await makeDirs(dest);
    for (const e of files) {
      const blob = await batch.get(e.blob);
      if (!blob) throw new GitmlError('E_GIT', `cannot read ${e.path} from ${where}`);
      const pointer = blob.size < 1024 ? parsePointer(blob.content) : null;
      if (pointer) {
        pointers.push({ rel: e.rel, oid: pointer.oid, size: pointer.size });
        continue;
      }
      if (e.rel !== ASSET_FILE) {
        const want = expected.get(e.rel);
        const sha = createHash('sha256').update(blob.content).digest('hex');
        if (!want || want.sha256 !== sha || want.size !== blob.size) throw mismatch(asset.dir, e.rel);
      }
      await fsp.writeFile(await confinedPath(dest, e.rel, origin, { mkdir: true }), blob.content, { flag: 'wx' });
      result.files++;
      result.bytes += blob.size;
    }
  } finally {
    batch.close();
  }
  if (pointers.length > 0) {
    for (const p of pointers) {
      const want = expected.get(p.rel);
      if (!want || want.sha256 !== p.oid || want.size !== p.size) throw mismatch(asset.dir, p.rel);
    }
    const report = await downloadObjects(
      pointers.map((p) => ({ oid: p.oid, size: p.size, path: `${asset.dir}/${p.rel}` })),
      await ctx.transferOptions(),
    );
    if (report.failed.length > 0) throw report.failed[0]!.error;
    result.downloaded += report.downloaded.length;
    for (const p of pointers) {
      // Objects in the cache were verified when they entered it.
      await fsp.copyFile(ctx.cache.locate(p.oid), await confinedPath(dest, p.rel, origin, { mkdir: true }), fs.constants.COPYFILE_FICLONE | fs.constants.COPYFILE_EXCL);
      result.files++;
      result.bytes += p.size;
    }
  }
  if (sourceOf(asset.doc)) {
    const r = await materializeSource(asset.doc, dest, 'data', { settings: ctx.settings, env: gitml.env });
    result.files += r.files;
    result.bytes += r.bytes;
  }
  result.assets.push(asset.dir);
}

function mismatch(dir: string, rel: string): GitmlError {
  return new GitmlError('E_OBJECT_CORRUPT', `${dir}/${rel} does not match the digest in ${dir}/${ASSET_FILE}: the registered version was modified`, {
    hint: 'Run `gitml fsck` in that repository; registered versions must not change.',
  });
}
