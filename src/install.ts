import fsp from 'node:fs/promises';
import path from 'node:path';
import { REGISTRY_PATHS } from './assets/names';
import { errnoCode, GitmlError } from './errors';
import { gitText, runGit, type GitContext } from './git/exec';
import { HELPER_PREFIX } from './git/remote';
import { makeDirs } from './safe-path';

/** The git configuration `gitml install` writes (docs/install.md). */
export const FILTER_CONFIG: ReadonlyArray<readonly [string, string]> = [
  ['filter.gitml.process', 'gitml filter-process'],
  ['filter.gitml.clean', 'gitml clean -- %f'],
  ['filter.gitml.smudge', 'gitml smudge -- %f'],
  ['filter.gitml.required', 'true'],
  ['merge.gitml.name', 'gitml: merge of large-file pointers'],
  ['merge.gitml.driver', 'gitml merge-driver %O %A %B %P'],
  // Submodules (and other git commands that restrict transports) may use gitml:: URLs.
  ['protocol.gitml.allow', 'always'],
];

/**
 * gitml serving git-lfs pointers (`filter=lfs` in commits made before `gitml migrate --from-lfs`):
 * the same filter, writing git-lfs's pointer format when it cleans. Written by `gitml install --lfs`,
 * by the migration in the migrated clone, and by the gitml:: helper in a new clone where git-lfs is
 * not set up; never over git-lfs's own configuration unless asked (`replace`).
 */
export const LFS_COMPAT_CONFIG: ReadonlyArray<readonly [string, string]> = [
  ['filter.lfs.process', 'gitml filter-process --lfs'],
  ['filter.lfs.clean', 'gitml clean --lfs -- %f'],
  ['filter.lfs.smudge', 'gitml smudge -- %f'],
  ['filter.lfs.required', 'true'],
];

/** Makes gitml the lfs filter: where nothing else is (or with `replace`). Returns what it set. */
export async function installLfsCompat(ctx: GitContext, scope: Scope, replace: boolean): Promise<string[]> {
  const args = scopeArgs(scope);
  // What git would use (any scope): git-lfs's own filter is left alone.
  const current = await runGit(ctx, ['config', '--get', 'filter.lfs.process'], { okCodes: [1] });
  const value = current.code === 0 ? current.stdout.toString('utf8').trim() : null;
  if (value !== null && !replace && !value.startsWith('gitml ')) return [];
  const set: string[] = [];
  for (const [key, v] of LFS_COMPAT_CONFIG) {
    await runGit(ctx, ['config', ...args, '--replace-all', key, v]);
    set.push(key);
  }
  return set;
}

export type Scope = { kind: 'global' } | { kind: 'local' } | { kind: 'system' } | { kind: 'file'; file: string };

export function scopeArgs(scope: Scope): string[] {
  return scope.kind === 'file' ? ['--file', scope.file] : [`--${scope.kind}`];
}

export interface InstallResult {
  set: string[];
  unchanged: string[];
}

/** Writes the filter configuration. A different value already there is only replaced with `force`. */
export async function installFilters(ctx: GitContext, scope: Scope, force: boolean): Promise<InstallResult> {
  const args = scopeArgs(scope);
  const result: InstallResult = { set: [], unchanged: [] };
  const conflicts: string[] = [];
  for (const [key, value] of FILTER_CONFIG) {
    const r = await runGit(ctx, ['config', ...args, '--get', key], { okCodes: [1] });
    const current = r.code === 0 ? r.stdout.toString('utf8').replace(/\n$/, '') : null;
    if (current === value) result.unchanged.push(key);
    else if (current !== null && !force) conflicts.push(`${key} is ${JSON.stringify(current)}, gitml wants ${JSON.stringify(value)}`);
  }
  if (conflicts.length > 0) {
    throw new GitmlError('E_CONFIG', `git config already has other values:\n  ${conflicts.join('\n  ')}`, {
      hint: 'Run `gitml install --force` to replace them.',
    });
  }
  for (const [key, value] of FILTER_CONFIG) {
    if (result.unchanged.includes(key)) continue;
    await runGit(ctx, ['config', ...args, '--replace-all', key, value]);
    result.set.push(key);
  }
  return result;
}

