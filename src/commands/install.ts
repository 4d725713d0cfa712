import { GitmlError } from '../errors';
import { openRepo } from '../git/repo';
import { installFilters, installHooks, type Scope } from '../install';
import { err, json, out, withJson, type Command } from './io';

export function scopeFrom(argv: { local?: boolean; system?: boolean; file?: string }): Scope {
  const chosen = [argv.local, argv.system, argv.file !== undefined].filter(Boolean).length;
  if (chosen > 1) throw new GitmlError('E_USAGE', 'choose one of --local, --system, --file', { hint: 'The default is --global.' });
  if (argv.local) return { kind: 'local' };
  if (argv.system) return { kind: 'system' };
  if (argv.file !== undefined) return { kind: 'file', file: argv.file };
  return { kind: 'global' };
}

export const scopeOptions = {
  local: { type: 'boolean', describe: 'this repository only (.git/config)' },
  system: { type: 'boolean', describe: 'every user of this machine' },
  file: { type: 'string', describe: 'this git config file' },
} as const;

export const installCommand: Command = (io) => ({
  command: 'install',
  describe: 'configure git to use gitml (filter and merge driver; --hooks adds a pre-push hook)',
  builder: (y) =>
    withJson(y)
      .options(scopeOptions)
      .option('hooks', { type: 'boolean', default: false, describe: 'also install pre-push (for remotes not written gitml::) and pre-commit (protects registered assets) hooks in this repository' })
      .option('force', { type: 'boolean', default: false, describe: 'replace different existing values' }),
  handler: async (argv) => {
    const scope = scopeFrom(argv as { local?: boolean; system?: boolean; file?: string });
    const needsRepo = scope.kind === 'local' || argv.hooks;
    const ctx = needsRepo ? (await openRepo(io.cwd, io.env)).git : { cwd: io.cwd, env: io.env };
    const result = await installFilters(ctx, scope, argv.force);
    const hooks = argv.hooks ? await installHooks(ctx) : [];
    if (argv.json) return json(io, { scope: scope.kind, ...result, hooks });
    out(io, `gitml: git config (${scope.kind}) ${result.set.length ? 'updated' : 'already up to date'}: filter.gitml.* and merge.gitml.*`);
    for (const h of hooks) out(io, `gitml: hook ${h.status}: ${h.path}`);
    if (scope.kind === 'global' && !argv.hooks) err(io, 'Next: `gitml track "*.pt"` in a repository, and name a store: `git config -f .gitmlconfig gitml.store <url>`.');
  },
});
