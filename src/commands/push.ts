import { GitmlError } from '../errors';
import { defaultRemote, localRefs, remoteTips, remoteUrl } from '../git/remote';
import { runGit } from '../git/exec';
import { pushObjectsForRefs, summarizeUpload, type RefUpdate } from '../sync/push';
import { repairStore } from '../sync/repair';
import { formatBytes } from '../progress';
import { err, json, openHere, out, progressFor, withJson, type Command } from './io';

export const pushCommand: Command = (io) => ({
  command: 'push [remote] [refs..]',
  describe: 'upload the bytes behind the pointers in refs that the remote does not have yet (git push through gitml:: does this itself)',
  builder: (y) =>
    withJson(y)
      .positional('remote', { type: 'string', describe: 'remote name or URL (default: the upstream remote, else origin)' })
      .positional('refs', { type: 'string', array: true, describe: 'refs to push (default: HEAD)' })
      .option('all', { type: 'boolean', default: false, describe: 'every object reachable from every local branch and tag, whatever the remote has (repairs a store)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'show what would be uploaded' })
      .option('repair', { type: 'boolean', default: false, describe: 'read back every object of every local branch and tag from the store, and upload again those that are missing or damaged' }),
  handler: async (argv) => {
    const gitml = await openHere(io);
    try {
      const ctx = gitml.repo.git;
      if (argv.repair) {
        const report = await repairStore(gitml, await localRefs(ctx));
        if (argv.json) json(io, { checked: report.checked, repaired: report.repaired, unrepairable: report.unrepairable });
        else {
          out(io, `gitml: checked ${report.checked} object(s) in the store; repaired ${report.repaired.length}`);
          for (const r of report.repaired) err(io, `gitml: repaired sha256:${r.oid} ('${r.path}')`);
          for (const r of report.unrepairable) err(io, `gitml: cannot repair sha256:${r.oid} ('${r.path}'): this clone has no good copy`);
        }
        if (report.unrepairable.length > 0) throw new GitmlError('E_OBJECT_CORRUPT', `${report.unrepairable.length} object(s) are damaged or missing in the store and not in this clone`, { hint: 'Run gitml push --repair from a clone that has them.' });
        return;
      }
      const remote = (argv.remote as string | undefined) ?? (await defaultRemote(ctx));
      let refs = (argv.refs as string[] | undefined) ?? [];
      let remoteHas: string[] = [];
      if (argv.all) refs = await localRefs(ctx);
      else {
        if (refs.length === 0) refs = ['HEAD'];
        remoteHas = await remoteTips(ctx, await remoteUrl(ctx, remote));
      }
      const updates: RefUpdate[] = [];
      for (const ref of refs) {
        const r = await runGit(ctx, ['rev-parse', '--verify', '--quiet', ref], { okCodes: [1, 128] });
        if (r.code !== 0) throw new GitmlError('E_USAGE', `unknown ref ${JSON.stringify(ref)}`, { hint: 'Give a branch, tag or commit.' });
        updates.push({ dst: ref, sha: r.stdout.toString('utf8').trim() });
      }
      const started = Date.now();
      const result = await pushObjectsForRefs(gitml, updates, { remoteHas, progress: progressFor(io, argv.json), dryRun: argv['dry-run'] as boolean, repoUrl: argv.all ? undefined : await remoteUrl(ctx, remote).catch(() => undefined) });
      // `gitml push` moves no ref: the objects are protected by gc's grace period from here on.
      await result.release();
      const report = result.report;
      if (argv.json) {
        json(io, {
          remote,
          store: result.storeUrl,
          pointers: result.pointers,
          uploaded: report?.uploaded.map((o) => ({ oid: o.oid, size: o.size, path: o.path })) ?? [],
          present: report?.present ?? 0,
          missing: report?.missing.map((o) => ({ oid: o.oid, size: o.size, path: o.path })) ?? [],
          failed: report?.failed.map((f) => ({ oid: f.ref.oid, path: f.ref.path, error: f.error.message })) ?? [],
          bytes: report?.bytes ?? 0,
          newBytes: report?.newBytes ?? 0,
          dryRun: argv['dry-run'],
        });
      } else if (argv['dry-run']) {
        for (const o of report?.uploaded ?? []) out(io, `would upload ${o.oid} ${formatBytes(o.size)} ${o.path ?? ''}`);
        out(io, `gitml: ${report?.uploaded.length ?? 0} object(s) to upload, ${report?.present ?? 0} already stored`);
      } else {
        out(io, summarizeUpload(result, (Date.now() - started) / 1000) ?? `gitml: nothing to upload (${result.pointers} object(s) already stored)`);
      }
      if (result.blocked.size > 0) {
        for (const why of new Set(result.blocked.values())) err(io, why);
        throw new GitmlError('E_PUSH_INCOMPLETE', 'some objects could not be stored', { hint: 'Do not push these refs until the objects are stored.' });
      }
    } finally {
      await gitml.close();
    }
  },
});
