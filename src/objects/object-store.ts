import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { Logger } from '../log';
import type { ObjectCache } from '../cache';
import { GitmlError, isGitmlError } from '../errors';
import { shortOid } from '../pointer';
import { DirectoryStore } from '../store/directory';
import type { BodySource, Store, StoreEntry } from '../store/store';
import { runAll } from '../util/pool';
import { ReadBlocks } from '../util/read-blocks';
import { withRetry, type RetryPolicy } from '../util/retry';
import { ChunkIndex, indexDirFor } from './chunk-index';
import { acquireLock, recordRepository, type HeldLock } from './locks';
import { ChunkedUploader, type ChunkedResult } from './chunked-upload';
import type { Manifest } from './format';
import { CHUNKED_MIN_SIZE, manifestKey, OBJECTS_PREFIX, objectKey, packKey, parseKey, representationFor, type ParsedKey } from './layout';
import {
  assertRoomFor,
  checkPacks,
  describe,
  downloadPlanned,
  fetchManifest,
  planManifestReads,
  planWholeReads,
  RANGE_SIZE,
  RANGED_DOWNLOAD_THRESHOLD,
  readChunked,
  readRangeInto,
  readWhole,
  type ObjectRef,
} from './read';
import { damagedData as damaged, Requests } from '../store/requests';

export type { ObjectRef };

export interface ObjectStoreOptions {
  retry: RetryPolicy;
  /** Longest wait for an answer or for the next bytes of a body (src/objects/requests.ts). */
  timeoutMs: number;
  log: Logger;
  /** Store objects of CHUNKED_MIN_SIZE and more as deduplicated chunks (docs/chunking.md). */
  chunking: boolean;
  /** The cache's root: pack indexes already seen are kept there. */
  cacheRoot: string;
  /** Ranged reads in flight for one large object (gitml.concurrency); read.ts's default when not given. */
  rangesInFlight?: number;
}

export interface DownloadOptions {
  onBytes?: (n: number) => void;
  /** A file to create with the object's bytes in the same pass (ObjectStore.download). */
  copyTo?: string;
}

/**
 * - whole:   objects/<oid> with the pointer's size
 * - chunked: a manifest (its packs are checked when it is read)
 * - packed:  an index entry named by the oid, of the pointer's size, in a pack that is there
 * - damaged: something under objects/<oid> of another size, and no manifest
 * - absent:  nothing at all
 */
export type Presence = 'whole' | 'chunked' | 'packed' | 'damaged' | 'absent';

/** Whether the store has the object (a push need not upload it). Pure. */
export function isStored(p: Presence | undefined): boolean {
  return p === 'whole' || p === 'chunked' || p === 'packed';
}

/** Packed objects are read in ranges of at most this many bytes, each covering many objects. */
const PACKED_RANGE = 4 * 1024 * 1024;
/** Bytes of other objects a packed range may read through rather than start a new request. */
const PACKED_GAP = 256 * 1024;

/**
 * The one owner of "how is this object stored" (docs/architecture.md): key names, whole versus
 * chunked, pack indexes, read plans, retries and deadlines. Everything that asks a store about an
 * object by its oid (transfers, fsck, prune, repair, gc, bundles) asks here.
 */
export class ObjectStore {
  readonly url: string;
  readonly requests: Requests;
  private index: Promise<ChunkIndex> | null = null;
  private wholeObjects: Promise<boolean> | null = null;
  /**
   * Read buffers of the pack ranges small objects are read from (a store that reads into given memory,
   * Store.getInBlocks), shared by the reads in flight: each copies a chunk out before it asks for the
   * next, so a block is free again at once; two per read in flight at most, kept for the next reads.
   */
  private readonly packReadBlocks = new ReadBlocks();

  constructor(
    readonly store: Store,
    readonly options: ObjectStoreOptions,
  ) {
    this.url = store.url;
    this.requests = new Requests(store, { retry: options.retry, timeoutMs: options.timeoutMs, log: options.log });
  }

  get log(): Logger {
    return this.options.log;
  }

