import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { boolOf } from '../config';
import type { Gitml } from '../context';
import { describeError, errnoCode, isGitmlError } from '../errors';
import { runGit } from '../git/exec';
import { refreshWrittenFiles } from '../written';
import { formatPointer, type Pointer } from '../pointer';
import { placeStaged, worktreeTarget, writeFromCache } from '../worktree';

/**
 * Direct checkout of large files. git keeps a smudge filter's whole output for a file in memory
 * before writing it (a 1 GiB model costs git 1 GiB of RAM and two copies). For large files in a
 * checkout, the filter answers with the pointer itself, which git writes as a small file; when git
 * closes the filter (git waits for it to exit, after it has written the index), the filter puts the
 * real bytes over those pointer files (a copy written beside the cache's during the download, or
 * straight from the cache), verified, and refreshes the index so
 * `git status` is clean. Only for checkouts (git offers `can-delay` there and nowhere else), and not
 * when anything the same git command runs afterwards (a hook, a rebase's `--exec`) would see pointers.
 */
/**
 * The smallest file checked out directly. Since gitml writes the index entries' stat data itself (no
 * second filter process reads the files back), direct checkout is the faster way from 32 MiB up, and
 * git's own copy of a 256 MiB file would take it past 260 MiB (docs/performance.md, "Direct checkout").
 */
export const DIRECT_MIN_SIZE = 32 * 1024 * 1024;

export interface Deferred {
  pathname: string;
  pointer: Pointer;
  gitml: Gitml;
  /** A verified copy of the bytes written while the object downloaded (worktree.ts stagingFileFor). */
  staged?: string;
}

/**
 * The hooks a git command runs itself after it has checked files out, before it exits and closes the
 * filter: each would read pointer text where the bytes belong (`git merge` and `git pull` run
 * post-merge, `git rebase` post-rewrite).
 */
const HOOKS_AFTER_CHECKOUT = ['post-checkout', 'post-merge', 'post-rewrite'] as const;

/**
 * The state folders (in the git dir) of commands that check out step after step in one process and
 * run commands between the steps: `git rebase --exec 'pytest'` would test pointer text.
 */
const SEQUENCE_STATE = ['rebase-merge', 'rebase-apply', 'sequencer'] as const;

/**
 * Whether this repository checks files of DIRECT_MIN_SIZE and more out directly (decided once per
 * filter process). `gitml.directcheckout`: auto (default) and true, yes; false, no (anything else is a
 * configuration error, as for any boolean setting). Never when a hook of HOOKS_AFTER_CHECKOUT exists,
 * as a file or in configuration (`hook.<name>.event`, git 2.54): it runs before the bytes are written.
 */
export async function directCheckoutAllowed(gitml: Gitml): Promise<boolean> {
  if (!gitml.repo.workTree) return false;
  const setting = gitml.settings.get('gitml.directcheckout');
  const on = !setting || setting.value.toLowerCase() === 'auto' || boolOf(gitml.settings, 'gitml.directcheckout', false);
  return on && !(await hookAfterCheckout(gitml));
}

/** Whether git would run one of HOOKS_AFTER_CHECKOUT. */
async function hookAfterCheckout(gitml: Gitml): Promise<boolean> {
  const git = gitml.repo.git;
  const paths = await runGit(git, ['rev-parse', ...HOOKS_AFTER_CHECKOUT.flatMap((h) => ['--git-path', `hooks/${h}`])]);
  const files = paths.stdout.toString('utf8').split('\n').filter((l) => l !== '');
  if (files.length !== HOOKS_AFTER_CHECKOUT.length) return true; // not understood: the safe answer
  if (files.some((f) => fs.existsSync(path.resolve(git.cwd, f)))) return true;
  // Exit status 1 is "no such setting".
  const configured = await runGit(git, ['config', '--get-regexp', '^hook\\..*\\.event$'], { okCodes: [1] });
  const events = configured.stdout.toString('utf8').split('\n').map((l) => l.slice(l.indexOf(' ') + 1).trim());
  return events.some((e) => (HOOKS_AFTER_CHECKOUT as readonly string[]).includes(e));
}

