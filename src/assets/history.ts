import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { Gitml } from '../context';
import { gitText, runGit, type GitContext } from '../git/exec';
import type { AssetRef } from './names';
import { stageFile } from './registry';
import { openRemoteRepo } from './remote-repo';

export interface StageEvent {
  /** The stage or alias (production, staging, champion). */
  stage: string;
  branch: string;
  version: string;
  time: string;
  by: string;
  commit: string;
  /** The stage holds this version now. */
  current: boolean;
}

/**
 * Which version held each stage or alias of an asset, and when: read from the history of the stage
 * record (.gitml/stages/<type>s/<name>.yaml) on every stage branch, newest first. Promotion commits
 * are ordinary git history, so this is as trustworthy (and as reviewable) as the branches themselves.
 */
export async function stageHistory(gitml: Gitml, ref: AssetRef): Promise<StageEvent[]> {
  let git: GitContext;
  let prefixes: string[];
  if (ref.repo) {
    const remote = await openRemoteRepo(ref.repo, gitml.env, gitml.cache.root);
    git = remote.git;
    // The metadata fetch is shallow; stage history needs the stage branches' whole history.
    const shallow = fs.existsSync(path.join(remote.dir, 'shallow'));
    await runGit(git, ['fetch', '-q', '--filter=blob:none', '--no-tags', ...(shallow ? ['--unshallow'] : []), 'origin', '+refs/heads/*:refs/remotes/origin/*']);
    prefixes = ['refs/remotes/origin/'];
  } else {
    git = gitml.repo.git;
    prefixes = ['refs/remotes/origin/', 'refs/heads/'];
  }
  const file = stageFile(ref.type, ref.name);
  const branchToStage = new Map<string, string>();
  for (const [key, s] of gitml.settings.entries()) {
    const m = /^gitml\.stage\.(.+)\.branch$/.exec(key);
    if (m) branchToStage.set(s.value, m[1]!);
  }
  const refs = (await gitText(git, ['for-each-ref', '--format=%(refname)', ...prefixes])).split('\n').filter(Boolean);
  const events = new Map<string, StageEvent>();
  for (const full of refs) {
    const prefix = prefixes.find((p) => full.startsWith(p))!;
    const branch = full.slice(prefix.length);
    if (branch === 'HEAD' || branch.startsWith('promote/') || branch.startsWith('runs/')) continue;
    const has = await runGit(git, ['cat-file', '-e', `${full}:${file}`], { okCodes: [1, 128] });
    if (has.code !== 0) continue;
    const stage = branchToStage.get(branch) ?? branch;
    const log = await gitText(git, ['log', '--format=%H%x1f%aI%x1f%an', full, '--', file]);
    let first = true;
    for (const line of log.split('\n').filter(Boolean)) {
      const [commit, time, author] = line.split('\x1f') as [string, string, string];
      const record = await runGit(git, ['show', `${commit}:${file}`], { okCodes: [128] });
      if (record.code !== 0) continue; // the record was removed in this commit
      const r = (YAML.parse(record.stdout.toString('utf8')) ?? {}) as { version?: unknown; promoted?: unknown; by?: unknown };
      const version = String(r.version ?? '?');
      const key = `${stage}\0${commit}`;
      if (!events.has(key)) events.set(key, { stage, branch, version, time: typeof r.promoted === 'string' ? r.promoted : time, by: typeof r.by === 'string' ? r.by : author, commit, current: first });
      first = false;
    }
  }
  const selector = ref.selector;
  const isVersion = /^[1-9][0-9]*$/.test(selector);
  const wanted = [...events.values()].filter((e) => selector === 'latest' || (isVersion ? e.version === selector : e.stage === selector));
  return wanted.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
}
