import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { ObjectCache } from '../cache';
import { GitmlError, isGitmlError } from '../errors';
import { shortOid } from '../pointer';
import { Progress, type ProgressSink } from '../progress';
import { objectKey } from '../store/keys';
import { partsOf } from '../store/parts';
import { CHUNKED_MIN_SIZE, manifestKey, packKey } from '../chunk/format';
import { fetchManifest, planReads, readChunked, type ReadPlan } from '../chunk/download';
import { ChunkIndex, indexDirFor } from '../chunk/index';
import { ChunkedUploader } from '../chunk/upload';
import { missingObjectError, type BodySource, type Store } from '../store/store';
import { largestFirst, runAll } from './queue';
import pLimit from 'p-limit';
import { DEFAULT_RETRY, isRetryable, withRetry, type RetryPolicy } from './retry';

/** An object to move, with a path it is known by (for messages). */
export interface ObjectRef {
  oid: string;
  size: number;
  path?: string;
}

export interface TransferOptions {
  cache: ObjectCache;
  store: Store;
  concurrency: number;
  log: Logger;
  progress?: { sink: ProgressSink; enabled: boolean };
  retry?: RetryPolicy;
  /** Store objects of CHUNKED_MIN_SIZE and more as deduplicated chunks (docs/chunking.md). */
  chunking?: boolean;
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
}

export interface DownloadReport {
  downloaded: ObjectRef[];
  /** Objects that were already in the cache. */
  cached: number;
  failed: TransferFailure[];
  bytes: number;
}

/**
 * A per-object deadline, so a hung connection cannot stall a push forever: two minutes plus the
 * object's size at 256 KiB/s (a slow link). A timeout is retried like any transient fault.
 */
export function objectTimeoutMs(size: number): number {
  return 120_000 + Math.ceil(size / (256 * 1024)) * 1000;
}

function dedupe(objects: readonly ObjectRef[]): ObjectRef[] {
  const seen = new Map<string, ObjectRef>();
  for (const o of objects) if (!seen.has(o.oid)) seen.set(o.oid, o);
  return [...seen.values()];
}

function describe(ref: ObjectRef): string {
  return `${ref.path ? `'${ref.path}' ` : ''}(sha256:${shortOid(ref.oid)}, ${ref.size} bytes)`;
}

/**
 * The store's batched existence check, with each key retried on its own: one throttled answer among
 * thousands must not fail a push (a retry of the whole batch would rarely get through under load).
 */
export async function statManyWithRetry(store: Store, keys: readonly string[], retry: RetryPolicy): Promise<Map<string, number | null>> {
  try {
    return await store.statMany(keys);
  } catch (e) {
    if (!isRetryable(e)) throw e;
  }
  const out = new Map<string, number | null>();
  const limit = pLimit(32);
  await Promise.all(
    keys.map((key) =>
      limit(async () => {
        const st = await withRetry(() => store.stat(key), retry);
        out.set(key, st ? st.size : null);
      }),
    ),
  );
  return out;
}

/**
 * Which objects the store already has (whole, or as a manifest of chunks for large ones), in one
 * batched existence check. `absent`: nothing at all under their keys (not even a damaged copy).
 */
export async function planUpload(objects: readonly ObjectRef[], store: Store, retry: RetryPolicy = DEFAULT_RETRY): Promise<{ present: ObjectRef[]; todo: ObjectRef[]; absent: Set<string> }> {
  const keys = objects.flatMap((o) => (o.size >= CHUNKED_MIN_SIZE ? [objectKey(o.oid), manifestKey(o.oid)] : [objectKey(o.oid)]));
  const sizes = await statManyWithRetry(store, keys, retry);
  const present: ObjectRef[] = [];
  const todo: ObjectRef[] = [];
  const absent = new Set<string>();
  for (const o of objects) {
    const stored = sizes.get(objectKey(o.oid));
    if (stored === o.size || (o.size >= CHUNKED_MIN_SIZE && typeof sizes.get(manifestKey(o.oid)) === 'number')) present.push(o);
    else {
      todo.push(o);
      if (stored === null || stored === undefined) absent.add(o.oid);
    }
  }
  return { present, todo, absent };
}

/**
 * Makes sure the store has every object: one batched existence check, then uploads from the cache
 * of what is absent, largest first, `concurrency` at a time, each with retries. Re-running after an
 * interruption uploads only what is still missing.
 */
