import { resolveCommit } from '../git/remote';
import { scanTreeForPointers } from '../git/scan';
import { formatBytes } from '../progress';
import { fileState } from '../worktree';
import { json, openHere, out, withJson, type Command } from './io';

export const lsFilesCommand: Command = (io) => ({
  command: 'ls-files [ref]',
  describe: 'list the files stored through gitml in a ref (default HEAD): * checked out, - pointer only',
  builder: (y) =>
    withJson(y)
      .positional('ref', { type: 'string', default: 'HEAD' })
      .option('long', { alias: 'l', type: 'boolean', default: false, describe: 'show the full oid and the size' }),
  handler: async (argv) => {
    const gitml = await openHere(io);
    const commit = await resolveCommit(gitml.repo.git, argv.ref as string);
    const pointers = await scanTreeForPointers(gitml.repo.git, commit);
    const rows = await Promise.all(
      pointers.map(async (p) => ({
        path: p.path,
        oid: p.pointer.oid,
        size: p.pointer.size,
        checkedOut: gitml.repo.workTree ? (await fileState(gitml.repo.workTree, p.path, p.pointer)) === 'materialized' : false,
        cached: await gitml.cache.has(p.pointer.oid, p.pointer.size),
      })),
    );
    rows.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    if (argv.json) return json(io, { ref: argv.ref, commit, files: rows });
    for (const r of rows) {
      const oid = argv.long ? r.oid : r.oid.slice(0, 10);
      out(io, `${oid} ${r.checkedOut ? '*' : '-'} ${r.path}${argv.long ? ` (${formatBytes(r.size)})` : ''}`);
    }
  },
});
