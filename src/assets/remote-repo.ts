import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GitmlError } from '../errors';
import { gitText, runGit, type GitContext } from '../git/exec';
import { stripHelperPrefix } from '../git/remote';
import { makeDirs } from '../safe-path';

/**
 * Another repository, read without a full clone: a bare, blob-less, shallow fetch kept under the
 * local cache (`<git-common-dir>/gitml/repos/<hash>.git`, or a temp dir outside any repository).
 * Blobs arrive on demand when a file is read (partial clone), so reading one asset's metadata costs
 * that asset's blobs only.
 */
export interface RemoteRepo {
  url: string;
  git: GitContext;
  dir: string;
  /** The default branch's tip, as `refs/remotes/origin/<branch>`. */
  head: string;
}

export async function openRemoteRepo(url: string, env: NodeJS.ProcessEnv, cacheRoot: string | null): Promise<RemoteRepo> {
  const plain = stripHelperPrefix(url);
  if (plain.startsWith('-')) throw new GitmlError('E_USAGE', `invalid repository URL ${JSON.stringify(url)}`);
  const base = cacheRoot ? path.join(cacheRoot, 'repos') : path.join(os.tmpdir(), 'gitml-repos');
  const dir = path.join(base, `${createHash('sha256').update(plain).digest('hex').slice(0, 16)}.git`);
  const git: GitContext = { cwd: base, env: { ...env, GIT_DIR: dir } };
  if (!fs.existsSync(path.join(dir, 'HEAD'))) {
    await makeDirs(base);
    await runGit({ cwd: base, env }, ['init', '-q', '--bare', dir]);
    await runGit(git, ['remote', 'add', 'origin', plain]);
  }
  try {
    await runGit(git, ['fetch', '-q', '--filter=blob:none', '--depth=1', '--no-tags', 'origin', '+refs/heads/*:refs/remotes/origin/*']);
  } catch (e) {
    throw new GitmlError('E_GIT', `cannot fetch ${plain}: ${(e as Error).message}`, { hint: 'Check the URL and your access to it (git ls-remote <url>).', cause: e });
  }
  const symref = await gitText(git, ['ls-remote', '--symref', 'origin', 'HEAD'], { okCodes: [2] });
  const m = /^ref: refs\/heads\/(\S+)\tHEAD/m.exec(symref);
  const branch = m?.[1] ?? 'main';
  return { url: plain, git, dir, head: `refs/remotes/origin/${branch}` };
}