export async function uploadObjects(objects: readonly ObjectRef[], options: TransferOptions): Promise<UploadReport> {
  const { cache, store, log } = options;
  const unique = dedupe(objects);
  const report: UploadReport = { uploaded: [], present: 0, missing: [], failed: [], bytes: 0, newBytes: 0 };
  if (unique.length === 0) return report;

  const { present, todo, absent } = await planUpload(unique, store, options.retry);
  report.present = present.length;
  log.debug({ total: unique.length, present: report.present, todo: todo.length }, 'upload plan');
  if (todo.length === 0) return report;

  const progress = new Progress('Uploading gitml objects', todo.length, options.progress?.sink ?? { write: () => undefined }, {
    enabled: options.progress?.enabled ?? false,
  });
  const chunked = options.chunking ? todo.filter((o) => o.size >= CHUNKED_MIN_SIZE) : [];
  const whole = todo.filter((o) => !chunked.includes(o));
  if (chunked.length > 0) await uploadChunked(chunked, options, progress, report);
  const outcomes = await runAll(largestFirst(whole), options.concurrency, async (ref) => {
    if (!(await cache.has(ref.oid, ref.size))) return 'missing' as const;
    await withRetry(() => uploadOne(ref, options, absent.has(ref.oid), (n) => progress.addBytes(n)), options.retry ?? DEFAULT_RETRY, (err, attempt, delay) =>
      log.warn({ oid: ref.oid, attempt, delay, err: String(err) }, 'upload failed, retrying'),
    );
    progress.itemDone();
    return 'uploaded' as const;
  });
  progress.finish();
  for (const o of outcomes) {
    if (o.ok && o.value === 'uploaded') {
      report.uploaded.push(o.item);
      report.bytes += o.item.size;
      report.newBytes += o.item.size;
    } else if (o.ok) {
      report.missing.push(o.item);
    } else {
      report.failed.push({ ref: o.item, error: asStoreError(o.error, `cannot upload ${describe(o.item)} to ${store.url}`) });
    }
  }
  return report;
}

/**
 * Large objects as deduplicated chunks: one pass each (read, verify, chunk), new chunks into packs that
 * upload in the background, manifests last. Objects missing from the cache are reported as missing.
 */
async function uploadChunked(objects: ObjectRef[], options: TransferOptions, progress: Progress, report: UploadReport): Promise<void> {
  const { cache, store, log } = options;
  const present: ObjectRef[] = [];
  for (const o of objects) {
    if (await cache.has(o.oid, o.size)) present.push(o);
    else report.missing.push(o);
  }
  if (present.length === 0) return;
  const retry = options.retry ?? DEFAULT_RETRY;
  let uploader: ChunkedUploader | null = null;
  try {
    const index = await ChunkIndex.load(store, indexDirFor(cache.root, store.url), log, retry);
    uploader = new ChunkedUploader({ store, cache, index, log, retry, concurrency: Math.min(4, options.concurrency), onBytes: (n) => progress.addBytes(n) });
    const added: ObjectRef[] = [];
    for (const o of present) {
      try {
        await uploader.add(o);
        added.push(o);
        progress.itemDone();
      } catch (e) {
        if (!isGitmlError(e, 'E_OBJECT_CORRUPT')) throw e;
        report.failed.push({ ref: o, error: e });
      }
    }
    const result = await uploader.finish();
    for (const o of added) {
      report.uploaded.push(o);
      report.bytes += o.size;
    }
    report.newBytes += result.newBytes;
  } catch (e) {
    await uploader?.abort();
    for (const o of present) {
      if (!report.failed.some((f) => f.ref.oid === o.oid)) report.failed.push({ ref: o, error: asStoreError(e, `cannot upload ${describe(o)} to ${store.url}`) });
    }
  }
}

/**
 * Uploads one cached object. The bytes are hashed on their way out: if the cached copy turns out not
 * to match its name (a damaged disk), the stored copy is removed again and nothing bad is published.
 */
async function uploadOne(ref: ObjectRef, options: TransferOptions, seenAbsent: boolean, onBytes: (n: number) => void): Promise<void> {
  const { cache, store } = options;
  const key = objectKey(ref.oid);
  let lastFullRead: ReturnType<typeof createHash> | null = null;
  let lastFullBytes = 0;
  const body: BodySource = {
    size: ref.size,
    open(range) {
      const hash = range ? null : createHash('sha256');
      if (hash) {
        lastFullRead = hash;
        lastFullBytes = 0;
      }
      const tap = new Transform({
        transform(chunk: Buffer, _enc, done) {
          if (hash && lastFullRead === hash) {
            hash.update(chunk);
            lastFullBytes += chunk.length;
          }
          onBytes(chunk.length);
          done(null, chunk);
        },
      });
      const source = cache.openRead(ref.oid, range, ref.size);
      source.on('error', (e) => tap.destroy(e));
      return source.pipe(tap);
    },
  };
  // When the batched existence check just found nothing there, the backend may skip its own check;
  // when it found a copy of the wrong size, that copy is damaged (half an upload kept by a server) and
  // is replaced with these bytes, which are verified on the way out.
  if (!seenAbsent) options.log.warn({ oid: ref.oid, store: store.url }, 'replacing a stored copy of the wrong size');
  const result = await store.put(key, body, { signal: AbortSignal.timeout(objectTimeoutMs(ref.size)), checked: seenAbsent, replace: !seenAbsent });
  const read = lastFullRead as ReturnType<typeof createHash> | null;
  if (result === 'created' && read && lastFullBytes === ref.size) {
    const digest = read.digest('hex');
    if (digest !== ref.oid) {
      await store.delete(key);
      await cache.remove(ref.oid);
      throw new GitmlError('E_OBJECT_CORRUPT', `the cached copy of ${describe(ref)} is damaged (its bytes hash to sha256:${shortOid(digest)}); it was removed from the cache and not published`, {
        hint: 'Restore the file from a good copy (or another clone) and `git add` it again.',
      });
    }
  }
}