  /**
   * Where each object stands: existence checks, `concurrency` at once, each retried on its own. A
   * chunked object counts as stored only when its manifest reads and every pack it needs is in the
   * store with the size it needs (a pack deleted behind gitml's back makes it 'damaged', so a push
   * stores it again instead of publishing a pointer into nothing).
   */
  async presence(refs: readonly ObjectRef[], concurrency: number): Promise<Map<string, Presence>> {
    const out = new Map<string, Presence>();
    // Small objects: the pack indexes answer for packed ones without a request each; the rest are
    // asked one by one only when the store keeps whole objects at all (one listing page says).
    const small = refs.filter((r) => r.size < CHUNKED_MIN_SIZE);
    const toAsk: ObjectRef[] = refs.filter((r) => r.size >= CHUNKED_MIN_SIZE);
    if (small.length > 0) {
      const index = await this.chunkIndex();
      const misses: ObjectRef[] = [];
      for (const r of small) {
        if (index.get(r.oid)?.length === r.size) out.set(r.oid, 'packed');
        else misses.push(r);
      }
      if (misses.length > 0 && (await this.keepsWholeObjects())) toAsk.push(...misses);
      else for (const r of misses) out.set(r.oid, 'absent');
    }
    const outcomes = await runAll(toAsk, concurrency, async (ref) => {
      // Large objects are usually chunked: look for the manifest first, saving a request.
      if (ref.size >= CHUNKED_MIN_SIZE && (await this.requests.stat(manifestKey(ref.oid)))) return out.set(ref.oid, await this.chunkedState(ref));
      const whole = await this.requests.stat(objectKey(ref.oid));
      out.set(ref.oid, whole === null ? 'absent' : whole.size === ref.size ? 'whole' : 'damaged');
    });
    const failed = outcomes.find((o) => !o.ok);
    if (failed && !failed.ok) throw failed.error;
    return out;
  }

  /** Whether anything is stored whole (objects/): stores written with packing hold nothing there. */
  private keepsWholeObjects(): Promise<boolean> {
    this.wholeObjects ??= this.requests.any(OBJECTS_PREFIX);
    this.wholeObjects.catch(() => (this.wholeObjects = null));
    return this.wholeObjects;
  }

  /** 'chunked' when the manifest and its packs are whole, else 'damaged'. */
  private async chunkedState(ref: ObjectRef): Promise<Presence> {
    try {
      const manifest = await fetchManifest(this.requests, ref);
      if (!manifest) return 'absent';
      const index = await this.chunkIndex();
      await checkPacks(this.requests, manifest, (p) => index.listed.get(p));
      return 'chunked';
    } catch (e) {
      if (!isGitmlError(e, 'E_OBJECT_CORRUPT')) throw e;
      this.log.warn({ oid: ref.oid, err: e.message }, 'stored chunked object is damaged');
      return 'damaged';
    }
  }

  /** The store's chunk index, loaded once per process (pack indexes whose packs are present). */
  chunkIndex(): Promise<ChunkIndex> {
    this.index ??= ChunkIndex.load(this.requests, indexDirFor(this.options.cacheRoot, this.url));
    this.index.catch(() => (this.index = null));
    return this.index;
  }

  /** An upload session: objects are added one by one; finish() makes them visible. */
  uploader(cache: ObjectCache, onBytes: (n: number) => void = () => undefined): ObjectUploader {
    return new ObjectUploader(this, cache, onBytes);
  }

