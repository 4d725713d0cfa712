import path from 'node:path';
import type { Gitml } from '../context';
import { GitmlError } from '../errors';
import { gitText, runGit } from '../git/exec';
import { stripHelperPrefix } from '../git/remote';
import { scanIndexForPointers, scanRangeForPointers } from '../git/scan';
import { collectGarbage, type GcReport } from '../objects/gc';
import { recordedRepositories, repoId } from '../objects/locks';
import type { ObjectRef } from '../objects/object-store';
import { REPOS_PREFIX } from '../objects/layout';
import { makeDirs } from '../safe-path';
import { stripCredentials } from '../url-secrets';

export interface StoreGcRequest {
  /** Repositories beyond this one's remotes that use the store. */
  repos: string[];
  /** Recorded repositories that no longer use the store (their records are removed). */
  forget: string[];
  graceMs: number;
  repackBelow: number;
  dryRun: boolean;
  onProgress?: (message: string) => void;
}

export interface StoreGcResult {
  report: GcReport;
  repositories: { url: string; id: string; refs: number }[];
}

/**
 * `gitml gc`: what is live is every object that any branch or tag of every repository using the store
 * reaches, in their whole history, plus this clone's own branches, tags, remote-tracking refs and
 * index. Repositories record themselves in the store when they push; gc refuses to run while the store
 * names one it was not told about (it cannot see that repository's refs), unless told to forget it.
 */
export async function storeGc(gitml: Gitml, req: StoreGcRequest): Promise<StoreGcResult> {
  const say = req.onProgress ?? (() => undefined);
  const objects = await gitml.objects();
  const ctx = gitml.repo.git;
  const remotes = (await gitText(ctx, ['remote'])).split('\n').filter(Boolean);
  const urls = new Map<string, string>();
  for (const r of remotes) {
    const url = stripHelperPrefix((await gitText(ctx, ['remote', 'get-url', '--', r])).trim());
    urls.set(repoId(url), url);
  }
  for (const u of req.repos) urls.set(repoId(stripHelperPrefix(u)), stripHelperPrefix(u));

  const recorded = await recordedRepositories(objects.requests);
  const forget = new Set(req.forget);
  const unknown = recorded.filter((r) => !urls.has(r.id) && !forget.has(r.id));
  if (unknown.length > 0) {
    throw new GitmlError(
      'E_USAGE',
      `${objects.url} is also used by repositories gc was not given: ${unknown.map((r) => `${r.url} (id ${r.id}, last push ${r.lastPush.slice(0, 10)})`).join('; ')}`,
      { hint: 'gc must see every repository whose objects it could delete: add --repo <url> for each, or --forget <id> for one that no longer uses this store.' },
    );
  }
  if (!req.dryRun) {
    for (const id of forget) if (recorded.some((r) => r.id === id)) await objects.requests.delete(`${REPOS_PREFIX}${id}.json`);
  }

  const live = new Map<string, ObjectRef>();
  const add = (pointers: { pointer: { oid: string; size: number }; path: string }[]) => {
    for (const p of pointers) if (!live.has(p.pointer.oid)) live.set(p.pointer.oid, { oid: p.pointer.oid, size: p.pointer.size, path: p.path });
  };
  // This clone's own refs and index: work that is pushed but whose refs are still moving, or that is
  // only here, is never collected from under it.
  const local = (await gitText(ctx, ['for-each-ref', '--format=%(objectname)', 'refs/heads', 'refs/tags', 'refs/remotes'])).split('\n').filter(Boolean);
  add(await scanRangeForPointers(ctx, local, []));
  if (gitml.repo.workTree) add(await scanIndexForPointers(ctx));

  const repositories: StoreGcResult['repositories'] = [];
  for (const [id, url] of urls) {
    say(`reading the refs of ${stripCredentials(url)}`);
    const dir = path.join(gitml.cache.root, 'gc', `${id}.git`);
    await makeDirs(path.dirname(dir));
    const git = { cwd: path.dirname(dir), env: { ...ctx.env, GIT_DIR: dir } };
    await runGit({ cwd: path.dirname(dir), env: ctx.env }, ['init', '-q', '--bare', dir]);
    try {
      await runGit(git, ['fetch', '-q', '--prune', '--no-tags', url, '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*']);
    } catch (e) {
      throw new GitmlError('E_GIT', `gc cannot read the refs of ${stripCredentials(url)}: ${(e as Error).message}`, {
        hint: 'gc must see every ref of every repository using the store; fix access to it (or remove that remote) and run gc again.',
        cause: e,
      });
    }
    const refs = (await gitText(git, ['for-each-ref', '--format=%(objectname)', 'refs/heads', 'refs/tags'])).split('\n').filter(Boolean);
    add(await scanRangeForPointers(git, refs, []));
    repositories.push({ url: stripCredentials(url), id, refs: refs.length });
  }

  const report = await collectGarbage(objects, [...live.values()], {
    graceMs: req.graceMs,
    repackBelow: req.repackBelow,
    dryRun: req.dryRun,
    concurrency: Math.max(gitml.concurrency, 8),
    cache: gitml.cache,
    onProgress: say,
  });
  return { report, repositories };
}

/** "90s", "30m", "1h", "2d", "1w", "0": a duration in milliseconds, or null. Pure. */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$/i.exec(text);
  if (!m) return null;
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[(m[2] ?? 's').toLowerCase() as 's'];
  return Math.round(Number(m[1]) * unit);
}
