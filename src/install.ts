import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, GitmlError } from './errors';
import { gitText, runGit, type GitContext } from './git/exec';
import { makeDirs } from './safe-path';

/** The git configuration `gitml install` writes (docs/install.md). */
export const FILTER_CONFIG: ReadonlyArray<readonly [string, string]> = [
  ['filter.gitml.process', 'gitml filter-process'],
  ['filter.gitml.clean', 'gitml clean -- %f'],
  ['filter.gitml.smudge', 'gitml smudge -- %f'],
  ['filter.gitml.required', 'true'],
  ['merge.gitml.name', 'gitml: merge of large-file pointers'],
  ['merge.gitml.driver', 'gitml merge-driver %O %A %B %P'],
];

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
  // Leave no empty [filter "gitml"] / [merge "gitml"] sections behind.
  for (const section of ['filter.gitml', 'merge.gitml']) {
    const r = await runGit(ctx, ['config', ...scopeArgs(scope), '--get-regexp', `^${section.replace('.', '\\.')}\\.`], { okCodes: [1] });
    if (r.code === 1) await runGit(ctx, ['config', ...scopeArgs(scope), '--remove-section', section], { okCodes: [128] });
  }
  return removed;
}

const HOOK_MARKER = '# installed by gitml';

export const HOOKS = {
  'pre-push': 'Uploads the bytes behind gitml pointers before git moves the refs (for remotes not written gitml::).',
  'pre-commit': 'Refuses commits that change a registered asset version (docs/assets.md).',
} as const;
export type HookName = keyof typeof HOOKS;

export function hookScript(name: HookName): string {
  return [
    '#!/bin/sh',
    HOOK_MARKER,
    `# ${HOOKS[name]}`,
    'command -v gitml >/dev/null 2>&1 || {',
    `  echo >&2 "gitml: this repository has a gitml ${name} hook, but gitml is not on PATH."`,
    `  echo >&2 "gitml: install it (npm install -g gitml), or remove .git/hooks/${name}."`,
    '  exit 2',
    '}',
    `exec gitml ${name} "$@"`,
    '',
  ].join('\n');
}

async function hookPath(ctx: GitContext, name: string): Promise<string> {
  const p = await gitText(ctx, ['rev-parse', '--git-path', `hooks/${name}`]);
  return path.resolve(ctx.cwd, p);
}

/**
 * Installs the hooks; a hook that gitml did not write is never replaced (checked for all of them
 * before any is written).
 */
export async function installHooks(ctx: GitContext): Promise<{ path: string; status: 'installed' | 'unchanged' }[]> {
  const plan: { file: string; wanted: string; current: string | null; name: HookName }[] = [];
  for (const name of Object.keys(HOOKS) as HookName[]) {
    const file = await hookPath(ctx, name);
    const current = await fsp.readFile(file, 'utf8').catch((e) => (errnoCode(e) === 'ENOENT' ? null : Promise.reject(e)));
    if (current !== null && !current.includes(HOOK_MARKER)) {
      throw new GitmlError('E_HOOK_EXISTS', `a ${name} hook that gitml did not write already exists: ${file}`, {
        hint: `gitml leaves it as it is. Add this line to it instead: gitml ${name} "$@" || exit $?${name === 'pre-push' ? '  (or use a gitml:: remote, which needs no hook)' : ''}.`,
      });
    }
    plan.push({ file, wanted: hookScript(name), current, name });
  }
  const out: { path: string; status: 'installed' | 'unchanged' }[] = [];
  for (const h of plan) {
    if (h.current === h.wanted) {
      out.push({ path: h.file, status: 'unchanged' });
      continue;
    }
    await makeDirs(path.dirname(h.file));
    await fsp.writeFile(h.file, h.wanted, { mode: 0o755 });
    await fsp.chmod(h.file, 0o755);
    out.push({ path: h.file, status: 'installed' });
  }
  return out;
}

export async function uninstallHooks(ctx: GitContext): Promise<string[]> {
  const removed: string[] = [];
  for (const name of Object.keys(HOOKS) as HookName[]) {
    const file = await hookPath(ctx, name);
    const current = await fsp.readFile(file, 'utf8').catch(() => null);
    if (current === null || !current.includes(HOOK_MARKER)) continue;
    await fsp.rm(file, { force: true });
    removed.push(file);
  }
  return removed;
}
