import type { Gitml } from '../context';
import { scanRangeForPointers, scanTreeForPointers, type PointerBlob } from '../git/scan';
import type { ProgressSink } from '../progress';
import { downloadObjects, type DownloadReport } from '../transfer/transfer';
import type { FetchMode } from '../config';

export interface FetchObjectsOptions {
  mode: FetchMode;
  progress?: { sink: ProgressSink; enabled: boolean };
}

export interface FetchObjectsResult {
  pointers: number;
  report: DownloadReport | null;
  storeUrl: string | null;
}

/**
 * After git objects arrived, bring the gitml objects that checkout will need into the cache, in
 * parallel: `tips` takes the trees of the given commits, `all` everything reachable from them,
 * `none` nothing (checkout then downloads on demand, still in parallel through the filter's delay).
 */
export async function fetchObjectsForCommits(gitml: Gitml, commits: readonly string[], options: FetchObjectsOptions): Promise<FetchObjectsResult> {
  const result: FetchObjectsResult = { pointers: 0, report: null, storeUrl: null };
  if (options.mode === 'none' || commits.length === 0) return result;
  let pointers: PointerBlob[] = [];
  if (options.mode === 'all') {
    pointers = await scanRangeForPointers(gitml.repo.git, commits, []);
  } else {
    for (const commit of new Set(commits)) pointers.push(...(await scanTreeForPointers(gitml.repo.git, commit)));
  }
  const refs = dedupe(pointers);
  result.pointers = refs.length;
  if (refs.length === 0) return result;
  const target = await gitml.atTreeish(commits[0]!);
  const transfer = await target.transferOptions(options.progress);
  result.storeUrl = transfer.objects.url;
  result.report = await downloadObjects(refs, transfer);
  return result;
}

function dedupe(pointers: PointerBlob[]): { oid: string; size: number; path: string }[] {
  const seen = new Map<string, { oid: string; size: number; path: string }>();
  for (const p of pointers) if (!seen.has(p.pointer.oid)) seen.set(p.pointer.oid, { oid: p.pointer.oid, size: p.pointer.size, path: p.path });
  return [...seen.values()];
}
