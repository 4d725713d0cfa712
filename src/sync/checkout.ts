import fsp from 'node:fs/promises';
import type { Gitml } from '../context';
import { requireWorkTree } from '../git/repo';
import { scanIndexForPointers } from '../git/scan';
import type { ProgressSink } from '../progress';
import { downloadObjects } from '../transfer/transfer';
import { runAll, type Outcome } from '../util/pool';
import { CHUNKED_MIN_SIZE } from '../objects/layout';
import { fileState, materialize, stagingFileFor } from '../worktree';
import { refreshWrittenFiles } from '../written';

export interface CheckoutReport {
  /** Files written with their bytes. */
  written: string[];
  /** Files that were already in place. */
  present: number;
  /** Files left alone because they hold local changes. */
  skipped: string[];
  failed: { path: string; error: string }[];
  downloadedBytes: number;
}

/**
 * Replaces pointer files in the work tree (those matching `pathspecs`) with their bytes: downloads
 * what the cache lacks in parallel (verified), writes each file atomically, then re-adds them so the
 * index's stat data matches (git takes a size change as a modification without looking at content).
 */
export async function checkoutPointers(gitml: Gitml, pathspecs: readonly string[], progress?: { sink: ProgressSink; enabled: boolean }): Promise<CheckoutReport> {
  const workTree = requireWorkTree(gitml.repo);
  const entries = await scanIndexForPointers(gitml.repo.git, pathspecs);
  const states = await Promise.all(entries.map((e) => fileState(workTree, e.path, e.pointer)));
  const todo = entries.filter((_, i) => states[i] === 'pointer');
  const report: CheckoutReport = {
    written: [],
    present: entries.filter((_, i) => states[i] === 'materialized').length,
    skipped: entries.filter((_, i) => states[i] === 'other').map((e) => e.path),
    failed: [],
    downloadedBytes: 0,
  };
  if (todo.length === 0) return report;
  // A large object's download writes the work-tree copy beside the cache's in the same pass (as a
  // direct checkout does), verified with it: the file is then renamed into place, not copied from the
  // cache and hashed again. One copy per object; another path with the same object is copied.
  const staging = new Map<string, string>();
  for (const e of todo) {
    if (e.pointer.size < CHUNKED_MIN_SIZE || staging.has(e.pointer.oid)) continue;
    const file = await stagingFileFor(gitml.cache, workTree);
    if (!file) break; // the cache is on another filesystem than the work tree
    staging.set(e.pointer.oid, file);
  }
  const copies = [...staging.values()];
  let written: Outcome<(typeof todo)[number], 'staged' | 'copied'>[];
  try {
    const download = await downloadObjects(
      todo.map((e) => ({ oid: e.pointer.oid, size: e.pointer.size, path: e.path })),
      await gitml.transferOptions(progress),
      staging,
    );
    report.downloadedBytes = download.bytes;
    const bad = new Set(download.failed.map((f) => f.ref.oid));
    for (const f of download.failed) report.failed.push({ path: f.ref.path ?? '', error: f.error.message });
    written = await runAll(todo.filter((e) => !bad.has(e.pointer.oid)), gitml.concurrency, (e) => {
      const staged = staging.get(e.pointer.oid);
      staging.delete(e.pointer.oid); // the next path with this object is copied from the cache
      return materialize(gitml.cache, workTree, e.path, e.pointer, e.mode, staged);
    });
  } finally {
    // Copies not placed (a failed download, an object that was cached already) leave nothing behind.
    await Promise.all(copies.map((f) => fsp.rm(f, { force: true }).catch(() => undefined)));
  }
  gitml.log.debug({ staged: written.filter((w) => w.ok && w.value === 'staged').length, copied: written.filter((w) => w.ok && w.value === 'copied').length }, 'pull: files written');
  const materialized: { path: string; oid: string; size: number }[] = [];
  for (const w of written) {
    if (w.ok) {
      report.written.push(w.item.path);
      materialized.push({ path: w.item.path, oid: w.item.pointer.oid, size: w.item.pointer.size });
    } else report.failed.push({ path: w.item.path, error: (w.error as Error).message });
  }
  await refreshWrittenFiles(gitml, materialized);
  return report;
}
