import path from 'node:path';
import { GitmlError, isGitmlError } from '../errors';
import { gitText, type GitContext } from './exec';

export interface Repo {
  /** Absolute path of this repository's git dir (a linked worktree has its own). */
  gitDir: string;
  /** Absolute path of the git dir shared by all worktrees: where gitml keeps its cache. */
  commonDir: string;
  /** Absolute path of the work tree, null for a bare repository. */
  workTree: string | null;
  /** How to run git against this repository. */
  git: GitContext;
}

/**
 * Finds the repository around `cwd` the way git does (GIT_DIR and friends in `env` are honoured).
 * `workTree: false` skips work tree discovery: the remote helper runs with GIT_DIR set and, during a
 * clone, with its cwd outside the repository, where git would report the cwd as the work tree.
 */
export async function openRepo(cwd: string, env: NodeJS.ProcessEnv, options: { workTree?: boolean } = {}): Promise<Repo> {
  const probe: GitContext = { cwd, env };
  const gitDirs = ['--absolute-git-dir', '--git-common-dir', '--is-bare-repository'];
  const repoOf = (gitDir: string, commonDirRaw: string, workTree: string | null): Repo => ({ gitDir, commonDir: path.resolve(cwd, commonDirRaw), workTree, git: { cwd: workTree ?? cwd, env } });
  // Every gitml process starts here, a filter for each git command among them: in a work tree, one
  // git process answers all four questions. `--show-toplevel` fails the whole call outside a work
  // tree (a bare repository, inside the git dir), which then has none: the git dirs are asked alone.
  if (options.workTree !== false) {
    const lines = await gitText(probe, ['rev-parse', ...gitDirs, '--show-toplevel']).then(
      (out) => out.split('\n'),
      () => null,
    );
    if (lines?.length === 4 && lines[2] === 'false' && lines[3] !== '') return repoOf(lines[0]!, lines[1]!, lines[3]!);
  }
  let lines: string[];
  try {
    lines = (await gitText(probe, ['rev-parse', ...gitDirs])).split('\n');
  } catch (e) {
    if (isGitmlError(e, 'E_GIT')) {
      throw new GitmlError('E_NOT_A_REPO', `not a git repository: ${cwd}`, {
        hint: 'Run this inside a git repository (or `git init` one first).',
        cause: e,
      });
    }
    throw e;
  }
  return repoOf(lines[0]!, lines[1]!, null);
}

export function requireWorkTree(repo: Repo): string {
  if (!repo.workTree) {
    throw new GitmlError('E_USAGE', `this command needs a work tree, but ${repo.gitDir} is a bare repository`, {
      hint: 'Run it in a clone that has a work tree.',
    });
  }
  return repo.workTree;
}