export async function uninstallFilters(ctx: GitContext, scope: Scope): Promise<string[]> {
  const removed: string[] = [];
  for (const [key] of FILTER_CONFIG) {
    const r = await runGit(ctx, ['config', ...scopeArgs(scope), '--unset-all', key], { okCodes: [5] });
    if (r.code === 0) removed.push(key);
  }
  // filter.lfs.* only where it is gitml's (git-lfs's own stays).
  const lfs = await runGit(ctx, ['config', ...scopeArgs(scope), '--get', 'filter.lfs.process'], { okCodes: [1] });
  if (lfs.code === 0 && lfs.stdout.toString('utf8').startsWith('gitml ')) {
    for (const [key] of LFS_COMPAT_CONFIG) {
      const r = await runGit(ctx, ['config', ...scopeArgs(scope), '--unset-all', key], { okCodes: [5] });
      if (r.code === 0) removed.push(key);
    }
    await runGit(ctx, ['config', ...scopeArgs(scope), '--remove-section', 'filter.lfs'], { okCodes: [128] });
  }
  // Leave no empty [filter "gitml"] / [merge "gitml"] sections behind.
  for (const section of ['filter.gitml', 'merge.gitml', 'protocol.gitml']) {
    const r = await runGit(ctx, ['config', ...scopeArgs(scope), '--get-regexp', `^${section.replace('.', '\\.')}\\.`], { okCodes: [1] });
    if (r.code === 1) await runGit(ctx, ['config', ...scopeArgs(scope), '--remove-section', section], { okCodes: [128] });
  }
  return removed;
}

const HOOK_MARKER = '# installed by gitml';
/** A hook that was there before gitml is kept under this suffix and run after gitml's. */
export const CHAINED_SUFFIX = '.gitml-chained';

export const HOOKS = {
  'pre-push': 'Uploads the bytes behind gitml pointers before git moves the refs (for remotes not written gitml::).',
  'pre-commit': 'Refuses commits that change or drop a registered asset version (docs/assets.md).',
} as const;
export type HookName = keyof typeof HOOKS;

/**
 * The hook gitml writes. It runs `gitml <hook>` and then the hook that was there before, if any
 * (kept as <hook>.gitml-chained), each with the same arguments and the same standard input.
 */
export function hookScript(name: HookName): string {
  return [
    '#!/bin/sh',
    HOOK_MARKER,
    `# ${HOOKS[name]}`,
    `# A ${name} hook that was here before gitml runs after it: ${name}${CHAINED_SUFFIX}.`,
    'command -v gitml >/dev/null 2>&1 || {',
    `  echo >&2 "gitml: this repository has a gitml ${name} hook, but gitml is not on PATH."`,
    `  echo >&2 "gitml: install it (npm install -g gitml), or run: gitml uninstall --hooks"`,
    '  exit 2',
    '}',
    `chained="$(dirname "$0")/${name}${CHAINED_SUFFIX}"`,
    ...(name === 'pre-commit' ? skipWhenRegistryUntouched() : []),
    ...(name === 'pre-push' ? skipForHelperRemotes() : []),
    'if [ -x "$chained" ]; then',
    '  input=$(mktemp) || exit 2',
    '  trap \'rm -f "$input"\' EXIT',
    '  cat > "$input"',
    `  gitml ${name} "$@" < "$input" || exit $?`,
    '  "$chained" "$@" < "$input"',
    '  exit $?',
    'fi',
    `exec gitml ${name} "$@"`,
    '',
  ].join('\n');
}

/**
 * The pre-commit check only concerns the registry's folders: a commit that stages nothing under them
 * skips it, in the shell, without starting Node (0.15 s a commit). The first commit too: with no
 * HEAD yet, `git diff --cached` compares the index with an empty tree.
 */
function skipWhenRegistryUntouched(): string[] {
  const paths = REGISTRY_PATHS.map((p) => `'${p}'`).join(' ');
  return [
    `if git diff --cached --quiet -- ${paths}; then`,
    '  if [ -x "$chained" ]; then exec "$chained" "$@"; fi',
    '  exit 0',
    'fi',
  ];
}

/**
 * A push through a gitml:: remote uploads in git-remote-gitml; `gitml pre-push` would only say so,
 * after starting Node (0.13 s a push). The hook's second argument is the remote's URL.
 */