  /**
   * Brings one object into the cache, verified against its pointer before it is named: chunked ones
   * from their packs (manifest and packs checked first), whole ones in one stream or, when large, as
   * parallel ranges. A damaged store copy is E_OBJECT_CORRUPT naming the store and the key.
   * `copyTo`: a file to create with the same bytes in the same pass (direct checkout); made only when
   * the object is read in ranges (from RANGED_DOWNLOAD_THRESHOLD, or chunked), and removed again when
   * the object does not match, so a caller checks whether it is there.
   */
  async download(ref: ObjectRef, cache: ObjectCache, options: DownloadOptions = {}): Promise<void> {
    const onBytes = options.onBytes ?? (() => undefined);
    const copyTo = options.copyTo;
    try {
      if (ref.size < CHUNKED_MIN_SIZE && (await this.chunkIndex()).get(ref.oid)?.length === ref.size) {
        const [outcome] = await this.downloadPacked([ref], cache, onBytes, 1);
        if (outcome!.ok) return;
        // A damaged packed copy: a whole copy (a repair) may stand beside it.
        if (!isGitmlError(outcome!.error, 'E_OBJECT_CORRUPT') || !(await this.requests.stat(objectKey(ref.oid)))) throw outcome!.error;
      }
      // Large objects may be stored as chunks, whatever this clone's own chunking setting says. The
      // manifest and its packs are checked before anything is written (or any room asked for).
      const manifest = ref.size >= CHUNKED_MIN_SIZE ? await fetchManifest(this.requests, ref) : null;
      if (manifest) {
        try {
          return await this.downloadChunked(ref, manifest, cache, onBytes, copyTo);
        } catch (e) {
          // gc may have repacked the object while it was read: its new manifest names new packs.
          const fresh = isGitmlError(e, 'E_OBJECT_CORRUPT') ? await fetchManifest(this.requests, ref).catch(() => null) : null;
          if (!fresh || JSON.stringify(fresh.runs) === JSON.stringify(manifest.runs)) throw e;
          return await this.downloadChunked(ref, fresh, cache, onBytes, copyTo);
        }
      }
      if (ref.size >= RANGED_DOWNLOAD_THRESHOLD) {
        const st = await this.requests.stat(objectKey(ref.oid));
        if (!st) throw new GitmlError('E_OBJECT_MISSING', `${objectKey(ref.oid)} is not in the store ${this.url}`);
        if (st.size !== ref.size) throw new GitmlError('E_OBJECT_CORRUPT', `${objectKey(ref.oid)} in ${this.url} holds ${st.size} bytes`);
        if (await this.adoptLocal(ref, objectKey(ref.oid), cache, copyTo)) return onBytes(ref.size);
        await assertRoomFor(cache, ref);
        return await downloadPlanned(this.requests, cache, ref, planWholeReads(ref, RANGE_SIZE), onBytes, this.rangesInFlight, copyTo);
      }
      const key = objectKey(ref.oid);
      await withRetry(
        () => readRangeInto(this.requests, key, { start: 0, end: ref.size }, async (source) => void (await cache.writeStream(source, ref)), onBytes, true),
        this.options.retry,
        (err, attempt, delay) => this.log.warn({ oid: ref.oid, attempt, delay, err: String(err) }, 'download failed, retrying'),
      );
    } catch (e) {
      throw this.explainDownload(ref, e);
    }
  }

  /**
   * Packed objects into the cache, many per request: the objects of each pack are read in ranges of
   * up to PACKED_RANGE bytes (reading through gaps of up to PACKED_GAP rather than starting another
   * request), `concurrency` ranges at once; each object is cut out, checked against its oid and
   * size, and stored. One outcome per ref, in order; refs the indexes do not place fail with
   * E_OBJECT_MISSING (the caller tries them one by one).
   */
  async downloadPacked(refs: readonly ObjectRef[], cache: ObjectCache, onBytes: (n: number) => void, concurrency: number, onObject: (ref: ObjectRef) => void = () => undefined): Promise<({ ref: ObjectRef; ok: true } | { ref: ObjectRef; ok: false; error: unknown })[]> {
    const index = await this.chunkIndex();
    const results = new Map<string, unknown>();
    const byPack = new Map<string, { ref: ObjectRef; offset: number }[]>();
    for (const ref of refs) {
      const loc = index.get(ref.oid);
      if (!loc || loc.length !== ref.size || ref.size >= CHUNKED_MIN_SIZE) {
        results.set(ref.oid, new GitmlError('E_OBJECT_MISSING', `${describe(ref)} is not in a pack of ${this.url}`));
        continue;
      }
      const list = byPack.get(loc.pack) ?? [];
      list.push({ ref, offset: loc.offset });
      byPack.set(loc.pack, list);
    }
    const ranges = [...byPack].flatMap(([pack, items]) => packedRanges(pack, items));
    // Memory stays flat whatever the number of ranges: each read lands in one of the cache writer's
    // few buffers, and waits for one to be free before it starts.
    await runAll(ranges, concurrency, (range) => this.storePackedRange(range, cache, results, onBytes, onObject));
    return refs.map((ref) => {
      const e = results.get(ref.oid);
      return e === null ? { ref, ok: true as const } : { ref, ok: false as const, error: e === undefined ? new GitmlError('E_INTERNAL', `${describe(ref)} was not read`) : this.explainDownload(ref, e) };
    });
  }

