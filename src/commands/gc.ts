import { GitmlError } from '../errors';
import { formatBytes } from '../progress';
import { parseDuration, storeGc } from '../sync/gc';
import { err, json, openHere, out, withJson, type Command } from './io';

export const gcCommand: Command = (io) => ({
  command: 'gc',
  describe: 'delete from the store what no branch or tag of any repository using it reaches, and repack mostly-dead packs (docs/store.md)',
  builder: (y) =>
    withJson(y)
      .option('dry-run', { type: 'boolean', default: false, describe: 'show what would be deleted, with byte counts; change nothing' })
      .option('grace', { type: 'string', default: '1d', describe: 'keep anything written less than this long ago (90s, 30m, 1h, 2d, 1w)' })
      .option('repo', { type: 'string', array: true, default: [], describe: 'another repository that uses the store (its URL), repeatable' })
      .option('forget', { type: 'string', array: true, default: [], describe: 'a recorded repository id that no longer uses the store, repeatable' })
      .option('repack-below', { type: 'number', default: 0.95, describe: 'repack packs whose live bytes are below this fraction of the pack (default: more than 5% dead; 0: never)' }),
  handler: async (argv) => {
    const graceMs = parseDuration(String(argv.grace));
    if (graceMs === null) throw new GitmlError('E_USAGE', `--grace ${JSON.stringify(argv.grace)} is not a duration`, { hint: 'Write it like 90s, 30m, 1h, 2d or 1w (0 keeps nothing young).' });
    const repackBelow = Number(argv['repack-below']);
    if (!Number.isFinite(repackBelow) || repackBelow < 0 || repackBelow > 1) throw new GitmlError('E_USAGE', '--repack-below must be a fraction from 0 to 1', { hint: 'For example --repack-below 0.5.' });
    const gitml = await openHere(io);
    try {
      const showProgress = io.stderrIsTTY && !argv.json;
      const { report, repositories } = await storeGc(gitml, {
        repos: argv.repo as string[],
        forget: argv.forget as string[],
        graceMs,
        repackBelow,
        dryRun: argv['dry-run'] as boolean,
        onProgress: (m) => showProgress && err(io, `gitml gc: ${m}`),
      });
      if (argv.json) return json(io, { store: (await gitml.objects()).url, repositories, ...report });
      const verb = report.dryRun ? 'would delete' : 'deleted';
      out(io, `gitml gc: ${(await gitml.objects()).url}: ${repositories.length} repositor${repositories.length === 1 ? 'y' : 'ies'}, ${report.live.objects} live object(s) (${formatBytes(report.live.bytes)})`);
      out(io, `gitml gc: ${verb} ${report.deleted.objects} whole object(s), ${report.deleted.manifests} manifest(s), ${report.deleted.packs} pack(s), ${report.deleted.chunks} packed object(s) and chunk(s): ${formatBytes(report.deleted.bytes)}`);
      if (report.repacked.packs > 0) out(io, `gitml gc: ${report.dryRun ? 'would repack' : 'repacked'} ${report.repacked.packs} pack(s), ${formatBytes(report.repacked.bytesBefore)} -> ${formatBytes(report.repacked.bytesAfter)}`);
      out(io, `gitml gc: the store ${report.dryRun ? 'would hold' : 'holds'} ${formatBytes(report.storeBytesAfter)} (was ${formatBytes(report.storeBytesBefore)}); ${report.keptYoung} young item(s) kept (--grace ${argv.grace})`);
      if (report.missingLive.length > 0) err(io, `gitml gc: ${report.missingLive.length} live object(s) are missing or damaged in the store; run \`gitml fsck --store --all\` and \`gitml push --repair\``);
    } finally {
      await gitml.close();
    }
  },
});
