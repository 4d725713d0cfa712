import fsp from 'node:fs/promises';
import path from 'node:path';
import { GitmlError, isGitmlError } from './errors';
import type { Setting } from './setting';
import { runGit, type GitContext } from './git/exec';
import type { Repo } from './git/repo';
import type { StoreLocation } from './store/open';

/**
 * Settings resolution (docs/config.md). Highest first:
 *   1. environment variables (GITML_STORE, GITML_CACHE_DIR, GITML_CONCURRENCY, GITML_FETCH)
 *   2. git config (system, global, local: git's own order, `git config gitml.store ...`)
 *   3. the committed .gitmlconfig (git-config syntax), read from the commit being checked out when
 *      there is one, else from the work tree.
 * Every value remembers where it came from, so `gitml env` and error messages can say why.
 */

export type { Setting };

export const ENV_SETTINGS: Readonly<Record<string, string>> = {
  GITML_STORE: 'gitml.store',
  GITML_CACHE_DIR: 'gitml.cachedir',
  GITML_CONCURRENCY: 'gitml.concurrency',
  GITML_FETCH: 'gitml.fetch',
  GITML_RETRIES: 'gitml.retries',
  GITML_CHUNKING: 'gitml.chunking',
  GITML_TIMEOUT: 'gitml.timeout',
  GITML_CACHE_MAXSIZE: 'gitml.cache.maxsize',
};

/**
 * The keys a committed .gitmlconfig may set: the whole list, on purpose (a test holds it, so a new
 * key is a decision). Anyone who can push can edit that file, so it may choose *what* is read (the
 * store, its bucket or container and prefix, the region, how transfers run, stage branches) but
 * never where on this machine gitml writes (cachedir), which identity signs (s3.profile), a program
 * to run, or where the user's credentials go: the endpoints here are used only when they pass the
 * endpoint policy (src/store/endpoint.ts). Everything else in .gitmlconfig is ignored.
 */
export const REPOSITORY_KEYS: readonly RegExp[] = [
  /^gitml\.store$/,
  /^gitml\.fetch$/,
  /^gitml\.concurrency$/,
  /^gitml\.retries$/,
  /^gitml\.chunking$/,
  /^gitml\.directcheckout$/,
  /^gitml\.s3\.region$/,
  /^gitml\.s3\.forcepathstyle$/,
  /^gitml\.s3\.endpoint$/,
  /^gitml\.azure\.endpoint$/,
  /^gitml\.stage\.[a-z0-9._-]+\.branch$/,
];

export function isRepositoryKey(key: string): boolean {
  return REPOSITORY_KEYS.some((re) => re.test(key));
}

export const GITMLCONFIG = '.gitmlconfig';

export class Settings {
  /** Every value of every key, lowest precedence first (git config keys may repeat). */
  constructor(private readonly values: ReadonlyMap<string, readonly Setting[]>) {}

  /** The value that wins (the last one, as git reads it). */
  get(key: string): Setting | undefined {
    return this.values.get(normalizeKey(key))?.at(-1);
  }

  /** All values of a multi-valued key, from the person's own configuration and environment only. */
  getAllFromUser(key: string): Setting[] {
    return (this.values.get(normalizeKey(key)) ?? []).filter((s) => s.origin === 'user');
  }

  entries(): [string, Setting][] {
    return [...this.values.entries()].map(([k, v]): [string, Setting] => [k, v.at(-1)!]).sort(([a], [b]) => a.localeCompare(b));
  }
}

export interface LoadSettingsOptions {
  env: NodeJS.ProcessEnv;
  /** Directory env-relative paths are resolved against. */
  cwd: string;
  /** Read .gitmlconfig from this commit or tree instead of the work tree (checkout, clone, push). */
  treeish?: string;
}

export async function loadSettings(repo: Repo, options: LoadSettingsOptions): Promise<Settings> {
  const values = new Map<string, Setting[]>();
  const repoBase = repo.workTree ?? repo.gitDir;
  const add = (key: string, setting: Setting) => values.set(key, [...(values.get(key) ?? []), setting]);

  const [committed, gitConfig] = await Promise.all([readGitmlConfig(repo, options.treeish), readGitConfig(repo.git)]);
  for (const [key, value, source] of committed) {
    if (isRepositoryKey(key)) add(key, { value, source, origin: 'repository', baseDir: repoBase });
  }
  for (const [key, value, source] of gitConfig) add(key, { value, source, origin: 'user', baseDir: repoBase });
  for (const [name, key] of Object.entries(ENV_SETTINGS)) {
    const value = options.env[name];
    if (value !== undefined && value !== '') add(key, { value, source: `env ${name}`, origin: 'user', baseDir: options.cwd });
  }
  return new Settings(values);
}

