import { requireWorkTree } from '../git/repo';
import { formatBytes } from '../progress';
import { checkoutPointers } from '../sync/checkout';
import { materializeSource, sourceOf } from '../assets/materialize';
import { locate } from '../assets/resolve';
import { GitmlError } from '../errors';
import { err, json, openHere, out, progressFor, withJson, type Command, warnOverCacheLimit } from './io';

/** git pathspecs for include/exclude globs: git's own matching, the same as everywhere else in git. */
export function pathspecsFor(include: readonly string[], exclude: readonly string[]): string[] {
  return [...include.map((g) => `:(glob)${g}`), ...exclude.map((g) => `:(glob,exclude)${g}`)];
}

export const pullCommand: Command = (io) => ({
  command: 'pull [ref]',
  describe: 'replace pointer files in the work tree with their bytes (after GITML_SKIP_SMUDGE, or a failed checkout); with an asset ref, just that asset (data by reference comes from its source, verified)',
  builder: (y) =>
    withJson(y)
      .positional('ref', { type: 'string', describe: 'an asset, e.g. datasets/mnist@2' })
      .option('include', { alias: 'I', type: 'string', array: true, default: [], describe: 'only paths matching these globs (git pathspec glob syntax)' })
      .option('exclude', { alias: 'X', type: 'string', array: true, default: [], describe: 'skip paths matching these globs' }),
  handler: async (argv) => {
    const gitml = await openHere(io);
    try {
      const workTree = requireWorkTree(gitml.repo);
      const include = [...(argv.include as string[])];
      if (argv.ref) {
        const { asset } = await locate(gitml, argv.ref as string);
        if (sourceOf(asset.doc)) {
          const r = await materializeSource(asset.doc, workTree, `${asset.dir}/data`, { settings: gitml.settings, env: io.env });
          if (argv.json) return json(io, { ref: argv.ref, dir: `${asset.dir}/data`, files: r.files, bytes: r.bytes });
          return out(io, `gitml: ${asset.dir}/data: ${r.files} file(s), ${formatBytes(r.bytes)} from ${sourceOf(asset.doc)!.uri}, verified`);
        }
        include.push(`${asset.dir}/**`);
      }
      const report = await checkoutPointers(gitml, pathspecsFor(include, argv.exclude as string[]), progressFor(io, argv.json));
      const { failed, skipped } = report;
      const pulled = report.written.length;
      if (argv.json) {
        json(io, { pulled, alreadyPresent: report.present, skippedModified: skipped, downloadedBytes: report.downloadedBytes, failed });
      } else {
        out(io, `gitml: ${pulled} file(s) checked out, ${formatBytes(report.downloadedBytes)} downloaded; ${report.present} already in place`);
        for (const p of skipped) err(io, `gitml: left '${p}' alone: it has local changes`);
        for (const f of failed) err(io, `gitml: ${f.error}`);
      }
      await warnOverCacheLimit(io, gitml);
      if (failed.length > 0) {
        throw new GitmlError('E_STORE_IO', `${failed.length} file(s) could not be checked out`, {
          hint: 'See the messages above; `gitml env` shows the store in use.',
        });
      }
    } finally {
      await gitml.close();
    }
  },
});
