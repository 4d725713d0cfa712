import { GitmlError } from '../errors';
import { gitText, runGit, type GitContext } from './exec';

export const HELPER_PREFIX = 'gitml::';

/** The git URL behind a remote, without the gitml:: prefix. */
export async function remoteUrl(ctx: GitContext, remote: string): Promise<string> {
  const r = await runGit(ctx, ['remote', 'get-url', '--', remote], { okCodes: [2, 128] });
  if (r.code !== 0) {
    // Not a configured remote: accept a URL or path as git does.
    if (remote.includes('/') || remote.includes(':')) return stripHelperPrefix(remote);
    throw new GitmlError('E_USAGE', `no remote named ${JSON.stringify(remote)}`, { hint: 'See `git remote -v`, or give a URL.' });
  }
  return stripHelperPrefix(r.stdout.toString('utf8').trim());
}

export function stripHelperPrefix(url: string): string {
  return url.startsWith(HELPER_PREFIX) ? url.slice(HELPER_PREFIX.length) : url;
}

/** The remote of the current branch's upstream, else "origin". */
export async function defaultRemote(ctx: GitContext): Promise<string> {
  const branch = await gitText(ctx, ['symbolic-ref', '--quiet', '--short', 'HEAD'], { okCodes: [1] });
  if (branch) {
    const r = await runGit(ctx, ['config', '--get', `branch.${branch}.remote`], { okCodes: [1] });
    const remote = r.stdout.toString('utf8').trim();
    if (r.code === 0 && remote && remote !== '.') return remote;
  }
  return 'origin';
}

/** Object ids at the tips of the remote's refs (what it already has). `gitOptions`: `-c` settings before the subcommand. */
export async function remoteTips(ctx: GitContext, url: string, gitOptions: readonly string[] = []): Promise<string[]> {
  if (url.startsWith('-')) throw new GitmlError('E_USAGE', `invalid remote URL ${JSON.stringify(url)}`);
  const text = await gitText(ctx, [...gitOptions, 'ls-remote', url]);
  return text
    .split('\n')
    .map((l) => l.split('\t'))
    .filter(([, name]) => name && !name.endsWith('^{}'))
    .map(([sha]) => sha!);
}

/** Full ref names of every local branch and tag. */
export async function localRefs(ctx: GitContext): Promise<string[]> {
  const text = await gitText(ctx, ['for-each-ref', '--format=%(refname)', 'refs/heads', 'refs/tags']);
  return text ? text.split('\n') : [];
}

export async function resolveCommit(ctx: GitContext, rev: string): Promise<string> {
  const r = await runGit(ctx, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { okCodes: [1, 128] });
  if (r.code !== 0) throw new GitmlError('E_USAGE', `unknown revision ${JSON.stringify(rev)}`, { hint: 'Give a branch, tag or commit that exists here.' });
  return r.stdout.toString('utf8').trim();
}
