import type { Gitml } from '../context';
import { requireWorkTree } from '../git/repo';
import { scanIndexForPointers } from '../git/scan';
import type { ProgressSink } from '../progress';
import { downloadObjects } from '../transfer/transfer';
import { runAll } from '../util/pool';
import { fileState, materialize } from '../worktree';
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
  const download = await downloadObjects(
    todo.map((e) => ({ oid: e.pointer.oid, size: e.pointer.size, path: e.path })),
    await gitml.transferOptions(progress),
  );
  report.downloadedBytes = download.bytes;
  const bad = new Set(download.failed.map((f) => f.ref.oid));
  for (const f of download.failed) report.failed.push({ path: f.ref.path ?? '', error: f.error.message });
  const written = await runAll(
    todo.filter((e) => !bad.has(e.pointer.oid)),
    gitml.concurrency,
    (e) => materialize(gitml.cache, workTree, e.path, e.pointer, e.mode),
  );
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