function skipForHelperRemotes(): string[] {
  return [
    'case "$2" in',
    `  ${HELPER_PREFIX}*)`,
    '    if [ -x "$chained" ]; then exec "$chained" "$@"; fi',
    '    exit 0 ;;',
    'esac',
  ];
}

async function hookPath(ctx: GitContext, name: string): Promise<string> {
  const p = await gitText(ctx, ['rev-parse', '--git-path', `hooks/${name}`]);
  return path.resolve(ctx.cwd, p);
}

export type HookStatus = 'installed' | 'unchanged' | 'chained' | 'skipped';

/**
 * Installs gitml's hooks in a repository. A hook gitml did not write is kept and run after gitml's
 * (moved to <hook>.gitml-chained), never overwritten. Where core.hooksPath points into the work tree
 * (husky, pre-commit frameworks), the hooks there are the repository's own files: nothing is written
 * and the result says what to add by hand.
 */
export async function installHooks(ctx: GitContext): Promise<{ path: string; status: HookStatus; note?: string }[]> {
  const hooksPath = (await runGit(ctx, ['config', '--get', 'core.hooksPath'], { okCodes: [1] })).stdout.toString('utf8').trim();
  const out: { path: string; status: HookStatus; note?: string }[] = [];
  for (const name of Object.keys(HOOKS) as HookName[]) {
    const file = await hookPath(ctx, name);
    if (hooksPath) {
      const current = await fsp.readFile(file, 'utf8').catch(() => null);
      if (current?.includes(`gitml ${name}`)) out.push({ path: file, status: 'unchanged' });
      else out.push({ path: file, status: 'skipped', note: `core.hooksPath is set (${hooksPath}): add this line to ${file}: gitml ${name} "$@" || exit $?` });
      continue;
    }
    const current = await fsp.readFile(file, 'utf8').catch((e) => (errnoCode(e) === 'ENOENT' ? null : Promise.reject(e)));
    const wanted = hookScript(name);
    if (current === wanted) {
      out.push({ path: file, status: 'unchanged' });
      continue;
    }
    let status: HookStatus = 'installed';
    if (current !== null && !current.includes(HOOK_MARKER)) {
      // A foreign hook (the user's, husky's old style, another tool's): it keeps running, after gitml.
      await fsp.rename(file, `${file}${CHAINED_SUFFIX}`);
      status = 'chained';
    }
    await makeDirs(path.dirname(file));
    const tmp = `${file}.gitml-${process.pid}.tmp`;
    await fsp.writeFile(tmp, wanted, { mode: 0o755 });
    await fsp.chmod(tmp, 0o755);
    await fsp.rename(tmp, file);
    out.push({ path: file, status });
  }
  return out;
}

/**
 * Whether this repository already has gitml's pre-push hook (or a hooksPath the user manages). With
 * the repository's common dir, the usual answer (gitml's hook where git keeps hooks by default) comes
 * from that file alone: every filter process asks this, once per git command, and the full check
 * starts two git processes. A hook found there means true either way, since a set core.hooksPath
 * answers true as well.
 */
export async function hooksPresent(ctx: GitContext, commonDir?: string): Promise<boolean> {
  if (commonDir) {
    const atDefault = await fsp.readFile(path.join(commonDir, 'hooks', 'pre-push'), 'utf8').catch(() => null);
    if (atDefault?.includes(HOOK_MARKER)) return true;
  }
  const hooksPath = (await runGit(ctx, ['config', '--get', 'core.hooksPath'], { okCodes: [1] })).stdout.toString('utf8').trim();
  if (hooksPath) return true;
  const current = await fsp.readFile(await hookPath(ctx, 'pre-push'), 'utf8').catch(() => null);
  return current !== null && current.includes(HOOK_MARKER);
}

/** Removes gitml's hooks and puts back the hooks they chained to. */
export async function uninstallHooks(ctx: GitContext): Promise<string[]> {
  const removed: string[] = [];
  for (const name of Object.keys(HOOKS) as HookName[]) {
    const file = await hookPath(ctx, name);
    const current = await fsp.readFile(file, 'utf8').catch(() => null);
    if (current === null || !current.includes(HOOK_MARKER)) continue;
    await fsp.rm(file, { force: true });
    await fsp.rename(`${file}${CHAINED_SUFFIX}`, file).catch(() => undefined);
    removed.push(file);
  }
  return removed;
}