/**
 * Brings objects into the cache: those already cached are skipped, the rest are downloaded
 * `concurrency` at a time and verified against their sha256 before they are named.
 */
export async function downloadObjects(objects: readonly ObjectRef[], options: TransferOptions): Promise<DownloadReport> {
  const { cache, log } = options;
  const unique = dedupe(objects);
  const report: DownloadReport = { downloaded: [], cached: 0, failed: [], bytes: 0 };
  const todo: ObjectRef[] = [];
  for (const o of unique) {
    if (await cache.has(o.oid, o.size)) report.cached++;
    else todo.push(o);
  }
  log.debug({ total: unique.length, cached: report.cached, todo: todo.length }, 'download plan');
  if (todo.length === 0) return report;
  const progress = new Progress('Downloading gitml objects', todo.length, options.progress?.sink ?? { write: () => undefined }, {
    enabled: options.progress?.enabled ?? false,
  });
  const outcomes = await runAll(largestFirst(todo), options.concurrency, async (ref) => {
    await downloadObject(ref, options, (n) => progress.addBytes(n));
    progress.itemDone();
  });
  progress.finish();
  for (const o of outcomes) {
    if (o.ok) {
      report.downloaded.push(o.item);
      report.bytes += o.item.size;
    } else {
      report.failed.push({ ref: o.item, error: asStoreError(o.error, `cannot download ${describe(o.item)} from ${options.store.url}`) });
    }
  }
  return report;
}

/** Objects at least this large are downloaded as parallel ranged reads. */
export const RANGED_DOWNLOAD_THRESHOLD = 32 * 1024 * 1024;
const RANGE_SIZE = 16 * 1024 * 1024;
const RANGES_IN_FLIGHT = 4;

/** Downloads one object into the cache, verified; retried on transient errors. */
export async function downloadObject(ref: ObjectRef, options: TransferOptions, onBytes: (n: number) => void = () => undefined): Promise<void> {
  if (ref.size >= CHUNKED_MIN_SIZE) {
    // Large objects may be stored as chunks (whatever this clone's own chunking setting says).
    const manifest = await withRetry(() => fetchManifest(options.store, ref.oid), options.retry ?? DEFAULT_RETRY);
    if (manifest) {
      if (manifest.size !== ref.size) throw damagedInStore(ref, options.store.url, `its manifest describes ${manifest.size} bytes`);
      return downloadPlanned(ref, options, onBytes, planReads(manifest, RANGE_SIZE));
    }
  }
  if (ref.size >= RANGED_DOWNLOAD_THRESHOLD) return downloadRanged(ref, options, onBytes);
  const { cache, store, log } = options;
  const key = objectKey(ref.oid);
  await withRetry(
    async () => {
      const stream = await store.get(key, { signal: AbortSignal.timeout(objectTimeoutMs(ref.size)) });
      try {
        await cache.writeStream(counting(stream, onBytes), ref);
      } catch (e) {
        stream.destroy();
        if (isGitmlError(e, 'E_OBJECT_CORRUPT')) throw damagedInStore(ref, store.url, e.message);
        if (e instanceof GitmlError) throw e;
        // The connection broke or timed out in the middle of the body: transient, try again.
        throw new GitmlError('E_STORE_IO', `download of ${describe(ref)} from ${store.url} broke off: ${(e as Error).message}`, { cause: e, retryable: true });
      }
    },
    options.retry ?? DEFAULT_RETRY,
    (err, attempt, delay) => log.warn({ oid: ref.oid, attempt, delay, err: String(err) }, 'download failed, retrying'),
  );
}

/**
 * A large object as ranges fetched in parallel (each retried on its own) into one temp file, hashed in
 * order as the parts complete, and named only if the whole matches.
 */