/** git config keys: section and last part are case-insensitive, a subsection is not. */
function normalizeKey(key: string): string {
  const first = key.indexOf('.');
  const last = key.lastIndexOf('.');
  if (first === last) return key.toLowerCase();
  return `${key.slice(0, first).toLowerCase()}${key.slice(first, last)}${key.slice(last).toLowerCase()}`;
}

type Entry = [key: string, value: string, source: string];

function parseZ(output: Buffer, withOrigin: boolean, fixedSource: string): Entry[] {
  const parts = output.toString('utf8').split('\0');
  const out: Entry[] = [];
  for (let i = 0; i < parts.length - 1; ) {
    let source = fixedSource;
    if (withOrigin) source = `git config (${parts[i++]})`;
    const item = parts[i++] ?? '';
    const nl = item.indexOf('\n');
    const key = nl < 0 ? item : item.slice(0, nl);
    // A key with no "=" at all is a boolean true in git config.
    const value = nl < 0 ? 'true' : item.slice(nl + 1);
    if (key) out.push([normalizeKey(key), value, source]);
  }
  return out;
}

async function readGitConfig(ctx: GitContext): Promise<Entry[]> {
  const r = await runGit(ctx, ['config', '--includes', '--show-origin', '-z', '--get-regexp', '^gitml\\.'], { okCodes: [1] });
  return r.code === 0 ? parseZ(r.stdout, true, '') : [];
}

async function readGitmlConfig(repo: Repo, treeish?: string): Promise<Entry[]> {
  if (treeish) {
    const spec = `${treeish}:${GITMLCONFIG}`;
    const r = await runConfigFile(repo.git, ['--blob', spec], `${GITMLCONFIG} in ${treeish.length === 40 || treeish.length === 64 ? treeish.slice(0, 12) : treeish}`);
    return r;
  }
  if (!repo.workTree) return [];
  const file = path.join(repo.workTree, GITMLCONFIG);
  try {
    await fsp.access(file);
  } catch {
    return [];
  }
  return runConfigFile(repo.git, ['-f', file], GITMLCONFIG);
}

async function runConfigFile(ctx: GitContext, source: string[], label: string): Promise<Entry[]> {
  try {
    const r = await runGit(ctx, ['config', '-z', ...source, '--get-regexp', '^gitml\\.'], { okCodes: [1] });
    return r.code === 0 ? parseZ(r.stdout, false, label) : [];
  } catch (e) {
    if (isGitmlError(e, 'E_GIT')) {
      throw new GitmlError('E_CONFIG', `cannot read ${label}: ${e.message}`, {
        hint: `Fix the syntax of ${GITMLCONFIG} (it uses git config syntax; check it with \`git config -f ${GITMLCONFIG} --list\`).`,
        cause: e,
      });
    }
    throw e;
  }
}

/** Where the store is, or null when nothing names one. */
export function storeLocationOf(settings: Settings): (StoreLocation & { source: string }) | null {
  const s = settings.get('gitml.store');
  return s ? { url: s.value, baseDir: s.baseDir, source: s.source } : null;
}

export function cacheRootOf(repo: Repo, settings: Settings, env: NodeJS.ProcessEnv): { path: string; source: string } {
  const s = settings.get('gitml.cachedir');
  if (s) return { path: path.resolve(s.baseDir, expandHome(s.value, env)), source: s.source };
  return { path: path.join(repo.commonDir, 'gitml'), source: 'default (inside the git directory)' };
}

export const DEFAULT_CONCURRENCY = 8;

export function concurrencyOf(settings: Settings): number {
  const s = settings.get('gitml.concurrency');
  if (!s) return DEFAULT_CONCURRENCY;
  const n = Number(s.value);
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new GitmlError('E_CONFIG', `gitml.concurrency must be a whole number from 1 to 256, got ${JSON.stringify(s.value)} (from ${s.source})`, {
      hint: 'Fix or remove that setting.',
    });
  }
  return n;
}

