import { fetchModeOf } from '../config';
import { localRefs, resolveCommit } from '../git/remote';
import { fetchObjectsForCommits } from '../sync/fetch';
import { formatBytes } from '../progress';
import { GitmlError } from '../errors';
import { err, json, openHere, out, progressFor, withJson, type Command, warnOverCacheLimit } from './io';

export const fetchCommand: Command = (io) => ({
  command: 'fetch [refs..]',
  describe: 'download into the cache the objects that refs need (default: HEAD), without touching the work tree',
  builder: (y) =>
    withJson(y)
      .positional('refs', { type: 'string', array: true, describe: 'branches, tags or commits (default: HEAD)' })
      .option('all', { type: 'boolean', default: false, describe: 'every object in the history of every local branch and tag' }),
  handler: async (argv) => {
    const gitml = await openHere(io);
    try {
      const ctx = gitml.repo.git;
      const names = argv.all ? await localRefs(ctx) : ((argv.refs as string[] | undefined) ?? []).length ? (argv.refs as string[]) : ['HEAD'];
      const commits: string[] = [];
      for (const n of names) commits.push(await resolveCommit(ctx, n));
      const mode = argv.all ? 'all' : fetchModeOf(gitml.settings) === 'all' ? 'all' : 'tips';
      const result = await fetchObjectsForCommits(gitml, commits, { mode, progress: progressFor(io, argv.json) });
      const r = result.report;
      if (argv.json) {
        json(io, {
          store: result.storeUrl,
          pointers: result.pointers,
          downloaded: r?.downloaded.length ?? 0,
          cached: r?.cached ?? 0,
          bytes: r?.bytes ?? 0,
          failed: r?.failed.map((f) => ({ oid: f.ref.oid, path: f.ref.path, error: f.error.message })) ?? [],
        });
      } else {
        out(io, `gitml: ${r?.downloaded.length ?? 0} object(s) downloaded (${formatBytes(r?.bytes ?? 0)}), ${r?.cached ?? 0} already cached`);
        for (const f of r?.failed ?? []) err(io, `gitml: ${f.error.message}`);
      }
      await warnOverCacheLimit(io, gitml);
      if (r && r.failed.length > 0) throw new GitmlError('E_STORE_IO', `${r.failed.length} object(s) could not be downloaded`, { hint: 'See the messages above.' });
    } finally {
      await gitml.close();
    }
  },
});