/**
 * Whether the command checking out is one step of a sequence (rebase, cherry-pick of a range, am).
 * Asked per file, since one filter process serves the whole sequence and the state folder can appear
 * after its first checkout.
 */
export function insideSequence(gitml: Gitml): boolean {
  return SEQUENCE_STATE.some((d) => fs.existsSync(path.join(gitml.repo.gitDir, d)));
}

/** The pointer text git writes in place of the file until it is materialised. Pure. */
export function placeholder(pointer: Pointer): Buffer {
  return Buffer.from(formatPointer(pointer), 'utf8');
}

/**
 * Writes the deferred files. Each must still hold exactly its pointer text (anything else means
 * someone changed it, and it is left alone); its bytes are written from the cache, verified
 * (writeFromCache). Returns messages for the person.
 */
export async function materializeDeferred(items: readonly Deferred[], report: (message: string) => void): Promise<void> {
  try {
    await writeDeferred(items, report);
  } finally {
    // Copies not placed (the file changed meanwhile, or a failure) are not left in the cache's temp folder.
    await Promise.all(items.map((i) => (i.staged ? fsp.rm(i.staged, { force: true }).catch(() => undefined) : undefined)));
  }
}

async function writeDeferred(items: readonly Deferred[], report: (message: string) => void): Promise<void> {
  if (items.length === 0) return;
  const log = items[0]!.gitml.log;
  log.debug({ files: items.length }, 'direct checkout: writing files');
  const written: Deferred[] = [];
  let staged = 0;
  for (const item of items) {
    const gitml = item.gitml;
    const workTree = gitml.repo.workTree!;
    try {
      const target = await worktreeTarget(workTree, item.pathname);
      const st = await fsp.lstat(target).catch((e) => {
        if (errnoCode(e) === 'ENOENT') return null; // a later step of the same git command removed it
        throw e;
      });
      if (!st) continue;
      const expected = placeholder(item.pointer);
      if (!st.isFile() || st.size !== expected.length || !(await fsp.readFile(target)).equals(expected)) continue;
      try {
        // The copy made during the download is renamed into place; otherwise (the object was cached
        // already, or the copy cannot move there) it is copied from the cache now, verified.
        const placed = item.staged ? await placeStaged(gitml.cache, item.staged, target, item.pointer, st.mode & 0o777) : false;
        if (placed) staged++;
        else await writeFromCache(gitml.cache, target, item.pointer, st.mode & 0o777);
      } catch (e) {
        if (!isGitmlError(e, 'E_OBJECT_CORRUPT')) throw e;
        report(`gitml: the cached copy of '${item.pathname}' is damaged; it was removed and the file left as a pointer: run \`gitml pull\``);
        continue;
      }
      written.push(item);
    } catch (e) {
      report(`gitml: could not write '${item.pathname}': ${describeError(e)}; it is left as a pointer: run \`gitml pull\``);
    }
  }
  // The index still has the pointer files' size and time: refresh those entries (the filter knows
  // them from the record and neither copies nor hashes them again) so `git status` is clean. A
  // command that still holds the index lock is left alone.
  log.debug({ staged, copied: written.length - staged }, 'direct checkout: files written');
  if (written.length === 0) return;
  log.debug({ files: written.length }, 'direct checkout: refreshing the index');
  const r = await refreshWrittenFiles(
    written[0]!.gitml,
    written.map((w) => ({ path: w.pathname, oid: w.pointer.oid, size: w.pointer.size })),
    [128],
  );
  if (r && r.code !== 0) report(`gitml: large files were written; \`git status\` will refresh the index (${r.stderr.trim().split('\n')[0]})`);
}