/** gitml.retries: attempts after the first for a transient store error (throttling, resets, 5xx). */
export function retriesOf(settings: Settings): number {
  const s = settings.get('gitml.retries');
  if (!s) return 8;
  const n = Number(s.value);
  if (!Number.isInteger(n) || n < 0 || n > 20) {
    throw new GitmlError('E_CONFIG', `gitml.retries must be a whole number from 0 to 20, got ${JSON.stringify(s.value)} (from ${s.source})`, {
      hint: 'Fix or remove that setting.',
    });
  }
  return n;
}

/**
 * gitml.timeout: seconds gitml waits for a store to answer, or to send the next bytes of a body,
 * before it counts the attempt as failed (and retries). Default 60.
 */
export function timeoutMsOf(settings: Settings): number {
  const s = settings.get('gitml.timeout');
  if (!s) return 60_000;
  const n = Number(s.value);
  if (!Number.isFinite(n) || n <= 0 || n > 3600) {
    throw new GitmlError('E_CONFIG', `gitml.timeout must be a number of seconds from 0.1 to 3600, got ${JSON.stringify(s.value)} (from ${s.source})`, { hint: 'Fix or remove that setting.' });
  }
  return Math.round(n * 1000);
}

/** "20G", "500M", "1.5T", "1048576": a size in bytes (K, M, G, T are powers of 1024). Pure. */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) return null;
  const power = ['', 'k', 'm', 'g', 't'].indexOf(m[2]!.toLowerCase());
  return Math.floor(Number(m[1]) * 1024 ** power);
}

/** gitml.cache.maxsize: the cache is kept under this many bytes (src/cache-limit.ts), or null. */
export function cacheMaxSizeOf(settings: Settings): number | null {
  const s = settings.get('gitml.cache.maxsize');
  if (!s) return null;
  const n = parseSize(s.value);
  if (n === null || n <= 0) {
    throw new GitmlError('E_CONFIG', `gitml.cache.maxsize must be a size such as 20G or 500M, got ${JSON.stringify(s.value)} (from ${s.source})`, { hint: 'Fix or remove that setting.' });
  }
  return n;
}

/**
 * What `git fetch` / `git clone` through a gitml:: remote downloads before git goes on:
 *   checkout (default): what the checkout that follows needs. A clone downloads nothing ahead: its
 *     checkout (of the branch asked for, in the sparse cone, or nothing with --no-checkout) downloads
 *     exactly what it writes, in parallel. A fetch downloads the upstream of the current branch.
 *   tips: the trees of every fetched branch and tag (for work offline).
 *   all:  every object in their history.
 *   none: nothing.
 */
export type FetchMode = 'checkout' | 'all' | 'tips' | 'none';

export function fetchModeOf(settings: Settings): FetchMode {
  const s = settings.get('gitml.fetch');
  if (!s) return 'checkout';
  const v = s.value.toLowerCase();
  if (v === 'checkout' || v === 'all' || v === 'tips' || v === 'none') return v;
  throw new GitmlError('E_CONFIG', `gitml.fetch must be checkout, tips, all or none, got ${JSON.stringify(s.value)} (from ${s.source})`, {
    hint: 'Fix or remove that setting.',
  });
}

export function boolOf(settings: Settings, key: string, fallback: boolean): boolean {
  const s = settings.get(key);
  if (!s) return fallback;
  const v = s.value.toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(v)) return true;
  if (['false', 'no', 'off', '0', ''].includes(v)) return false;
  throw new GitmlError('E_CONFIG', `${key} must be true or false, got ${JSON.stringify(s.value)} (from ${s.source})`, { hint: 'Fix or remove that setting.' });
}

function expandHome(p: string, env: NodeJS.ProcessEnv): string {
  if ((p === '~' || p.startsWith('~/')) && env.HOME) return path.join(env.HOME, p.slice(1));
  return p;
}

/** GITML_SKIP_SMUDGE=1 checks out pointers as they are, for a later `gitml pull`. */
export function skipSmudge(env: NodeJS.ProcessEnv): boolean {
  const v = (env.GITML_SKIP_SMUDGE ?? '').toLowerCase();
  return v !== '' && v !== '0' && v !== 'false';
}
