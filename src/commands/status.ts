import { storeLocationOf } from '../config';
import { runGit } from '../git/exec';
import { scanIndexForPointers, scanTreeForPointers } from '../git/scan';
import { formatBytes } from '../progress';
import { fileState } from '../worktree';
import { json, openHere, out, withJson, type Command } from './io';

export const statusCommand: Command = (io) => ({
  command: 'status',
  describe: 'show the store, the cache, large files staged for commit and files checked out as pointers',
  builder: (y) => withJson(y),
  handler: async (argv) => {
    const gitml = await openHere(io);
    const ctx = gitml.repo.git;
    const store = storeLocationOf(gitml.settings);
    let cacheObjects = 0;
    let cacheBytes = 0;
    for await (const o of gitml.cache.list()) {
      cacheObjects++;
      cacheBytes += o.size;
    }
    const hasHead = (await runGit(ctx, ['rev-parse', '--verify', '--quiet', 'HEAD'], { okCodes: [1, 128] })).code === 0;
    const inHead = hasHead ? await scanTreeForPointers(ctx, 'HEAD') : [];
    const headByPath = new Map(inHead.map((p) => [p.path, p.pointer.oid]));
    const staged = await scanIndexForPointers(ctx);
    const changed = staged.filter((p) => headByPath.get(p.path) !== p.pointer.oid);
    const pointerOnly: string[] = [];
    if (gitml.repo.workTree) {
      for (const p of staged) if ((await fileState(gitml.repo.workTree, p.path, p.pointer)) === 'pointer') pointerOnly.push(p.path);
    }
    const result = {
      store: store ? { url: store.url, source: store.source } : null,
      cache: { path: gitml.cache.root, objects: cacheObjects, bytes: cacheBytes },
      head: { files: inHead.length, bytes: inHead.reduce((n, p) => n + p.pointer.size, 0) },
      staged: changed.map((p) => ({ path: p.path, oid: p.pointer.oid, size: p.pointer.size })),
      pointerOnly,
    };
    if (argv.json) return json(io, result);
    out(io, `Store: ${store ? `${store.url} (${store.source})` : 'none configured (set gitml.store)'}`);
    out(io, `Cache: ${gitml.cache.root} (${cacheObjects} objects, ${formatBytes(cacheBytes)})`);
    out(io, `Large files in HEAD: ${result.head.files} (${formatBytes(result.head.bytes)})`);
    if (changed.length > 0) {
      out(io, '\nLarge files staged for commit:');
      for (const p of changed) out(io, `  ${p.path} (${formatBytes(p.pointer.size)}, sha256:${p.pointer.oid.slice(0, 12)})`);
    }
    if (pointerOnly.length > 0) {
      out(io, '\nChecked out as pointers (run `gitml pull` to get the bytes):');
      for (const p of pointerOnly) out(io, `  ${p}`);
    }
  },
});
