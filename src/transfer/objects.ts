import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { ObjectCache } from '../cache';
import { GitmlError, isGitmlError } from '../errors';
import { shortOid } from '../pointer';
import { Progress, type ProgressSink } from '../progress';
import { objectKey } from '../store/keys';
import { partsOf } from '../store/parts';
import { missingObjectError, type BodySource, type Store } from '../store/store';
import { largestFirst, runAll } from './queue';
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from './retry';

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
  bytes: number;
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
 * Makes sure the store has every object: one batched existence check, then uploads from the cache
 * of what is absent, largest first, `concurrency` at a time, each with retries. Re-running after an
 * interruption uploads only what is still missing.
 */
export async function uploadObjects(objects: readonly ObjectRef[], options: TransferOptions): Promise<UploadReport> {
  const { cache, store, log } = options;
  const unique = dedupe(objects);
  const report: UploadReport = { uploaded: [], present: 0, missing: [], failed: [], bytes: 0 };
  if (unique.length === 0) return report;

  const sizes = await store.statMany(unique.map((o) => objectKey(o.oid)));
  const todo: ObjectRef[] = [];
  const absent = new Set<string>();
  for (const o of unique) {
    const stored = sizes.get(objectKey(o.oid));
    if (stored === o.size) report.present++;
    else {
      todo.push(o);
      if (stored === null || stored === undefined) absent.add(o.oid);
    }
  }
  log.debug({ total: unique.length, present: report.present, todo: todo.length }, 'upload plan');
  if (todo.length === 0) return report;

  const progress = new Progress('Uploading gitml objects', todo.length, options.progress?.sink ?? { write: () => undefined }, {
    enabled: options.progress?.enabled ?? false,
  });
  const outcomes = await runAll(largestFirst(todo), options.concurrency, async (ref) => {
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
    } else if (o.ok) {
      report.missing.push(o.item);
    } else {
      report.failed.push({ ref: o.item, error: asStoreError(o.error, `cannot upload ${describe(o.item)} to ${store.url}`) });
    }
  }
  return report;
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
      const source = cache.openRead(ref.oid, range);
      source.on('error', (e) => tap.destroy(e));
      return source.pipe(tap);
    },
  };
  // When the batched existence check just found nothing there, the backend may skip its own check.
  const result = await store.put(key, body, { signal: AbortSignal.timeout(objectTimeoutMs(ref.size)), checked: seenAbsent });
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
  const { cache, store, log } = options;
  const key = objectKey(ref.oid);
  // A stored copy of the wrong size would fail every range; say so at once instead.
  const stat = await store.stat(key);
  if (!stat) throw missingObjectError(store, key);
  if (stat.size !== ref.size) throw damagedInStore(ref, store.url, `it holds ${stat.size} bytes`);
  const writer = await cache.createRangedWriter(ref);
  try {
    const outcomes = await runAll(partsOf(ref.size, RANGE_SIZE), RANGES_IN_FLIGHT, (part) =>
      withRetry(
        async () => {
          const stream = await store.get(key, { range: part.range, signal: AbortSignal.timeout(objectTimeoutMs(RANGE_SIZE)) });
          try {
            await writer.writePart(part.range, counting(stream, onBytes));
          } catch (e) {
            stream.destroy();
            if (e instanceof GitmlError) throw e;
            throw new GitmlError('E_STORE_IO', `download of ${describe(ref)} from ${store.url} broke off: ${(e as Error).message}`, { cause: e, retryable: true });
          }
        },
        options.retry ?? DEFAULT_RETRY,
        (err, attempt, delay) => log.warn({ oid: ref.oid, range: part.range, attempt, delay, err: String(err) }, 'ranged download failed, retrying'),
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

async function* counting(stream: Readable, onBytes: (n: number) => void): AsyncIterable<Buffer> {
  for await (const chunk of stream) {
    onBytes((chunk as Buffer).length);
    yield chunk as Buffer;
  }
}

function damagedInStore(ref: ObjectRef, storeUrl: string, detail: string): GitmlError {
  return new GitmlError('E_OBJECT_CORRUPT', `the store ${storeUrl} holds a damaged copy of ${describe(ref)}: ${detail}`, {
    hint: 'Nothing was written. Run `gitml fsck --store` to list damaged objects, and push the file again from a clone that has it (`gitml push --all`).',
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
