import fs from 'node:fs';
import { checkAgainstFirstCommit, removedWithoutRetirement, worktreeEdits } from '../assets/immutability';
import { GitmlError } from '../errors';
import { localRefs } from '../git/remote';
import { scanRangeForPointers, scanTreeForPointers, type PointerBlob } from '../git/scan';
import { sha256Of } from '../hash';
import { STALE_TEMP_MS } from '../store/directory';
import { runAll } from '../util/pool';
import { err, json, openHere, out, withJson, type Command } from './io';

interface Problem {
  where: 'cache' | 'store';
  oid: string;
  path?: string;
  problem: 'damaged' | 'missing';
  detail: string;
}

export const fsckCommand: Command = (io) => ({
  command: 'fsck',
  describe: 'verify every object in the cache (and with --store, the objects HEAD needs in the store) against its sha256',
  builder: (y) =>
    withJson(y)
      .option('store', { type: 'boolean', default: false, describe: 'also download and verify the objects HEAD needs from the store' })
      .option('all', { type: 'boolean', default: false, describe: 'with --store: every object in the history of every local branch and tag' })
      .option('fix', { type: 'boolean', default: false, describe: 'remove damaged copies from the cache (they are downloaded again when needed)' }),
  handler: async (argv) => {
    const gitml = await openHere(io);
    try {
      const problems: Problem[] = [];
      const cached: { oid: string; path: string }[] = [];
      for await (const o of gitml.cache.list()) cached.push({ oid: o.oid, path: o.path });
      await runAll(cached, 2, async (o) => {
        const actual = await sha256Of(fs.createReadStream(o.path, { highWaterMark: 1 << 20 }));
        if (actual.sha256 !== o.oid) {
          problems.push({ where: 'cache', oid: o.oid, problem: 'damaged', detail: `bytes hash to ${actual.sha256}` });
          if (argv.fix) await gitml.cache.remove(o.oid);
        }
      });
      let storeChecked = 0;
      let storeUrl: string | null = null;
      let staleUploads = { files: 0, bytes: 0 };
      if (argv.store) {
        const ctx = gitml.repo.git;
        const pointers: PointerBlob[] = argv.all ? await scanRangeForPointers(ctx, await localRefs(ctx), []) : await scanTreeForPointers(ctx, 'HEAD');
        const unique = [...new Map(pointers.map((p) => [p.pointer.oid, p])).values()];
        const objects = await gitml.objects();
        storeUrl = objects.url;
        const outcomes = await runAll(unique, gitml.concurrency, async (p) => {
          const v = await objects.verify({ oid: p.pointer.oid, size: p.pointer.size, path: p.path });
          if (v.state !== 'ok') problems.push({ where: 'store', oid: p.pointer.oid, path: p.path, problem: v.state, detail: v.detail });
        });
        for (const o of outcomes) if (!o.ok) throw o.error;
        storeChecked = unique.length;
        staleUploads = await objects.staleTemp(STALE_TEMP_MS, true);
      }
      const assets = [...(await checkAgainstFirstCommit(gitml.repo.git)), ...(await removedWithoutRetirement(gitml.repo.git)), ...(gitml.repo.workTree ? await worktreeEdits(gitml.repo.git) : [])];
      if (argv.json) {
        json(io, { cacheChecked: cached.length, storeChecked, store: storeUrl, problems, assets, staleUploads, fixed: argv.fix ? problems.filter((p) => p.where === 'cache').length : 0 });
      } else {
        out(io, `gitml: checked ${cached.length} cached object(s)${argv.store ? ` and ${storeChecked} object(s) in ${storeUrl}` : ''}`);
        for (const p of problems) err(io, `${p.where}: ${p.problem} sha256:${p.oid}${p.path ? ` ('${p.path}')` : ''}: ${p.detail}`);
        for (const a of assets) err(io, `asset: registered version ${a.dir}: ${a.problem}`);
        if (staleUploads.files > 0) err(io, `store: ${staleUploads.files} temp file(s) (${staleUploads.bytes} bytes) left by interrupted uploads more than a day ago; the next push removes them`);
      }
      if (assets.length > 0 && problems.length === 0) {
        throw new GitmlError('E_OBJECT_CORRUPT', `${assets.length} registered asset version(s) were modified or removed`, {
          hint: 'Registered versions are immutable: restore them (git checkout HEAD~ -- <dir>, or git restore) and register the change as a new version.',
        });
      }
      if (problems.length > 0) {
        const inStore = problems.some((p) => p.where === 'store');
        throw new GitmlError('E_OBJECT_CORRUPT', `${problems.length} problem(s) found`, {
          hint: inStore
            ? 'Repair the store from a clone that has good copies: `gitml push --repair`.'
            : argv.fix
              ? 'Damaged cache copies were removed; they are downloaded again when needed.'
              : 'Run `gitml fsck --fix` to remove damaged cache copies.',
        });
      }
    } finally {
      await gitml.close();
    }
  },
});
