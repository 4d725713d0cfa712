import fsp from 'node:fs/promises';
import type { ObjectCache } from '../cache';
import { GitmlError, isGitmlError } from '../errors';
import { shortOid } from '../pointer';
import { makeDirs } from '../safe-path';
import type { ByteRange } from '../store/store';
import { forEachBounded, runAll } from '../util/pool';
import { withRetry } from '../util/retry';
import { ReadBlocks } from '../util/read-blocks';
import { decodeManifest, maxManifestBytes, type Manifest } from './format';
import { damagedData as damaged } from '../store/requests';
import { manifestKey, objectKey, packKey } from './layout';
import type { Requests } from '../store/requests';

/** An object to read, with a path it is known by (for messages). */
export interface ObjectRef {
  oid: string;
  size: number;
  path?: string;
}

/** Ranged reads are at most this long; this many of one object run at once. */
export const RANGE_SIZE = 16 * 1024 * 1024;
const RANGES_IN_FLIGHT = 4;
/** Whole objects at least this large are read as parallel ranges. */
export const RANGED_DOWNLOAD_THRESHOLD = 32 * 1024 * 1024;

export function describe(ref: ObjectRef): string {
  return `${ref.path ? `'${ref.path}' ` : ''}(sha256:${shortOid(ref.oid)}, ${ref.size} bytes)`;
}

/** The object's manifest (checked against the pointer's size), or null when it is not chunked. */
export async function fetchManifest(requests: Requests, ref: ObjectRef): Promise<Manifest | null> {
  const key = manifestKey(ref.oid);
  const data = await requests.readAll(key, maxManifestBytes(ref.size), `the manifest of ${describe(ref)}`);
  return data === null ? null : decodeManifest(data, ref.oid, ref.size, `${requests.url} ${key}`);
}

/**
 * Sizes of the packs a manifest reads, and a check that every run lies inside its pack: a pack that
 * is gone or shorter than a run needs is damage, found before any byte is written.
 */
export async function checkPacks(requests: Requests, manifest: Manifest, known: (pack: string) => number | undefined = () => undefined): Promise<void> {
  const needed = new Map<string, number>();
  for (const r of manifest.runs) needed.set(r.pack, Math.max(needed.get(r.pack) ?? 0, r.offset + r.length));
  const unknown = [...needed.keys()].filter((p) => known(p) === undefined);
  const sizes = new Map<string, number | null>();
  const outcomes = await runAll(unknown, 16, async (pack) => sizes.set(pack, (await requests.stat(packKey(pack)))?.size ?? null));
  const failed = outcomes.find((o) => !o.ok);
  if (failed && !failed.ok) throw failed.error;
  for (const [pack, end] of needed) {
    const size = known(pack) ?? sizes.get(pack);
    const reader = `${manifestKey(manifest.oid)} in ${requests.url}`;
    if (size === null || size === undefined) throw damaged(`${reader} reads ${packKey(pack)}, which is not in the store`);
    if (size < end) throw damaged(`${reader} reads ${packKey(pack)} up to byte ${end}, but that pack is ${size} bytes`);
  }
}

/** One ranged read: `length` bytes of `key` from `offset`, landing at `at` in the object. */
export interface ReadPlan {
  key: string;
  offset: number;
  length: number;
  at: number;
}

/** A manifest as ranged reads of at most `maxRead` bytes, made lazily (no list the size of the plan). */
export function* planManifestReads(manifest: Manifest, maxRead: number): Generator<ReadPlan> {
  let at = 0;
  for (const run of manifest.runs) {
    for (let done = 0; done < run.length; ) {
      const length = Math.min(maxRead, run.length - done);
      yield { key: packKey(run.pack), offset: run.offset + done, length, at: at + done };
      done += length;
    }
    at += run.length;
  }
}

/** A whole object as ranged reads. */
export function* planWholeReads(ref: ObjectRef, maxRead: number): Generator<ReadPlan> {
  const key = objectKey(ref.oid);
  for (let start = 0; start < ref.size; start += maxRead) yield { key, offset: start, length: Math.min(maxRead, ref.size - start), at: start };
}

/** Refuses to start a download the cache's disk cannot hold (a pointer may claim any size). */
export async function assertRoomFor(cache: ObjectCache, ref: ObjectRef): Promise<void> {
  let free: number;
  try {
    await makeDirs(cache.tmpDir);
    const s = await fsp.statfs(cache.tmpDir);
    free = s.bavail * s.bsize;
  } catch {
    return; // the write itself will say what is wrong
  }
  if (ref.size > free) {
    throw new GitmlError('E_CACHE_IO', `${describe(ref)} needs ${ref.size} bytes, but the disk holding the gitml cache at ${cache.root} has ${free} free`, {
      hint: 'Free space, or point gitml.cachedir at a larger disk. (A pointer naming an impossible size is damage: check the file in git.)',
    });
  }
}

