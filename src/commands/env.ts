import { cacheRootOf, concurrencyOf, fetchModeOf, storeLocationOf } from '../config';
import { runGit } from '../git/exec';
import { FILTER_CONFIG } from '../install';
import { describeParsed, parseStoreUrl } from '../store/open';
import { VERSION } from '../version';
import { findOnPath } from '../which';
import { redactText } from '../url-secrets';
import { json, openHere, out, withJson, type Command } from './io';

export const envCommand: Command = (io) => ({
  command: 'env',
  describe: 'show the settings gitml resolved and where each came from',
  builder: (y) => withJson(y),
  handler: async (argv) => {
    const gitml = await openHere(io);
    const ctx = gitml.repo.git;
    const gitVersion = (await runGit(ctx, ['version'])).stdout.toString('utf8').trim();
    const store = storeLocationOf(gitml.settings);
    let storeDetail: string | null = null;
    if (store) {
      try {
        storeDetail = describeParsed(parseStoreUrl(store));
      } catch (e) {
        storeDetail = `invalid: ${(e as Error).message}`;
      }
    }
    const filters: Record<string, string | null> = {};
    for (const [key] of FILTER_CONFIG) {
      const r = await runGit(ctx, ['config', '--get', key], { okCodes: [1] });
      filters[key] = r.code === 0 ? r.stdout.toString('utf8').trim() : null;
    }
    const result = {
      version: VERSION,
      node: process.version,
      git: gitVersion,
      gitDir: gitml.repo.gitDir,
      workTree: gitml.repo.workTree,
      cache: cacheRootOf(gitml.repo, gitml.settings, io.env),
      store: store ? { url: redactText(store.url), source: store.source, resolved: storeDetail } : null,
      concurrency: concurrencyOf(gitml.settings),
      fetch: fetchModeOf(gitml.settings),
      settings: Object.fromEntries(gitml.settings.entries().map(([k, s]) => [k, { value: redactText(s.value), source: s.source, origin: s.origin }])),
      gitConfig: filters,
      remoteHelper: findOnPath(io.env, 'git-remote-gitml'),
    };
    if (argv.json) return json(io, result);
    out(io, `gitml ${result.version} (node ${result.node}, ${result.git})`);
    out(io, `git dir:       ${result.gitDir}`);
    out(io, `work tree:     ${result.workTree ?? '(bare)'}`);
    out(io, `cache:         ${result.cache.path}  [${result.cache.source}]`);
    out(io, `store:         ${store ? `${result.store!.url}  [${store.source}] -> ${storeDetail}` : 'not configured (set gitml.store)'}`);
    out(io, `concurrency:   ${result.concurrency}`);
    out(io, `fetch:         ${result.fetch}`);
    out(io, `remote helper: ${result.remoteHelper ?? 'git-remote-gitml not found on PATH'}`);
    for (const [k, v] of Object.entries(filters)) out(io, `${k.padEnd(22)} ${v ?? '(not set: run `gitml install`)'}`);
  },
});
