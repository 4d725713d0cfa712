import { GitmlError } from '../errors';
import { gitText, runGit } from '../git/exec';
import { scanIndexForPointers, scanTreeForPointers } from '../git/scan';
import { formatBytes } from '../progress';
import { err, json, openHere, out, withJson, type Command } from './io';

export const pruneCommand: Command = (io) => ({
  command: 'prune',
  describe: 'delete cached objects that no branch, tag, remote-tracking ref or the index needs, once the store is known to have them',
  builder: (y) =>
    withJson(y)
      .option('dry-run', { type: 'boolean', default: false, describe: 'show what would be deleted' })
      .option('verify-remote', { type: 'boolean', default: true, describe: 'only delete objects the store has (--no-verify-remote skips the check)' }),
  handler: async (argv) => {
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
        const stored = (c: { oid: string }) => presence.get(c.oid) === 'whole' || presence.get(c.oid) === 'chunked';
        deletable = candidates.filter(stored);
        for (const c of candidates) if (!stored(c)) notInStore.push(c.oid);
      }
      if (!argv['dry-run']) for (const c of deletable) await gitml.cache.remove(c.oid);
      const staleTemp = argv['dry-run'] ? 0 : await gitml.cache.removeStaleTemp(24 * 3600 * 1000);
      const bytes = deletable.reduce((n, c) => n + c.size, 0);
      if (argv.json) return json(io, { deleted: deletable.map((c) => c.oid), bytes, kept: keep.size, notInStore, staleTemp, dryRun: argv['dry-run'] });
      out(io, `gitml: ${argv['dry-run'] ? 'would delete' : 'deleted'} ${deletable.length} object(s), ${formatBytes(bytes)}; ${keep.size} still needed`);
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
