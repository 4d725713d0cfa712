import { openRepo } from '../git/repo';
import { uninstallFilters, uninstallHooks } from '../install';
import { scopeFrom, scopeOptions } from './install';
import { json, out, withJson, type Command } from './io';

export const uninstallCommand: Command = (io) => ({
  command: 'uninstall',
  describe: 'remove the gitml configuration from git (and gitml hooks with --hooks)',
  builder: (y) => withJson(y).options(scopeOptions).option('hooks', { type: 'boolean', default: false, describe: 'also remove the hooks gitml installed' }),
  handler: async (argv) => {
    const scope = scopeFrom(argv as { local?: boolean; system?: boolean; file?: string });
    const ctx = scope.kind === 'local' || argv.hooks ? (await openRepo(io.cwd, io.env)).git : { cwd: io.cwd, env: io.env };
    const removed = await uninstallFilters(ctx, scope);
    const hooks = argv.hooks ? await uninstallHooks(ctx) : [];
    if (argv.json) return json(io, { scope: scope.kind, removed, hooks });
    out(io, removed.length ? `gitml: removed ${removed.join(', ')} (${scope.kind})` : `gitml: nothing to remove (${scope.kind})`);
    for (const h of hooks) out(io, `gitml: removed hook ${h}`);
  },
});