/**
 * Ranged reads into one temp file in the cache, fetched in parallel (each retried on its own, a short
 * read told apart from damage by asking the store for the object's size), hashed in order as parts
 * complete, and named only if the whole matches the pointer. `copyTo`: the same bytes into a second new
 * file (RangedCacheWriter).
 */
export async function downloadPlanned(requests: Requests, cache: ObjectCache, ref: ObjectRef, plan: Iterable<ReadPlan>, onBytes: (n: number) => void, inFlight = RANGES_IN_FLIGHT, copyTo?: string): Promise<void> {
  const writer = await cache.createRangedWriter(ref, copyTo, { partsInOrder: inFlight <= 1 });
  // writePart writes each chunk before it asks for the next: a store that reads into given memory
  // reads into these, shared by the parts (two blocks each at most), not into a fresh buffer per read.
  const blocks = new ReadBlocks();
  try {
    await forEachBounded(plan, inFlight, (part) =>
      withRetry(
        () => readRangeInto(requests, part.key, { start: part.offset, end: part.offset + part.length }, (source) => writer.writePart({ start: part.at, end: part.at + part.length }, source), onBytes, false, blocks),
        requests.policy.retry,
        (err, attempt, delay) => requests.policy.log.warn({ oid: ref.oid, at: part.at, attempt, delay, err: String(err) }, 'ranged download failed, retrying'),
      ),
    );
    await writer.commit();
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

/**
 * Reads `range` of `key` (null: the whole object, expected to be `range`'s length, from 0) and hands
 * the bytes to `sink`; a read that ends early is classified (the object is shorter than asked: damage;
 * the connection broke: retryable).
 */
export async function readRangeInto(requests: Requests, key: string, range: ByteRange, sink: (source: AsyncIterable<Buffer>) => Promise<void>, onBytes: (n: number) => void, whole = false, blocks?: ReadBlocks): Promise<void> {
  const want = range.end - range.start;
  // `blocks`: the sink is done with each chunk when it asks for the next (see Requests.openInBlocks).
  const stream: AsyncIterable<Buffer> & { destroy?: () => void } = (blocks && (await requests.openInBlocks(key, whole ? undefined : range, blocks))) || (await requests.open(key, whole ? undefined : range));
  let got = 0;
  const counted = (async function* () {
    for await (const c of stream) {
      const chunk = c as Buffer;
      got += chunk.length;
      if (got > want) {
        throw whole
          ? damaged(`${key} in ${requests.url} holds more than the ${want} bytes the pointer says`)
          : new GitmlError('E_STORE_IO', `the store sent more than the ${want} bytes asked for of ${key}`, { retryable: true });
      }
      onBytes(chunk.length);
      yield chunk;
    }
    // Ended early: the sink must not judge (or name) a short object; the store is asked why below.
    if (got !== want) throw SHORT;
  })();
  try {
    await sink(counted);
  } catch (e) {
    stream.destroy?.();
    if (e !== SHORT && (isGitmlError(e, 'E_OBJECT_CORRUPT') || isGitmlError(e, 'E_CACHE_IO') || isGitmlError(e, 'E_OBJECT_MISSING'))) throw e;
    if (e instanceof GitmlError && !e.retryable && got === want) throw e;
    throw await requests.shortRead(key, range, got, e);
  }
  if (got !== want) throw await requests.shortRead(key, range, got);
}

const SHORT = new Error('the read ended early');

/** The bytes of a chunked object in order, straight from the packs (fsck, bundles; hashed by the caller). */
export async function* readChunked(requests: Requests, manifest: Manifest): AsyncIterable<Buffer> {
  for (const part of planManifestReads(manifest, RANGE_SIZE)) {
    const range = { start: part.offset, end: part.offset + part.length };
    const chunks: Buffer[] = [];
    await withRetry(async () => {
      chunks.length = 0;
      await readRangeInto(requests, part.key, range, async (source) => {
        for await (const c of source) chunks.push(c);
      }, () => undefined);
    }, requests.policy.retry);
    yield* chunks;
  }
}

/** A whole stored object's bytes in order (one attempt; fsck and bundles hash what they read). */
export async function* readWhole(requests: Requests, ref: ObjectRef): AsyncIterable<Buffer> {
  for await (const c of await requests.open(objectKey(ref.oid))) yield c as Buffer;
}