  /** One ranged read of a pack, its objects checked and stored in the cache; each outcome in `results`. */
  private async storePackedRange(range: PackedRange, cache: ObjectCache, results: Map<string, unknown>, onBytes: (n: number) => void, onObject: (ref: ObjectRef) => void): Promise<void> {
    // Read into the cache's writer buffer, then cut out, checked and stored there, one message for the whole read.
    let stored: Awaited<ReturnType<ObjectCache['putExpected']>>;
    try {
      const items = range.items.map(({ ref, offset }) => ({ oid: ref.oid, offset: offset - range.start, size: ref.size }));
      stored = await cache.putExpected(range.end - range.start, (into) => this.readPackRange(range.pack, range.start, range.end, into), items);
    } catch (e) {
      for (const item of range.items) results.set(item.ref.oid, e);
      return;
    }
    range.items.forEach(({ ref }, n) => {
      const outcome = stored[n];
      if (outcome === null) {
        results.set(ref.oid, null);
        onBytes(ref.size);
        onObject(ref);
      } else if (outcome && 'mismatch' in outcome) {
        results.set(ref.oid, damaged(`${packKey(range.pack)} in ${this.url} holds other bytes than ${describe(ref)} where its index says (they hash to sha256:${shortOid(outcome.mismatch)})`));
      } else {
        results.set(ref.oid, outcome);
      }
    });
  }

  /** `[start, end)` of a pack into `into`, with retries (a short pack is damage, not a retry). */
  private async readPackRange(pack: string, start: number, end: number, into: Uint8Array): Promise<void> {
    await withRetry(
      async () => {
        let at = 0;
        // readRangeInto refuses a store that sends more than asked: `into` cannot overflow.
        await readRangeInto(this.requests, packKey(pack), { start, end }, async (source) => {
          for await (const c of source) {
            into.set(c, at);
            at += c.length;
          }
        }, () => undefined, false, this.packReadBlocks);
      },
      this.options.retry,
      (err, attempt, delay) => this.log.warn({ pack, start, attempt, delay, err: String(err) }, 'pack read failed, retrying'),
    );
  }

  private async downloadChunked(ref: ObjectRef, manifest: Manifest, cache: ObjectCache, onBytes: (n: number) => void, copyTo: string | undefined): Promise<void> {
    const index = this.index ? await this.index.catch(() => null) : null;
    await checkPacks(this.requests, manifest, (p) => index?.packSize(p));
    // An object that is its own pack (chunked-upload.ts) in a local directory: the file itself.
    const only = manifest.runs.length === 1 ? manifest.runs[0]! : null;
    if (only?.offset === 0 && (await this.adoptLocal(ref, packKey(only.pack), cache, copyTo))) return onBytes(ref.size);
    await assertRoomFor(cache, ref);
    await downloadPlanned(this.requests, cache, ref, planManifestReads(manifest, RANGE_SIZE), onBytes, this.rangesInFlight, copyTo);
  }

  /**
   * The store's own file for `key` linked into the cache (verified; a directory store on the cache's
   * file system, the file read-only and this user's), instead of a copy of its bytes: false when it
   * cannot be, and the caller reads it.
   */
  private async adoptLocal(ref: ObjectRef, key: string, cache: ObjectCache, copyTo: string | undefined): Promise<boolean> {
    const file = this.store.localFile?.(key);
    if (!file) return false;
    try {
      return await cache.adoptLinked(ref, file, copyTo);
    } catch (e) {
      if (isGitmlError(e, 'E_OBJECT_CORRUPT')) throw damaged(`${key} in ${this.url} does not hold ${describe(ref)}: ${(e as Error).message}`);
      throw e;
    }
  }

  /** Whether the store keeps its keys as local files (a directory store), which a push links and a clone can take. */
  get takesLocalFiles(): boolean {
    return this.store.localFile !== undefined;
  }

  /** Ranged reads in flight for one large object: one for a store read fastest in order. */
  private get rangesInFlight(): number | undefined {
    return this.store.readsInOrder ? 1 : this.options.rangesInFlight;
  }