async function downloadRanged(ref: ObjectRef, options: TransferOptions, onBytes: (n: number) => void): Promise<void> {
  const key = objectKey(ref.oid);
  // A stored copy of the wrong size would fail every range; say so at once instead.
  const stat = await withRetry(() => options.store.stat(key), options.retry ?? DEFAULT_RETRY);
  if (!stat) throw missingObjectError(options.store, key);
  if (stat.size !== ref.size) throw damagedInStore(ref, options.store.url, `it holds ${stat.size} bytes`);
  const plan = partsOf(ref.size, RANGE_SIZE).map((p) => ({ key, offset: p.range.start, length: p.range.end - p.range.start, at: p.range.start }));
  return downloadPlanned(ref, options, onBytes, plan);
}

/**
 * Ranged reads (of a whole object, or of packs for a chunked one) fetched in parallel, each retried on
 * its own, into one temp file hashed in order as parts complete; named only if the whole matches.
 */
async function downloadPlanned(
  ref: ObjectRef,
  options: TransferOptions,
  onBytes: (n: number) => void,
  plan: ({ key: string; offset: number; length: number; at: number } | ReadPlan)[],
): Promise<void> {
  const { cache, store, log } = options;
  const writer = await cache.createRangedWriter(ref);
  try {
    const outcomes = await runAll(plan, RANGES_IN_FLIGHT, (part) =>
      withRetry(
        async () => {
          const key = 'key' in part ? part.key : packKey(part.pack);
          const stream = await store.get(key, { range: { start: part.offset, end: part.offset + part.length }, signal: AbortSignal.timeout(objectTimeoutMs(part.length)) });
          try {
            await writer.writePart({ start: part.at, end: part.at + part.length }, counting(stream, onBytes));
          } catch (e) {
            stream.destroy();
            if (e instanceof GitmlError) throw e;
            throw new GitmlError('E_STORE_IO', `download of ${describe(ref)} from ${store.url} broke off: ${(e as Error).message}`, { cause: e, retryable: true });
          }
        },
        options.retry ?? DEFAULT_RETRY,
        (err, attempt, delay) => log.warn({ oid: ref.oid, at: part.at, attempt, delay, err: String(err) }, 'ranged download failed, retrying'),
      ),
    );
    const failed = outcomes.find((o) => !o.ok);
    if (failed && !failed.ok) throw failed.error;
    await writer.commit();
  } catch (e) {
    await writer.abort();
    if (isGitmlError(e, 'E_OBJECT_CORRUPT')) throw damagedInStore(ref, store.url, e.message);
    throw e;
  }
}

/** The bytes of a stored object in order, whole or chunked (for fsck and bundles; not verified here). */
export async function* readStoredObject(store: Store, ref: ObjectRef): AsyncIterable<Buffer> {
  if (ref.size >= CHUNKED_MIN_SIZE) {
    const manifest = await fetchManifest(store, ref.oid);
    if (manifest) {
      yield* readChunked(store, manifest);
      return;
    }
  }
  for await (const c of await store.get(objectKey(ref.oid))) yield c as Buffer;
}

/** Whether the store has the object, whole or chunked. */
export async function storedSize(store: Store, ref: ObjectRef): Promise<number | null> {
  const whole = await store.stat(objectKey(ref.oid));
  if (whole) return whole.size;
  if (ref.size < CHUNKED_MIN_SIZE) return null;
  const manifest = await fetchManifest(store, ref.oid);
  return manifest ? manifest.size : null;
}

async function* counting(stream: Readable, onBytes: (n: number) => void): AsyncIterable<Buffer> {
  for await (const chunk of stream) {
    onBytes((chunk as Buffer).length);
    yield chunk as Buffer;
  }
}

function damagedInStore(ref: ObjectRef, storeUrl: string, detail: string): GitmlError {
  return new GitmlError('E_OBJECT_CORRUPT', `the store ${storeUrl} holds a damaged copy of ${describe(ref)}: ${detail}`, {
    hint: 'Nothing was written. Run `gitml fsck --store` to list damaged objects, then `gitml push --repair` from a clone that has the file.',
  });
}

function asStoreError(e: unknown, context: string): GitmlError {
  if (e instanceof GitmlError) {
    if (e.code === 'E_OBJECT_MISSING') {
      return new GitmlError('E_OBJECT_MISSING', `${context}: it is not in the store`, {
        hint: 'Push it from a clone that has it (`gitml push`), or check that gitml.store names the right store (`gitml env`).',
        cause: e,
      });
    }
    return e.message.startsWith(context) ? e : new GitmlError(e.code, `${context}: ${e.message}`, { hint: e.hint, cause: e });
  }
  return new GitmlError('E_STORE_IO', `${context}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}
