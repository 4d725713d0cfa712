import type { Gitml } from '../context';
import { GitmlError } from '../errors';
import { packLooseObjects } from '../git/pack-loose';
import { forEachPointerInRange, type PointerBlob } from '../git/scan';
import { shortOid } from '../pointer';
import { formatBytes, type ProgressSink } from '../progress';
import { planUpload, uploadObjects, type ObjectRef, type UploadReport } from '../transfer/transfer';
import { BatchChannel } from '../util/batches';

/** One ref being pushed: the commit (or tag) it will point at. Deletes have no objects to send. */
export interface RefUpdate {
  /** The remote ref name, used to report per-ref failures. */
  dst: string;
  /** Local object id being pushed; null for a delete. */
  sha: string | null;
}

export interface PushObjectsResult {
  /** Pointers newly reachable through the pushed refs. */
  pointers: number;
  report: UploadReport | null;
  storeUrl: string | null;
  /** Refs that must not move, with the reason (objects missing everywhere, uploads that failed). */
  blocked: Map<string, string>;
  /** Ends the push's hold on the store (gc waits for it): call once the refs have moved, or not. */
  release(): Promise<void>;
}

export interface PushObjectsOptions {
  /** Object ids the remote already has (its ref tips): what they reach is not scanned again. */
  remoteHas: readonly string[];
  progress?: { sink: ProgressSink; enabled: boolean };
  /** Check what would be uploaded without uploading. */
  dryRun?: boolean;
  /** The underlying URL of the remote being pushed to: recorded in the store for gc. */
  repoUrl?: string;
  /**
   * git's own push of these refs follows (the remote helper, the pre-push hook): the loose objects
   * it will send are packed beside the upload (src/git/pack-loose.ts). Not in a dry run.
   */
  gitPushFollows?: boolean;
}

/**
 * Before any ref moves: find every pointer the pushed commits introduce, and make sure the store has
 * its bytes. A ref whose pointers cannot all be stored is blocked, so no pointer without bytes is
 * ever published. Pushes with no pointers make no store call at all.
 */
export async function pushObjectsForRefs(gitml: Gitml, updates: readonly RefUpdate[], options: PushObjectsOptions): Promise<PushObjectsResult> {
  const prepacked = options.gitPushFollows && !options.dryRun ? packAhead(gitml, updates, options.remoteHas) : null;
  try {
    return await storeObjectsForRefs(gitml, updates, options);
  } finally {
    // Ended before the caller goes on, whatever the upload did: no git process outlives the push.
    await prepacked;
  }
}

/** Packs the loose objects git's push will send while the upload runs; never fails the push. */
async function packAhead(gitml: Gitml, updates: readonly RefUpdate[], remoteHas: readonly string[]): Promise<void> {
  const tips = updates.flatMap((u) => (u.sha ? [u.sha] : []));
  try {
    await packLooseObjects(gitml.repo.git, tips, remoteHas);
  } catch (e) {
    gitml.log.debug({ err: String(e) }, 'packing loose objects ahead of the push failed; git push packs them');
  }
}