  /** The stored bytes in order, whole or chunked (fsck, bundles). Not verified here: hash what you read. */
  async *read(ref: ObjectRef): AsyncIterable<Buffer> {
    const loc = ref.size < CHUNKED_MIN_SIZE ? (await this.chunkIndex()).get(ref.oid) : undefined;
    if (loc && loc.length === ref.size) {
      const data = Buffer.allocUnsafe(loc.length);
      await this.readPackRange(loc.pack, loc.offset, loc.offset + loc.length, data);
      // A repair stores a good whole copy beside a damaged packed one: readers take the good one.
      if (createHash('sha256').update(data).digest('hex') === ref.oid || !(await this.requests.stat(objectKey(ref.oid)))) {
        yield data;
        return;
      }
    }
    const manifest = ref.size >= CHUNKED_MIN_SIZE ? await fetchManifest(this.requests, ref) : null;
    if (manifest) {
      await checkPacks(this.requests, manifest);
      yield* readChunked(this.requests, manifest);
    } else yield* readWhole(this.requests, ref);
  }

  /** Reads an object back and hashes it: intact, missing, or damaged (with what was found). */
  async verify(ref: ObjectRef): Promise<{ state: 'ok' | 'missing' | 'damaged'; detail: string }> {
    const h = createHash('sha256');
    let size = 0;
    try {
      for await (const c of this.read(ref)) {
        h.update(c);
        size += c.length;
        if (size > ref.size) break;
      }
    } catch (e) {
      if (isGitmlError(e, 'E_OBJECT_MISSING')) return { state: 'missing', detail: 'not in the store' };
      if (isGitmlError(e, 'E_OBJECT_CORRUPT')) return { state: 'damaged', detail: e.message };
      throw e;
    }
    const digest = h.digest('hex');
    if (size === ref.size && digest === ref.oid) return { state: 'ok', detail: '' };
    return { state: 'damaged', detail: `${size === ref.size ? '' : 'at least '}${size} bytes hashing to ${digest}` };
  }

  /**
   * Repair: stores the cache's copy as a whole object over whatever is there (verified on the way
   * out), and removes the manifest so readers take the good copy.
   */
  async replace(ref: ObjectRef, cache: ObjectCache): Promise<void> {
    await uploadWhole(this, ref, cache, 'damaged', () => undefined);
    await this.requests.delete(manifestKey(ref.oid));
  }

  /**
   * Before a push uploads: the shared lock gc respects (held until the caller's refs have moved) and
   * the record that this repository uses the store (gc consults every recorded repository).
   */
  async beginPush(repoUrl: string | undefined): Promise<HeldLock> {
    const lock = await acquireLock(this.requests, 'push', repoUrl);
    try {
      if (repoUrl) await recordRepository(this.requests, repoUrl);
    } catch (e) {
      await lock.release();
      throw e;
    }
    return lock;
  }

  /** Every key in the store with what it is (gc, fsck). */
  async listAll(): Promise<(StoreEntry & { parsed: ParsedKey })[]> {
    const entries = await this.requests.list('');
    return entries.map((e) => ({ ...e, parsed: parseKey(e.key) }));
  }

  /** Deletes keys (gc), `concurrency` at once. */
  async remove(keys: readonly string[], concurrency: number): Promise<void> {
    const outcomes = await runAll(keys, concurrency, (key) => this.requests.delete(key));
    const failed = outcomes.find((o) => !o.ok);
    if (failed && !failed.ok) throw failed.error;
  }

  /** Temp files killed writers left in a directory store (other stores keep none). */
  async staleTemp(olderThanMs: number, dryRun: boolean): Promise<{ files: number; bytes: number }> {
    return this.store instanceof DirectoryStore ? this.store.staleTemp(olderThanMs, dryRun) : { files: 0, bytes: 0 };
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private explainDownload(ref: ObjectRef, e: unknown): unknown {
    if (isGitmlError(e, 'E_OBJECT_CORRUPT')) {
      return new GitmlError('E_OBJECT_CORRUPT', `the store ${this.url} holds a damaged copy of ${describe(ref)}: ${e.message}`, {
        hint: 'Nothing was written. Run `gitml fsck --store` to list damaged objects, then `gitml push --repair` from a clone that has the file.',
        cause: e,
      });
    }
    return e;
  }
}

/**
 * One upload session. Each object added goes the way the layout says: large ones (with chunking on)
 * are cut into chunks that join packs, small ones are stored whole at once. finish() stores the last
 * packs and then the manifests, so a chunked object becomes visible only when all its bytes are in.
 */
export class ObjectUploader {
  private chunked: ChunkedUploader | null = null;
  private chunkedCount = 0;
  newBytes = 0;

