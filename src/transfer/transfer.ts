import type { Logger } from '../log';
import type { ObjectCache } from '../cache';
import { GitmlError } from '../errors';
import { isStored, type ObjectRef, type ObjectStore, type ObjectUploader, type Presence } from '../objects/object-store';
import { CHUNKED_MIN_SIZE } from '../objects/layout';
import { describe } from '../objects/read';
import { Progress, type ProgressSink } from '../progress';
import { largestFirst, runAll } from '../util/pool';

export type { ObjectRef };

/**
 * Transfers as a person sees them: which objects move, in what order, how many at once, progress on
 * stderr, and a report of what happened to each. How an object is stored, and every request to the
 * store, is src/objects/'s business.
 */
export interface TransferOptions {
  cache: ObjectCache;
  objects: ObjectStore;
  concurrency: number;
  log: Logger;
  progress?: { sink: ProgressSink; enabled: boolean };
}

export interface TransferFailure {
  ref: ObjectRef;
  error: GitmlError;
}

export interface UploadReport {
  /** Objects the store did not have and now has. */
  uploaded: ObjectRef[];
  /** Objects the store already had. */
  present: number;
  /** Objects neither the store nor the cache has: a push that needs them must not go ahead. */
  missing: ObjectRef[];
  failed: TransferFailure[];
  /** Size of the objects uploaded. */
  bytes: number;
  /** Bytes actually added to the store (less than `bytes` when chunks were already there). */
  newBytes: number;
  /** Things the person should know that did not fail the push (a damaged pack index skipped). */
  warnings: string[];
}

export interface DownloadReport {
  downloaded: ObjectRef[];
  /** Objects that were already in the cache. */
  cached: number;
  failed: TransferFailure[];
  bytes: number;
}

/**
 * Cache lookups (one stat each) in flight at once: one after another, the thread-pool round trips
 * of 20,000 small files took 0.78 s of a 2.9 s push (docs/performance.md).
 */
const CACHE_CHECKS_IN_FLIGHT = 32;

/** `items` split by whether the cache has their object, in order. A cache that cannot be read throws. */
async function splitByCache<T>(items: readonly T[], cache: ObjectCache, refOf: (item: T) => ObjectRef): Promise<{ cached: T[]; absent: T[] }> {
  const out = { cached: [] as T[], absent: [] as T[] };
  for (const check of await runAll(items, CACHE_CHECKS_IN_FLIGHT, (item) => cache.has(refOf(item).oid, refOf(item).size))) {
    if (!check.ok) throw check.error;
    (check.value ? out.cached : out.absent).push(check.item);
  }
  return out;
}

function dedupe(objects: readonly ObjectRef[]): ObjectRef[] {
  const seen = new Map<string, ObjectRef>();
  for (const o of objects) if (!seen.has(o.oid)) seen.set(o.oid, o);
  return [...seen.values()];
}

function progressOf(title: string, options: TransferOptions, total = 0): Progress {
  return new Progress(title, total, options.progress?.sink ?? { write: () => undefined }, { enabled: options.progress?.enabled ?? false });
}

/** Which objects the store already has, and what each of the others is (absent or damaged). */
export async function planUpload(
  objects: readonly ObjectRef[],
  options: Pick<TransferOptions, 'objects' | 'concurrency'>,
): Promise<{ present: ObjectRef[]; todo: { ref: ObjectRef; presence: Presence }[] }> {
  const presence = await options.objects.presence(objects, Math.max(options.concurrency, 16));
  const present: ObjectRef[] = [];
  const todo: { ref: ObjectRef; presence: Presence }[] = [];
  for (const ref of objects) {
    const p = presence.get(ref.oid) ?? 'absent';
    if (isStored(p)) present.push(ref);
    else todo.push({ ref, presence: p });
  }
  return { present, todo };
}

/**
 * Makes sure the store has every object: existence checks, then uploads from the cache of what is
 * missing, largest first, `concurrency` at a time. `objects` is a list (repeats are dropped), or
 * batches still being found, in which no object comes twice (a push uploads while it scans and
 * drops repeats as it finds them): each batch is checked and uploaded as it comes. Re-running after
 * an interruption uploads only what is still missing.
 */
