import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Gitml } from '../context';
import { GitmlError } from '../errors';
import { gitText, runGit } from '../git/exec';
import { stripHelperPrefix } from '../git/remote';
import { formatRef, parseRef } from './names';
import { authorOf, stageFile } from './registry';
import { locate, stageBranchOf } from './resolve';
import { findOnPath } from '../which';
import { makeDirs } from '../safe-path';

export interface PromoteRequest {
  ref: string;
  stage: string;
  remote: string;
  merge: boolean;
  dryRun: boolean;
}

export interface PromotePlan {
  asset: string;
  stage: string;
  stageBranch: string;
  branch: string;
  base: string | null;
  commit: string | null;
  message: string;
  pushed: boolean;
  merged: boolean;
  pullRequest: { created: boolean; url?: string; command: string[]; compareUrl?: string } | null;
}

/**
 * Promotion by pull request: a branch `promote/<stage>/<type>s/<name>/<version>` is made from the remote's
 * stage branch plus the version folder (pointers only: cheap) and a stage record
 * (.gitml/stages/<type>s/<name>.yaml, which is what `<ref>@<stage>` reads). It is pushed through the
 * normal remote (so the bytes are in the store), then the pull request is opened with `gh` when it is
 * installed and logged in, and otherwise the exact command and the compare URL are printed.
 * `merge`: fast-forward the stage branch itself instead (teams without review).
 * The work tree and the current branch are never touched: the commit is built with a temp index.
 */
export async function promote(gitml: Gitml, req: PromoteRequest, runGh: (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>): Promise<PromotePlan> {
  const ref = parseRef(req.ref);
  if (ref.repo) throw new GitmlError('E_USAGE', 'promote assets from this repository (not a <url>#ref)', { hint: 'Run gitml promote in the repository that holds the asset.' });
  const { asset } = await locate(gitml, ref);
  const git = gitml.repo.git;
  const assetRef = formatRef({ type: asset.type, name: asset.name, selector: asset.version });
  const inHead = await runGit(git, ['cat-file', '-e', `HEAD:${asset.dir}/asset.yaml`], { okCodes: [1, 128] });
  if (inHead.code !== 0) throw new GitmlError('E_USAGE', `${assetRef} is not committed`, { hint: 'Commit it first (gitml register ... --commit, or git commit).' });
  const stageBranch = stageBranchOf(gitml, req.stage);
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(req.stage) || /^[0-9]+$/.test(req.stage) || req.stage === 'latest') {
    throw new GitmlError('E_USAGE', `invalid stage or alias ${JSON.stringify(req.stage)}`, { hint: 'Stages and aliases are names like staging, production or champion (lower case; not a number, not "latest").' });
  }
  // The stage is in the branch name: each promotion (dev → staging → production) gets its own
  // branch, and a branch a hosting service kept after merging never stands in the next one's way.
  const branch = `promote/${req.stage}/${asset.dir}`;

  // The remote's stage branch, if it has one; else the stage starts from this commit.
  const fetched = await runGit(git, ['fetch', '-q', req.remote, `+refs/heads/${stageBranch}:refs/remotes/${req.remote}/${stageBranch}`], { okCodes: [1, 128] });
  const head = await gitText(git, ['rev-parse', 'HEAD']);
  let base = fetched.code === 0 ? await gitText(git, ['rev-parse', `refs/remotes/${req.remote}/${stageBranch}`]) : null;
  let createdStage = false;
  if (!base) {
    // A new stage: its branch holds only what is promoted to it, plus the rules and the store.
    base = await startStage(gitml, req.stage, stageBranch);
    createdStage = true;
  }

  const index = path.join(gitml.cache.tmpDir, `promote-index-${process.pid}`);
  await makeDirs(gitml.cache.tmpDir);
  const withIndex = { cwd: git.cwd, env: { ...git.env, GIT_INDEX_FILE: index } };
  let tree: string;
  try {
    await runGit(withIndex, ['read-tree', base]);
    const entries = await gitText(git, ['ls-tree', '-r', 'HEAD', '--', `${asset.dir}/`]);
    const record = `stage: ${req.stage}\nversion: "${asset.version}"\nref: ${assetRef}\ndigest: ${asset.doc.digest.value}\nfrom: ${head}\npromoted: ${new Date().toISOString()}\nby: ${JSON.stringify(await authorOf(git))}\n`;
    const blob = await gitText(git, ['hash-object', '-w', '--stdin'], { input: record });
    const info = [entries, `100644 blob ${blob}\t${stageFile(asset.type, asset.name)}`].filter(Boolean).join('\n') + '\n';
    await runGit(withIndex, ['update-index', '--index-info'], { input: info });
    tree = await gitText(withIndex, ['write-tree']);
  } finally {
    await fsp.rm(index, { force: true });
  }
  if (tree === (await gitText(git, ['rev-parse', `${base}^{tree}`]))) {
    throw new GitmlError('E_USAGE', `${assetRef} is already in stage ${req.stage} (${stageBranch})`, { hint: 'Nothing to promote.' });
  }

  const lineage = asset.doc.lineage;
  const message = [
    `promote ${assetRef} to ${req.stage}`,
    '',
    `Digest: sha256:${asset.doc.digest.value}`,
    `Registered from commit: ${lineage.commit ?? '(none)'}`,
    ...(lineage.run ? [`Produced by run: ${lineage.run.id} (experiment ${lineage.run.experiment}, commit ${lineage.run.commit})`] : []),
    ...lineage.inputs.map((i) => `Input: ${i.ref} (sha256:${i.digest.slice(0, 12)})`),
    `Promoted from: ${head}`,
  ].join('\n');
  const plan: PromotePlan = { asset: assetRef, stage: req.stage, stageBranch, branch, base, commit: null, message, pushed: false, merged: false, pullRequest: null };
  if (req.dryRun) return plan;

  const commit = await gitText(git, ['commit-tree', tree, '-p', base, '-F', '-'], { input: message });
  plan.commit = commit;
  if (createdStage && !req.merge) await runGit(git, ['push', '-q', req.remote, `${base}:refs/heads/${stageBranch}`], { inheritStderr: true });
  if (req.merge) {
    await runGit(git, ['push', '-q', req.remote, `${commit}:refs/heads/${stageBranch}`], { inheritStderr: true });
    await runGit(git, ['fetch', '-q', req.remote, `+refs/heads/${stageBranch}:refs/remotes/${req.remote}/${stageBranch}`]);
    plan.merged = true;
    plan.pushed = true;
    return plan;
  }
  await runGit(git, ['update-ref', `refs/heads/${branch}`, commit]);
  // gitml's own branch: a newer promotion of the same version to the same stage replaces it (the
  // open pull request then shows the new commit).
  await runGit(git, ['push', '-q', '--force', req.remote, `refs/heads/${branch}:refs/heads/${branch}`], { inheritStderr: true });
  plan.pushed = true;

  const title = `Promote ${assetRef} to ${req.stage}`;
  const url = stripHelperPrefix(await gitText(git, ['remote', 'get-url', req.remote]).catch(() => ''));
  // gh reads the repository from the remote URL; a gitml:: URL it cannot parse, so it is told.
  const repo = githubRepoOf(url);
  const command = ['pr', 'create', ...(repo ? ['--repo', repo] : []), '--base', stageBranch, '--head', branch, '--title', title, '--body', message];
  plan.pullRequest = { created: false, command, compareUrl: compareUrl(url, stageBranch, branch) };
  if (findOnPath(gitml.env, 'gh')) {
    const created = await runGh(command);
    if (created.code !== 0) {
      throw new GitmlError('E_GIT', `gh pr create failed (exit ${created.code}): ${created.stderr.trim() || created.stdout.trim() || 'no message'}`, {
        hint: `The branch ${branch} is pushed. Fix what gh says (gh auth login?) and run: gh ${command.map(shellWord).join(' ')}${plan.pullRequest.compareUrl ? ` — or open ${plan.pullRequest.compareUrl}` : ''}`,
      });
    }
    plan.pullRequest = { ...plan.pullRequest, created: true, url: created.stdout.trim().split('\n').pop() };
  }
  return plan;
}

