import fsp from 'node:fs/promises';
import { GitmlError } from '../errors';
import { credentialsIn, redactUrl } from '../url-secrets';

/**
 * The git config of a run submission (as in `az ml ... --git-config gitconfig.json`):
 *   {"repo": "...", "branch": "...", "commitSha": "...", "tag": "...", "token": "..."}
 * The commit is commitSha, else the tag's commit, else the branch head.
 */
export interface RunGitConfig {
  repo: string;
  branch?: string;
  commitSha?: string;
  tag?: string;
  /** Never logged, never written, never in a URL or an argument. */
  token?: string;
}

export async function readGitConfigFile(file: string, env: NodeJS.ProcessEnv): Promise<RunGitConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (e) {
    throw new GitmlError('E_USAGE', `cannot read ${file}: ${(e as Error).message}`, { hint: 'Give a JSON file like {"repo": "https://...", "branch": "main"}.' });
  }
  return parseRunGitConfig(raw, file, env);
}

/** Pure: validates the shape; the token falls back to GITML_GIT_TOKEN. */
export function parseRunGitConfig(raw: unknown, where: string, env: NodeJS.ProcessEnv): RunGitConfig {
  if (!raw || typeof raw !== 'object') throw bad(where, 'expected a JSON object');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['repo', 'branch', 'commitSha', 'tag', 'token'].includes(k)) throw bad(where, `unknown key ${JSON.stringify(k)}`);
  const str = (k: string): string | undefined => {
    const v = o[k];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw bad(where, `${k} must be a string`);
    return v;
  };
  const repo = str('repo');
  if (!repo) throw bad(where, '"repo" is required');
  if (repo.startsWith('-') || /[\0\n\r]/.test(repo)) throw bad(where, '"repo" is not a valid URL');
  const secret = credentialsIn(repo);
  if (secret) throw bad(where, `"repo" ${JSON.stringify(redactUrl(repo))} is refused: ${secret}. Put the token in "token" (or GITML_GIT_TOKEN): gitml hands it to git through memory only`);
  const commitSha = str('commitSha');
  if (commitSha && !/^[0-9a-f]{7,64}$/.test(commitSha)) throw bad(where, `"commitSha" ${JSON.stringify(commitSha)} is not a commit id`);
  const config: RunGitConfig = { repo, branch: str('branch'), commitSha, tag: str('tag'), token: str('token') ?? (env.GITML_GIT_TOKEN || undefined) };
  if (!config.commitSha && !config.tag && !config.branch) config.branch = undefined; // the default branch
  return config;
}


function bad(where: string, why: string): GitmlError {
  return new GitmlError('E_USAGE', `invalid git config ${where}: ${why}`, {
    hint: 'Expected {"repo": "<url>", "branch"?: "...", "commitSha"?: "...", "tag"?: "...", "token"?: "..."}.',
  });
}