export async function uploadObjects(objects: readonly ObjectRef[] | AsyncIterable<readonly ObjectRef[]>, options: TransferOptions): Promise<UploadReport> {
  const { cache, log } = options;
  const report: UploadReport = { uploaded: [], present: 0, missing: [], failed: [], bytes: 0, newBytes: 0, warnings: [] };
  const streamed = Symbol.asyncIterator in objects;
  const batches: Iterable<readonly ObjectRef[]> | AsyncIterable<readonly ObjectRef[]> = streamed ? objects : [objects];
  let total = 0;
  let progress: Progress | null = null;
  let session: ObjectUploader | null = null;
  const fail = (ref: ObjectRef, e: unknown) => report.failed.push({ ref, error: asTransferError(e, `cannot upload ${describe(ref)} to ${options.objects.url}`) });
  const added: ObjectRef[] = [];
  let todoCount = 0;
  try {
    for await (const batch of batches) {
      const unique = streamed ? batch : dedupe(batch);
      total += unique.length;
      if (unique.length === 0) continue;
      const { present, todo } = await planUpload(unique, options);
      report.present += present.length;
      todoCount += todo.length;
      if (todo.length === 0) continue;
      progress ??= progressOf('Uploading gitml objects', options);
      progress.expect(todo.length);
      if (!streamed) progress.allExpected();
      const shown = progress;
      session ??= options.objects.uploader(cache, (n) => shown.addBytes(n));
      const { cached: available, absent } = await splitByCache(todo, cache, (t) => t.ref);
      report.missing.push(...absent.map((t) => t.ref));
      // Chunked objects feed one stream of packs, in turn; whole ones upload side by side.
      for (const t of available) {
        if (!session.deferred(t.ref)) continue;
        try {
          await session.add(t.ref, t.presence);
          added.push(t.ref);
          shown.itemDone();
        } catch (e) {
          fail(t.ref, e);
        }
      }
      const direct = largestFirst(available.filter((t) => !session!.deferred(t.ref)).map((t) => ({ ...t, size: t.ref.size })));
      const outcomes = await runAll(direct, options.concurrency, async (t) => {
        await session!.add(t.ref, t.presence);
        shown.itemDone();
      });
      for (const o of outcomes) {
        if (o.ok) {
          report.uploaded.push(o.item.ref);
          report.bytes += o.item.ref.size;
        } else fail(o.item.ref, o.error);
      }
    }
  } catch (e) {
    // The store could not be asked what it has, or the cache read: nothing deferred becomes visible.
    await session?.abort();
    throw e;
  }
  log.debug({ total, present: report.present, todo: todoCount }, 'upload plan');
  if (!session) return report;
  progress?.allExpected();
  try {
    await session.finish();
    for (const ref of added) {
      report.uploaded.push(ref);
      report.bytes += ref.size;
    }
  } catch (e) {
    // The packs or manifests could not be stored: none of the chunked objects is visible.
    await session.abort();
    for (const ref of added) fail(ref, e);
  }
  for (const s of await session.indexProblems().catch(() => [])) {
    report.warnings.push(
      s.recovered
        ? `pack index ${s.pack.slice(0, 12)} in ${options.objects.url} is damaged or gone (${s.why}); the copy inside its pack was used. Run \`gitml fsck --store\`.`
        : `pack index ${s.pack.slice(0, 12)} in ${options.objects.url} was not used (${s.why}); its chunks were stored again. Run \`gitml fsck --store\`.`,
    );
  }
  report.newBytes = session.newBytes;
  progress?.finish();
  return report;
}

/**
 * Brings objects into the cache: those already cached are skipped, the rest are downloaded
 * `concurrency` at a time and verified against their sha256 before they are named. `copies`: for an
 * object downloaded on its own (from CHUNKED_MIN_SIZE), a file to create with the same bytes in the
 * same pass (ObjectStore.download `copyTo`; the caller checks whether it is there and whole).
 */
export async function downloadObjects(objects: readonly ObjectRef[], options: TransferOptions, copies?: ReadonlyMap<string, string>): Promise<DownloadReport> {
  const { cache, log } = options;
  const unique = dedupe(objects);
  const report: DownloadReport = { downloaded: [], cached: 0, failed: [], bytes: 0 };
  const { cached, absent: todo } = await splitByCache(unique, cache, (o) => o);
  report.cached = cached.length;
  log.debug({ total: unique.length, cached: report.cached, todo: todo.length }, 'download plan');
  if (todo.length === 0) return report;
  const progress = progressOf('Downloading gitml objects', options, todo.length);
  // Small objects come many to a request from their packs; what that does not bring (whole objects
  // of older stores, a failure) is fetched one by one below, which also says what went wrong.
  const small = todo.filter((r) => r.size < CHUNKED_MIN_SIZE);
  const oneByOne = todo.filter((r) => r.size >= CHUNKED_MIN_SIZE);
  if (small.length > 0) {
    const packed = await options.objects.downloadPacked(small, cache, (n) => progress.addBytes(n), options.concurrency, () => progress.itemDone());
    for (const o of packed) {
      if (o.ok) {
        report.downloaded.push(o.ref);
        report.bytes += o.ref.size;
      } else oneByOne.push(o.ref);
    }
  }
  const outcomes = await runAll(largestFirst(oneByOne), options.concurrency, async (ref) => {
    await options.objects.download(ref, cache, { onBytes: (n) => progress.addBytes(n), copyTo: copies?.get(ref.oid) });
    progress.itemDone();
  });
  progress.finish();
  for (const o of outcomes) {
    if (o.ok) {
      report.downloaded.push(o.item);
      report.bytes += o.item.size;
    } else report.failed.push({ ref: o.item, error: asTransferError(o.error, `cannot download ${describe(o.item)} from ${options.objects.url}`) });
  }
  return report;
}

/** One object's failure, with the object named once, and what to do. */
export function asTransferError(e: unknown, context: string): GitmlError {
  if (e instanceof GitmlError) {
    if (e.code === 'E_OBJECT_MISSING') {
      return new GitmlError('E_OBJECT_MISSING', `${context}: it is not in the store`, {
        hint: 'Push it from a clone that has it (`gitml push`), or check that gitml.store names the right store (`gitml env`).',
        cause: e,
      });
    }
    return e.message.includes('sha256:') ? e : new GitmlError(e.code, `${context}: ${e.message}`, { hint: e.hint, cause: e, retryable: e.retryable });
  }
  return new GitmlError('E_STORE_IO', `${context}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}