/** The first commit of a new stage branch: .gitattributes and .gitmlconfig from HEAD, nothing else. */
async function startStage(gitml: Gitml, stage: string, stageBranch: string): Promise<string> {
  const git = gitml.repo.git;
  const config = await gitText(git, ['ls-tree', 'HEAD', '--', '.gitattributes', '.gitmlconfig']);
  const index = path.join(gitml.cache.tmpDir, `stage-index-${process.pid}`);
  await makeDirs(gitml.cache.tmpDir);
  const withIndex = { cwd: git.cwd, env: { ...git.env, GIT_INDEX_FILE: index } };
  try {
    await runGit(withIndex, ['read-tree', '--empty']);
    if (config) await runGit(withIndex, ['update-index', '--index-info'], { input: `${config}\n` });
    const tree = await gitText(withIndex, ['write-tree']);
    return await gitText(git, ['commit-tree', tree, '-m', `start stage ${stage} (branch ${stageBranch})`]);
  } finally {
    await fsp.rm(index, { force: true });
  }
}

/** owner/name of a GitHub remote URL (https or ssh), for gh --repo. Pure. */
export function githubRepoOf(remoteUrl: string): string | null {
  const m = /github\.com[:/]([^/]+)\/([^/]+?)(\.git)?\/?$/.exec(remoteUrl);
  return m ? `${m[1]}/${m[2]}` : null;
}

function shellWord(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The web page that proposes a pull request, for GitHub remotes. Pure. */
export function compareUrl(remoteUrl: string, base: string, head: string): string | undefined {
  const m = /github\.com[:/]([^/]+)\/([^/]+?)(\.git)?\/?$/.exec(remoteUrl);
  if (!m) return undefined;
  return `https://github.com/${m[1]}/${m[2]}/compare/${encodeURIComponent(base)}...${head.split('/').map(encodeURIComponent).join('/')}?expand=1`;
}
