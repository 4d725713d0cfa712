import { GitmlError, isGitmlError } from '../errors';
import { openRepo } from '../git/repo';
import { installFilters, installHooks, installLfsCompat, type Scope } from '../install';
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
  describe: 'configure git to use gitml (filter, merge driver, gitml:: transport); inside a repository also its hooks (pre-push for plain remotes, pre-commit for registered assets)',
  builder: (y) =>
    withJson(y)
      .options(scopeOptions)
      .option('hooks', { type: 'boolean', default: true, describe: 'install the hooks when run inside a repository (--no-hooks: leave them)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace different existing values' })
      .option('lfs', { type: 'boolean', default: false, describe: 'serve git-lfs pointers (filter=lfs) with gitml, replacing git-lfs\'s filter (docs/migrate.md)' }),
  handler: async (argv) => {
    const scope = scopeFrom(argv as { local?: boolean; system?: boolean; file?: string });
    // A repository is needed for --local; for the hooks, one is used when we are in one.
    const repo = await openRepo(io.cwd, io.env).catch((e) => {
      if (scope.kind === 'local' || !isGitmlError(e, 'E_NOT_A_REPO')) throw e;
      return null;
    });
    const ctx = repo ? repo.git : { cwd: io.cwd, env: io.env };
    const result = await installFilters(ctx, scope, argv.force);
    // Commits made before a migration from git-lfs name filter=lfs: with --lfs, gitml serves them.
    const lfs = argv.lfs ? await installLfsCompat(ctx, scope, true) : [];
    result.set.push(...lfs);
    const hooks = argv.hooks && repo?.workTree ? await installHooks(repo.git) : [];
    if (argv.json) return json(io, { scope: scope.kind, ...result, hooks });
    out(io, `gitml: git config (${scope.kind}) ${result.set.length ? 'updated' : 'already up to date'}: filter.gitml.*, merge.gitml.*, protocol.gitml.allow${lfs.length ? ', filter.lfs.* (git-lfs pointers through gitml)' : ''}`);
    for (const h of hooks) {
      if (h.status === 'skipped') err(io, `gitml: hook not installed: ${h.note}`);
      else out(io, `gitml: hook ${h.status === 'chained' ? 'installed (the existing hook runs after it)' : h.status}: ${h.path}`);
    }
    if (!repo) err(io, 'Next: `gitml track "*.pt"` in a repository, and name a store: `git config -f .gitmlconfig gitml.store <url>`.');
  },
});
