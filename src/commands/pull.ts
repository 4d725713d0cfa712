import { runGit } from '../git/exec';
import { requireWorkTree } from '../git/repo';
import { scanIndexForPointers } from '../git/scan';
import { formatBytes } from '../progress';
import { runAll } from '../transfer/queue';
import { downloadObjects } from '../transfer/objects';
import { fileState, materialize } from '../worktree';
import path from 'node:path';
import { materializeSource, sourceOf } from '../assets/materialize';
import { locate } from '../assets/resolve';
import { GitmlError } from '../errors';
import { err, json, openHere, out, progressFor, withJson, type Command } from './io';

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
          const r = await materializeSource(asset.doc, path.join(workTree, ...asset.dir.split('/'), 'data'), { setting: (k) => gitml.settings.get(k)?.value, env: io.env });
          if (argv.json) return json(io, { ref: argv.ref, dir: `${asset.dir}/data`, files: r.files, bytes: r.bytes });
          return out(io, `gitml: ${asset.dir}/data: ${r.files} file(s), ${formatBytes(r.bytes)} from ${sourceOf(asset.doc)!.uri}, verified`);
        }
        include.push(`${asset.dir}/**`);
      }
      const entries = await scanIndexForPointers(gitml.repo.git, pathspecsFor(include, argv.exclude as string[]));
      const states = await Promise.all(entries.map((e) => fileState(workTree, e.path, e.pointer)));
      const todo = entries.filter((_, i) => states[i] === 'pointer');
      const skipped = entries.filter((_, i) => states[i] === 'other').map((e) => e.path);
      let downloadedBytes = 0;
      const failed: { path: string; error: string }[] = [];
      if (todo.length > 0) {
        const report = await downloadObjects(
          todo.map((e) => ({ oid: e.pointer.oid, size: e.pointer.size, path: e.path })),
          await gitml.transferOptions(progressFor(io, argv.json)),
        );
        downloadedBytes = report.bytes;
        const bad = new Set(report.failed.map((f) => f.ref.oid));
        for (const f of report.failed) failed.push({ path: f.ref.path ?? '', error: f.error.message });
        const writable = todo.filter((e) => !bad.has(e.pointer.oid));
        const written = await runAll(writable, gitml.concurrency, (e) => materialize(gitml.cache, workTree, e.path, e.pointer, e.mode));
        for (const w of written) if (!w.ok) failed.push({ path: w.item.path, error: (w.error as Error).message });
        // The rewritten files' size and mtime no longer match the index, and git takes a size change as
        // a modification without looking at content: re-add them (they clean to the same pointer blob).
        const done = written.filter((w) => w.ok).map((w) => w.item.path);
        if (done.length > 0) await runGit(gitml.repo.git, ['update-index', '-q', '-z', '--stdin'], { input: done.join('\0') + '\0' });
      }
      const pulled = todo.length - failed.length;
      if (argv.json) {
        json(io, { pulled, alreadyPresent: entries.length - todo.length - skipped.length, skippedModified: skipped, downloadedBytes, failed });
      } else {
        out(io, `gitml: ${pulled} file(s) checked out, ${formatBytes(downloadedBytes)} downloaded; ${entries.length - todo.length} already in place`);
        for (const p of skipped) err(io, `gitml: left '${p}' alone: it has local changes`);
        for (const f of failed) err(io, `gitml: ${f.error}`);
      }
      if (failed.length > 0) {
        throw new GitmlError(failed.length === 1 ? 'E_OBJECT_MISSING' : 'E_STORE_IO', `${failed.length} file(s) could not be checked out`, {
          hint: 'See the messages above; `gitml env` shows the store in use.',
        });
      }
    } finally {
      await gitml.close();
    }
  },
});