async function storeObjectsForRefs(gitml: Gitml, updates: readonly RefUpdate[], options: PushObjectsOptions): Promise<PushObjectsResult> {
  const result: PushObjectsResult = { pointers: 0, report: null, storeUrl: null, blocked: new Map(), release: async () => undefined };
  /**
   * The objects each ref's new commits point at, to say which refs a failed object blocks; null when
   * one ref is pushed (every object is its own: no set of 100,000 entries for a large push).
   */
  const perRef = new Map<string, { pointers: number; oids: Set<string> | null }>();
  const several = updates.filter((u) => u.sha).length > 1;
  const seen = new Set<string>();
  const forDryRun: ObjectRef[] = [];
  // The store named by the commit being pushed (its .gitmlconfig), unless env or git config override.
  const firstSha = updates.find((u) => u.sha)?.sha;
  const target = async () => (firstSha ? await gitml.atTreeish(firstSha) : gitml);
  // Uploading starts with the first pointer found and goes on while the scan does (git reads the
  // pointer blobs in processes of its own): a push of 20,000 small files had scanned for 1.2 s
  // before its first upload. A dry run, and a push that finds no pointer, never open the store.
  const found = new BatchChannel<ObjectRef>();
  const upload: { report: Promise<UploadReport> | null } = { report: null };
  const startUpload = async (): Promise<UploadReport> => {
    const at = await target();
    result.storeUrl = (await at.store()).url;
    const lock = await (await at.objects()).beginPush(options.repoUrl);
    result.release = lock.release;
    return uploadObjects(found, await at.transferOptions(options.progress));
  };
  const onPointer = (p: PointerBlob) => {
    if (seen.has(p.pointer.oid)) return;
    seen.add(p.pointer.oid);
    const ref = { oid: p.pointer.oid, size: p.pointer.size, path: p.path };
    if (options.dryRun) {
      forDryRun.push(ref);
      return;
    }
    if (!upload.report) {
      upload.report = startUpload();
      upload.report.catch(() => undefined); // awaited once the scan has ended
    }
    found.push(ref);
  };
  try {
    for (const update of updates) {
      if (!update.sha) continue;
      const mine = { pointers: 0, oids: several ? new Set<string>() : null };
      perRef.set(update.dst, mine);
      await forEachPointerInRange(gitml.repo.git, [update.sha], options.remoteHas, (p) => {
        mine.pointers++;
        mine.oids?.add(p.pointer.oid);
        onPointer(p);
      });
    }
  } catch (e) {
    // What was uploaded meanwhile is stored whole and harmless; the caller moves no ref.
    found.close();
    await upload.report?.catch(() => undefined);
    await result.release();
    throw e;
  }
  found.close();
  result.pointers = seen.size;
  gitml.log.debug({ refs: updates.length, pointers: seen.size }, 'push scan');
  if (seen.size === 0) return result;

  let report: UploadReport;
  try {
    if (options.dryRun) {
      const at = await target();
      result.storeUrl = (await at.store()).url;
      report = await dryRunReport(forDryRun, at);
    } else report = await upload.report!;
  } catch (e) {
    await result.release();
    const why = e instanceof GitmlError ? `${e.message}${e.hint ? ` (${e.hint})` : ''}` : String(e);
    for (const [dst, { pointers }] of perRef) if (pointers > 0) result.blocked.set(dst, `gitml: ${why}`);
    return result;
  }
  result.report = report;

  const problems = new Map<string, string>();
  for (const m of report.missing) problems.set(m.oid, `'${m.path}' (sha256:${shortOid(m.oid)}) is in neither the local cache nor the store`);
  for (const f of report.failed) problems.set(f.ref.oid, f.error.hint ? `${f.error.message} (hint: ${f.error.hint})` : f.error.message);
  for (const [dst, { oids }] of perRef) {
    const reasons = [...new Set([...problems].filter(([oid]) => !oids || oids.has(oid)).map(([, why]) => why))];
    if (reasons.length === 0) continue;
    const shown = reasons.slice(0, 3).join('; ');
    const more = reasons.length > 3 ? `; and ${reasons.length - 3} more` : '';
    result.blocked.set(dst, `gitml: not pushed, its files' bytes could not be stored in ${result.storeUrl}: ${shown}${more}`);
  }
  return result;
}

async function dryRunReport(objects: ObjectRef[], gitml: Gitml): Promise<UploadReport> {
  const { present, todo } = await planUpload(objects, { objects: await gitml.objects(), concurrency: gitml.concurrency });
  const report: UploadReport = { uploaded: [], present: present.length, missing: [], failed: [], bytes: 0, newBytes: 0, warnings: [] };
  for (const { ref: o } of todo) {
    if (await gitml.cache.has(o.oid, o.size)) {
      report.uploaded.push(o);
      report.bytes += o.size;
    } else report.missing.push(o);
  }
  return report;
}

export function summarizeUpload(result: PushObjectsResult, seconds: number): string | null {
  const r = result.report;
  if (!r) return null;
  const lines = r.warnings.map((w) => `gitml: warning: ${w}`);
  if (r.uploaded.length > 0 || r.missing.length > 0 || r.failed.length > 0) {
    const rate = seconds > 0 ? ` (${formatBytes(r.bytes / seconds)}/s)` : '';
    const dedup = r.newBytes < r.bytes ? `, ${formatBytes(r.newBytes)} new after dedup` : '';
    lines.unshift(`gitml: stored ${r.uploaded.length} object(s), ${formatBytes(r.bytes)}${dedup} in ${result.storeUrl}${rate}; ${r.present} already there`);
  }
  return lines.length > 0 ? lines.join('\n') : null;
}
