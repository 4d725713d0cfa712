import { GitmlError } from '../errors';
import { migrateFromLfs } from '../migrate/lfs';
import { formatBytes } from '../progress';
import { err, json, openHere, out, withJson, type Command } from './io';

export const migrateCommand: Command = (io) => ({
  command: 'migrate',
  describe: 'move a repository from git-lfs to gitml: its objects into the gitml store, its rules to gitml, optionally its history (docs/migrate.md)',
  builder: (y) =>
    withJson(y)
      .option('from-lfs', { type: 'boolean', default: false, describe: 'migrate from git-lfs (the only source for now)' })
      .option('rewrite', { type: 'boolean', default: false, describe: 'rewrite history so no commit holds LFS pointers (backup refs kept; prints the commit map)' })
      .option('include-ref', { type: 'string', array: true, default: [], describe: 'branch or tag to migrate, repeatable (default: every local branch and tag)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'show what would move (objects, bytes, files), change nothing' }),
  handler: async (argv) => {
    if (!argv['from-lfs']) throw new GitmlError('E_USAGE', 'say where from: gitml migrate --from-lfs', { hint: 'git-lfs is the only source gitml migrates from for now.' });
    const gitml = await openHere(io);
    try {
      const report = await migrateFromLfs(gitml, {
        rewrite: argv.rewrite as boolean,
        includeRefs: argv['include-ref'] as string[],
        dryRun: argv['dry-run'] as boolean,
        onProgress: (m) => err(io, `gitml: ${m}`),
      });
      if (argv.json) return json(io, report);
      const what = `${report.objects} git-lfs object(s), ${formatBytes(report.bytes)}, from ${report.refs.length} ref(s)`;
      if (report.dryRun) {
        out(io, `Would migrate ${what}: ${report.local} in this clone, ${report.objects - report.local} to fetch with git lfs fetch --all.`);
        if (report.attributes.length) out(io, `Would switch the rules in ${report.attributes.join(', ')} from lfs to gitml${argv.rewrite ? ', in every commit' : ' (new commit)'}.`);
        return;
      }
      out(io, `Migrated ${what} (${report.fetched} fetched with git-lfs, ${report.uploaded} uploaded to the gitml store).`);
      if (report.commit) out(io, `Committed the new rules as ${report.commit.slice(0, 12)}; older commits still check out through gitml.`);
      for (const r of report.rewritten) out(io, `${r.ref}: ${r.old.slice(0, 12)} -> ${r.new.slice(0, 12)}`);
      if (report.commitMap) out(io, `Old -> new commit map: ${report.commitMap}; backups under refs/gitml-backup/. Push with --force to publish.`);
    } finally {
      await gitml.close();
    }
  },
});
