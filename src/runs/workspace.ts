import path from 'node:path';
import { GitmlError } from '../errors';
import { gitText, runGit, type GitContext } from '../git/exec';
import type { Repo } from '../git/repo';
import type { RunGitConfig } from './gitconfig';
import { redactUrl, stripCredentials } from '../url-secrets';
import { makeDirs } from '../safe-path';

/** Where a run's code is checked out, and exactly which commit that is. */
export interface Workspace {
  root: string;
  git: GitContext;
  commit: string;
  branch?: string;
  tag?: string;
  /** The repository URL, without credentials. */
  repo: string;
  dirty: boolean;
  /** Environment for git commands that talk to the remote (credentials through a helper, if any). */
  remoteEnv: NodeJS.ProcessEnv;
  /** `-c` options that come before the git subcommand for those commands. */
  remoteArgs: string[];
}

/**
 * A credential helper that hands git the token from the environment of the git process itself. The
 * token is never in a URL, an argument, a config file or a log: only in the memory of gitml and of the
 * git processes that need it. (An empty credential.helper first drops any helper configured elsewhere.)
 */
export const TOKEN_ENV = 'GITML_RUN_TOKEN';
const HELPER = `!f() { test "$1" = get && echo username=x-access-token && echo "password=$${TOKEN_ENV}"; }; f`;

export function remoteAccess(env: NodeJS.ProcessEnv, token: string | undefined): { env: NodeJS.ProcessEnv; args: string[] } {
  const base: NodeJS.ProcessEnv = { ...env, GIT_TERMINAL_PROMPT: '0' };
  delete base.GITML_GIT_TOKEN;
  if (!token) return { env: base, args: [] };
  return { env: { ...base, [TOKEN_ENV]: token }, args: ['-c', 'credential.helper=', '-c', `credential.helper=${HELPER}`] };
}

/** The current repository at HEAD. A dirty work tree is refused unless allowed (and then recorded). */
export async function currentWorkspace(repo: Repo, allowDirty: boolean): Promise<Workspace> {
  const root = repo.workTree;
  if (!root) throw new GitmlError('E_USAGE', 'gitml run needs a work tree (or --git-config)', { hint: 'Run it in a clone, or pass --git-config gitconfig.json.' });
  const commit = await gitText(repo.git, ['rev-parse', '--verify', 'HEAD']).catch(() => {
    throw new GitmlError('E_USAGE', 'this repository has no commit yet', { hint: 'Commit the code first: a run records the commit it ran.' });
  });
  const status = await gitText(repo.git, ['status', '--porcelain', '--untracked-files=no']);
  const dirty = status !== '';
  if (dirty && !allowDirty) {
    throw new GitmlError('E_USAGE', `the work tree has uncommitted changes:\n  ${status.split('\n').slice(0, 10).join('\n  ')}`, {
      hint: 'Commit them so the run records exactly the code it ran, or pass --allow-dirty (recorded in the run).',
    });
  }
  const branch = await gitText(repo.git, ['symbolic-ref', '--quiet', '--short', 'HEAD'], { okCodes: [1] });
  const origin = await gitText(repo.git, ['remote', 'get-url', 'origin'], { okCodes: [2] }).catch(() => '');
  const access = remoteAccess(repo.git.env, undefined);
  return { root, git: repo.git, commit, branch: branch || undefined, repo: origin ? stripCredentials(origin) : root, dirty, remoteEnv: access.env, remoteArgs: access.args };
}

/**
 * A fresh clone of the configured repository at the configured commit (commitSha, else the tag, else
 * the branch head), checked out with pointers only: the run pulls just the inputs it declares.
 */
export async function cloneWorkspace(config: RunGitConfig, dir: string, env: NodeJS.ProcessEnv): Promise<Workspace> {
  const access = remoteAccess(env, config.token);
  const url = config.repo;
  await makeDirs(path.dirname(dir));
  try {
    await runGit({ cwd: path.dirname(dir), env: access.env }, [...access.args, 'clone', '-q', '--no-checkout', url, dir]);
  } catch (e) {
    const msg = (e as Error).message.replaceAll(config.token ?? '\0', '[redacted]');
    throw new GitmlError('E_GIT', `cannot clone ${redactUrl(url)}: ${msg}`, {
      hint: config.token ? 'Check the URL and that the token may read the repository.' : 'Check the URL; for a private repository put a token in "token" or GITML_GIT_TOKEN.',
    });
  }
  const git: GitContext = { cwd: dir, env: { ...env } };
  for (const k of ['GIT_DIR', 'GIT_WORK_TREE', 'GITML_GIT_TOKEN']) delete git.env[k];
  const want = config.commitSha ?? (config.tag ? `refs/tags/${config.tag}` : config.branch ? `refs/remotes/origin/${config.branch}` : 'refs/remotes/origin/HEAD');
  const resolved = await runGit(git, ['rev-parse', '--verify', '--quiet', `${want}^{commit}`], { okCodes: [1, 128] });
  if (resolved.code !== 0) {
    const what = config.commitSha ? `commit ${config.commitSha}` : config.tag ? `tag ${config.tag}` : config.branch ? `branch ${config.branch}` : 'a default branch';
    throw new GitmlError('E_USAGE', `${redactUrl(url)} has no ${what}`, { hint: 'Check gitconfig.json (is the commit pushed? is the name right?).' });
  }
  const commit = resolved.stdout.toString('utf8').trim();
  if (config.commitSha && !commit.startsWith(config.commitSha)) {
    throw new GitmlError('E_USAGE', `commitSha ${config.commitSha} resolved to ${commit}`, { hint: 'Give the full commit id.' });
  }
  // The record must not say more than is true: a tag names exactly one commit, a branch holds it.
  if (config.commitSha && config.tag) {
    const tagged = await runGit(git, ['rev-parse', '--verify', '--quiet', `refs/tags/${config.tag}^{commit}`], { okCodes: [1, 128] });
    const at = tagged.stdout.toString('utf8').trim();
    if (tagged.code !== 0 || at !== commit) {
      throw new GitmlError('E_USAGE', `gitconfig.json names commit ${commit.slice(0, 12)} and tag ${config.tag}, but ${tagged.code !== 0 ? `there is no tag ${config.tag}` : `the tag is commit ${at.slice(0, 12)}`}`, {
        hint: 'Give the commit or the tag (or both when they agree): a run record must say exactly what ran.',
      });
    }
  }
  if (config.commitSha && config.branch) {
    const on = await runGit(git, ['merge-base', '--is-ancestor', commit, `refs/remotes/origin/${config.branch}`], { okCodes: [1, 128] });
    if (on.code !== 0) {
      throw new GitmlError('E_USAGE', `commit ${commit.slice(0, 12)} is not on branch ${config.branch}`, { hint: 'Give a commit of that branch, or leave the branch out.' });
    }
  }
  // Pointers only: inputs are pulled one by one, the rest of the repository's large files never are.
  await runGit({ ...git, env: { ...git.env, GITML_SKIP_SMUDGE: '1' } }, ['checkout', '-q', '--detach', commit]);
  const head = await gitText(git, ['rev-parse', 'HEAD']);
  if (head !== commit) throw new GitmlError('E_GIT', `checked out ${head}, expected ${commit}`);
  return { root: dir, git, commit, branch: config.branch, tag: config.tag, repo: stripCredentials(url), dirty: false, remoteEnv: access.env, remoteArgs: access.args };
}