  constructor(
    private readonly objects: ObjectStore,
    private readonly cache: ObjectCache,
    private readonly onBytes: (n: number) => void,
  ) {}

  /** Whether `add` defers this object's visibility to finish() (chunked, packed) or stores it at once. */
  deferred(ref: ObjectRef): boolean {
    return representationFor(ref.size, this.objects.options.chunking) !== 'whole';
  }

  /** Stores (or, for chunked objects, prepares) one object; `presence` is what the store has now. */
  async add(ref: ObjectRef, presence: Presence): Promise<void> {
    if (!this.deferred(ref)) {
      await uploadWhole(this.objects, ref, this.cache, presence, this.onBytes);
      this.newBytes += ref.size;
      return;
    }
    this.chunked ??= new ChunkedUploader({
      requests: this.objects.requests,
      cache: this.cache,
      index: await this.objects.chunkIndex(),
      concurrency: 4,
      onBytes: this.onBytes,
      ownPacks: this.objects.takesLocalFiles,
    });
    // A damaged chunked copy gets a new manifest over the old one.
    if (representationFor(ref.size, true) === 'packed') await this.chunked.addPacked(ref);
    else await this.chunked.add(ref, presence === 'damaged');
    this.chunkedCount++;
  }

  /** Damaged pack indexes: not used (chunks stored again), or replaced by the pack's own copy. */
  async indexProblems(): Promise<{ pack: string; why: string; recovered: boolean }[]> {
    if (!this.chunked) return [];
    const index = await this.objects.chunkIndex();
    return [...index.skipped.map((s) => ({ ...s, recovered: false })), ...index.recovered.map((s) => ({ ...s, recovered: true }))];
  }

  async finish(): Promise<ChunkedResult | null> {
    if (!this.chunked || this.chunkedCount === 0) return null;
    const result = await this.chunked.finish();
    this.newBytes += result.newBytes;
    return result;
  }

  async abort(): Promise<void> {
    await this.chunked?.abort();
  }
}

/**
 * Uploads one cached object whole. The bytes are hashed on their way out: if the cached copy turns
 * out not to match its name (a damaged disk), the stored copy is removed again and nothing bad is
 * published. An absent key skips the backend's own existence check; a damaged copy is replaced.
 */
async function uploadWhole(objects: ObjectStore, ref: ObjectRef, cache: ObjectCache, presence: Presence, onBytes: (n: number) => void): Promise<void> {
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
  if (presence === 'damaged') objects.log.warn({ oid: ref.oid, store: objects.url }, 'replacing a stored copy of the wrong size');
  const result = presence === 'damaged' ? await objects.requests.put(key, body, { overwrite: true }) : await objects.requests.putNamed(key, body, { checked: presence === 'absent' });
  const read = lastFullRead as ReturnType<typeof createHash> | null;
  if (result === 'created' && read && lastFullBytes === ref.size) {
    const digest = read.digest('hex');
    if (digest !== ref.oid) {
      await objects.requests.delete(key);
      await cache.remove(ref.oid);
      throw new GitmlError('E_OBJECT_CORRUPT', `the cached copy of ${describe(ref)} is damaged (its bytes hash to sha256:${shortOid(digest)}); it was removed from the cache and not published`, {
        hint: 'Restore the file from a good copy (or another clone) and `git add` it again.',
      });
    }
  }
}

/**
 * The reads that fetch `items` (objects at offsets of one pack): in offset order, a range grows while
 * the next object starts within PACKED_GAP of its end and the range stays within PACKED_RANGE. Pure.
 */
export interface PackedRange {
  pack: string;
  start: number;
  end: number;
  items: { ref: ObjectRef; offset: number }[];
}

export function packedRanges(pack: string, items: readonly { ref: ObjectRef; offset: number }[]): PackedRange[] {
  const sorted = [...items].sort((a, b) => a.offset - b.offset);
  const out: PackedRange[] = [];
  for (const item of sorted) {
    const end = item.offset + item.ref.size;
    const last = out[out.length - 1];
    if (last && item.offset - last.end <= PACKED_GAP && end - last.start <= PACKED_RANGE) {
      last.end = Math.max(last.end, end);
      last.items.push(item);
    } else out.push({ pack, start: item.offset, end, items: [item] });
  }
  return out;
}
