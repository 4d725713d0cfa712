import { GitmlError } from '../errors';
import { gitText, runGit } from '../git/exec';
import { scanIndexForPointers, scanTreeForPointers } from '../git/scan';
import { formatBytes } from '../progress';
import { enforceCacheLimit } from '../cache-limit';
import { isStored } from '../objects/object-store';
import { cacheMaxSizeOf, parseSize } from '../config';
import { err, json, openHere, out, withJson, type Command } from './io';

export const pruneCommand: Command = (io) => ({
  command: 'prune',
  describe: 'delete cached objects that no branch, tag, remote-tracking ref or the index needs, once the store is known to have them',
  builder: (y) =>
    withJson(y)
      .option('dry-run', { type: 'boolean', default: false, describe: 'show what would be deleted' })
      .option('verify-remote', { type: 'boolean', default: true, describe: 'only delete objects the store has (--no-verify-remote skips the check)' })
      .option('max-size', { type: 'string', describe: 'then keep the cache under this size (e.g. 20G), evicting least recently used objects the store has (default: gitml.cache.maxsize)' }),
  handler: async (argv) => {
    const maxSize = argv['max-size'] === undefined ? undefined : parseSize(String(argv['max-size']));
    if (maxSize === null) throw new GitmlError('E_USAGE', `--max-size ${JSON.stringify(argv['max-size'])} is not a size`, { hint: 'Write it like 20G, 500M or 1048576.' });
    const gitml = await openHere(io);
    try {
      const ctx = gitml.repo.git;
      const keep = new Set<string>();
      const refs = (await gitText(ctx, ['for-each-ref', '--format=%(objectname)', 'refs/heads', 'refs/tags', 'refs/remotes'])).split('\n').filter(Boolean);
      const head = await runGit(ctx, ['rev-parse', '--verify', '--quiet', 'HEAD'], { okCodes: [1, 128] });
      if (head.code === 0) refs.push(head.stdout.toString('utf8').trim());
      for (const sha of new Set(refs)) for (const p of await scanTreeForPointers(ctx, sha)) keep.add(p.pointer.oid);
      for (const p of await scanIndexForPointers(ctx)) keep.add(p.pointer.oid);

      const candidates: { oid: string; size: number }[] = [];
      for await (const o of gitml.cache.list()) if (!keep.has(o.oid)) candidates.push({ oid: o.oid, size: o.size });
      let deletable = candidates;
      const notInStore: string[] = [];
      if (argv['verify-remote'] && candidates.length > 0) {
        // Whole or chunked: the store's owner of the layout answers (src/objects/).
        const presence = await (await gitml.objects()).presence(candidates, Math.max(gitml.concurrency, 16));
        const stored = (c: { oid: string }) => isStored(presence.get(c.oid));
        deletable = candidates.filter(stored);
        for (const c of candidates) if (!stored(c)) notInStore.push(c.oid);
      }
      if (!argv['dry-run']) for (const c of deletable) await gitml.cache.remove(c.oid);
      const staleTemp = argv['dry-run'] ? 0 : await gitml.cache.removeStaleTemp(24 * 3600 * 1000);
      const bytes = deletable.reduce((n, c) => n + c.size, 0);
      const evicted = argv['dry-run'] ? null : await enforceCacheLimit(gitml, maxSize ?? cacheMaxSizeOf(gitml.settings));
      if (argv.json) return json(io, { deleted: deletable.map((c) => c.oid), bytes, kept: keep.size, notInStore, staleTemp, evicted, dryRun: argv['dry-run'] });
      out(io, `gitml: ${argv['dry-run'] ? 'would delete' : 'deleted'} ${deletable.length} object(s), ${formatBytes(bytes)}; ${keep.size} still needed`);
      if (evicted) out(io, `gitml: the cache held ${formatBytes(evicted.total)} (limit ${formatBytes(evicted.limit)}): evicted ${evicted.evicted} least recently used object(s) the store has, ${formatBytes(evicted.bytes)}`);
      if (evicted && evicted.stillOver > 0) err(io, `gitml: still ${formatBytes(evicted.stillOver)} over the limit: the rest is not in the store yet (push it)`);
      if (notInStore.length > 0) err(io, `gitml: kept ${notInStore.length} unneeded object(s) the store does not have yet (push them, or use --no-verify-remote)`);
    } catch (e) {
      if (e instanceof GitmlError && e.code === 'E_STORE_UNCONFIGURED') {
        throw new GitmlError(e.code, 'cannot check which objects the store has: no store is configured', { hint: `${e.hint ?? ''} Or run with --no-verify-remote.` });
      }
      throw e;
    } finally {
      await gitml.close();
    }
  },
});
