import { gunzipSync } from 'node:zlib';
import type { ObjectCache } from '../cache';
import { isGitmlError } from '../errors';
import type { StoreEntry } from '../store/store';
import { runAll } from '../util/pool';
import { withRetry } from '../util/retry';
import { bufferBody, fileBody, PackBuilder } from './chunked-upload';
import { coalesce, decodePackIndex, encodeManifest, encodePackIndex, maxIndexBytes, PACK_MAX_ENTRIES, type Manifest, type Run } from './format';
import { CHUNKED_MIN_SIZE, manifestKey, objectKey, packIndexKey, packKey, type ParsedKey } from './layout';
import { acquireLock } from './locks';
import type { ObjectRef, ObjectStore } from './object-store';
import { fetchManifest, readRangeInto } from './read';

/**
 * Store garbage collection (docs/store.md): deletes every object, manifest and pack that no live
 * object needs, and repacks packs that are mostly dead. "Live" is decided by the caller (every object
 * any ref of every repository using the store reaches, src/sync/gc.ts); anything written within the
 * grace period is kept whatever it is (a push between uploading and moving its ref). gc holds the
 * store's exclusive lock (src/objects/locks.ts), so no push runs while it deletes.
 *
 * Order of writes: new packs and their indexes first, then the manifests that move to them (each
 * replaced in one write), and only then the old packs are deleted: a reader at any moment finds a
 * manifest whose packs exist.
 */
export interface GcOptions {
  /** Objects (and packs) written less than this long ago are kept. */
  graceMs: number;
  /** Packs whose live bytes are below this fraction of their size are repacked (0: never). */
  repackBelow: number;
  dryRun: boolean;
  concurrency: number;
  cache: ObjectCache;
  onProgress?: (message: string) => void;
  now?: number;
}

export interface GcReport {
  dryRun: boolean;
  storeBytesBefore: number;
  storeBytesAfter: number;
  live: { objects: number; bytes: number };
  /**
   * objects: whole objects; chunks: pack entries no live object needs (packed small objects and
   * chunks of large ones), dropped with their pack or left behind by a repack.
   */
  deleted: { objects: number; manifests: number; packs: number; chunks: number; other: number; bytes: number };
  /** Dead, but written within the grace period: kept. */
  keptYoung: number;
  repacked: { packs: number; bytesBefore: number; bytesAfter: number; newPacks: number };
  /** Live objects the store does not have (or has damaged): not gc's to fix; `gitml push --repair` is. */
  missingLive: string[];
}

type Listed = StoreEntry & { parsed: ParsedKey };

interface Interval {
  start: number;
  end: number;
  /** Where it lands when its pack is repacked. */
  to?: { pack: string; offset: number };
}

/** Sorted, merged [start, end) intervals. Pure. */
export function mergeIntervals(intervals: { start: number; end: number }[]): Interval[] {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && i.start <= last.end) last.end = Math.max(last.end, i.end);
    else out.push({ start: i.start, end: i.end });
  }
  return out;
}

export async function collectGarbage(objects: ObjectStore, live: readonly ObjectRef[], options: GcOptions): Promise<GcReport> {
  const now = options.now ?? Date.now();
  const cutoff = now - options.graceMs;
  const young = (e: StoreEntry) => (e.modified ? e.modified.getTime() : now) > cutoff;
  const say = options.onProgress ?? (() => undefined);
  const lock = options.dryRun ? null : await acquireLock(objects.requests, 'gc');
  try {
    say('listing the store');
    const listing: Listed[] = await objects.listAll();
    const report: GcReport = {
      dryRun: options.dryRun,
      storeBytesBefore: listing.reduce((n, e) => n + e.size, 0),
      storeBytesAfter: 0,
      live: { objects: 0, bytes: 0 },
      deleted: { objects: 0, manifests: 0, packs: 0, chunks: 0, other: 0, bytes: 0 },
      keptYoung: 0,
      repacked: { packs: 0, bytesBefore: 0, bytesAfter: 0, newPacks: 0 },
      missingLive: [],
    };
    const byKey = new Map(listing.map((e) => [e.key, e]));
    const liveOids = new Map(live.map((r) => [r.oid, r]));
    report.live = { objects: liveOids.size, bytes: [...liveOids.values()].reduce((n, r) => n + r.size, 0) };

    // Which manifests stay: the live ones, and young ones (a push on its way). Their packs stay too.
    const keptManifests = new Map<string, { entry: Listed; manifest: Manifest }>();
    const manifestEntries = listing.filter((e) => e.parsed.kind === 'manifest');
    say(`reading ${manifestEntries.length} manifest(s)`);
    const outcomes = await runAll(manifestEntries, options.concurrency, async (e) => {
      const oid = (e.parsed as { oid: string }).oid;
      const ref = liveOids.get(oid);
      if (!ref && !young(e)) return;
      if (!ref) report.keptYoung++;
      // A young manifest of an object no ref reaches: its size is only known from the manifest itself.
      const manifest = await fetchManifest(objects.requests, ref ?? { oid, size: await manifestSize(objects, e) }).catch((err) => {
        if (isGitmlError(err, 'E_OBJECT_CORRUPT')) return null;
        throw err;
      });
      if (manifest) keptManifests.set(oid, { entry: e, manifest });
    });
    for (const o of outcomes) if (!o.ok) throw o.error;

    // Live bytes of each pack: the union of what kept manifests read from it, and live packed objects.
    const reads = new Map<string, { start: number; end: number }[]>();
    const index = await objects.chunkIndex();
    for (const ref of liveOids.values()) {
      if (keptManifests.has(ref.oid)) continue;
      const packed = ref.size < CHUNKED_MIN_SIZE ? index.get(ref.oid) : undefined;
      if (packed && packed.length === ref.size) {
        reads.set(packed.pack, [...(reads.get(packed.pack) ?? []), { start: packed.offset, end: packed.offset + packed.length }]);
        continue;
      }
      const whole = byKey.get(objectKey(ref.oid));
      if (!whole || whole.size !== ref.size) report.missingLive.push(ref.oid);
    }

    for (const { manifest } of keptManifests.values()) {
      for (const r of manifest.runs) {
        const list = reads.get(r.pack) ?? [];
        list.push({ start: r.offset, end: r.offset + r.length });
        reads.set(r.pack, list);
      }
    }
    const intervals = new Map<string, Interval[]>();
    for (const [pack, list] of reads) intervals.set(pack, mergeIntervals(list));

    const dead: Listed[] = [];
    for (const e of listing) {
      const k = e.parsed;
      let isLive: boolean;
      switch (k.kind) {
        case 'object':
          isLive = liveOids.get(k.oid)?.size === e.size;
          break;
        case 'manifest':
          isLive = keptManifests.has(k.oid);
          break;
        case 'pack':
        case 'index':
          isLive = intervals.has(k.pack);
          break;
        default:
          // Locks, repository records, temp files of other tools: not gc's.
          isLive = true;
      }
      if (isLive) continue;
      if (young(e)) {
        report.keptYoung++;
        continue;
      }
      dead.push(e);
    }

    // Repack packs that are mostly dead (and old enough that no push can be writing beside them).
    const toRepack = [...intervals.entries()].filter(([pack, iv]) => {
      const entry = byKey.get(packKey(pack));
      if (!entry || young(entry) || entry.size === 0) return false;
      const liveBytes = iv.reduce((n, i) => n + i.end - i.start, 0);
      return liveBytes / entry.size < options.repackBelow;
    });
    if (toRepack.length > 0) {
      say(`repacking ${toRepack.length} pack(s)`);
      report.deleted.chunks -= await repack(objects, toRepack, keptManifests, byKey, options, report);
      for (const [pack] of toRepack) {
        for (const key of [packKey(pack), packIndexKey(pack)]) {
          const e = byKey.get(key);
          if (e) dead.push(e);
        }
      }
    }

    for (const e of dead) {
      report.deleted.bytes += e.size;
      const kind = e.parsed.kind;
      if (kind === 'object') report.deleted.objects++;
      else if (kind === 'manifest') report.deleted.manifests++;
      else if (kind === 'pack') {
        report.deleted.packs++;
        report.deleted.chunks += index.entriesIn((e.parsed as { pack: string }).pack);
      }
      else if (kind !== 'index') report.deleted.other++;
    }
    if (!options.dryRun && dead.length > 0) {
      say(`deleting ${dead.length} key(s)`);
      await objects.remove(
        dead.map((e) => e.key),
        options.concurrency,
      );
    }
    report.storeBytesAfter = report.storeBytesBefore - report.deleted.bytes + report.repacked.bytesAfter;
    return report;
  } finally {
    await lock?.release();
  }
}

/** The size a manifest says its object has (for a young manifest of an object no ref reaches). */
async function manifestSize(objects: ObjectStore, e: Listed): Promise<number> {
  const data = await objects.requests.readAll(e.key, 64 * 1024 * 1024, 'a manifest');
  if (!data) return 0;
  try {
    const raw = JSON.parse(gunzipSync(data, { maxOutputLength: 64 * 1024 * 1024 }).toString('utf8')) as { size?: unknown };
    return Number.isSafeInteger(raw.size) ? (raw.size as number) : 0;
  } catch {
    return 0;
  }
}

/**
 * Copies the live intervals of `packs` into new packs (with index entries for the chunks they keep),
 * stores those, then points every kept manifest that read the old packs at the new ones.
 */
async function repack(
  objects: ObjectStore,
  packs: [string, Interval[]][],
  keptManifests: Map<string, { entry: Listed; manifest: Manifest }>,
  byKey: Map<string, Listed>,
  options: GcOptions,
  report: GcReport,
): Promise<number> {
  const requests = objects.requests;
  const TARGET = 64 * 1024 * 1024;
  let keptEntries = 0;
  const built: { builder: PackBuilder; moved: Interval[] }[] = [];
  try {
    for (const [pack, intervals] of packs) {
      const packEntry = byKey.get(packKey(pack))!;
      report.repacked.packs++;
      report.repacked.bytesBefore += packEntry.size;
      report.repacked.bytesAfter += intervals.reduce((n, i) => n + i.end - i.start, 0);
      const oldChunks = await oldIndexChunks(objects, pack, packEntry.size, byKey);
      if (options.dryRun) {
        keptEntries += oldChunks.filter(([, off, len]) => intervals.some((iv) => off >= iv.start && off + len <= iv.end)).length;
        continue;
      }
      for (const iv of intervals) {
        const inside = oldChunks.filter(([, off, len]) => off >= iv.start && off + len <= iv.end);
        let current = built[built.length - 1];
        if (!current || current.builder.size + (iv.end - iv.start) > TARGET || current.builder.chunks.length + inside.length > PACK_MAX_ENTRIES) {
          current = { builder: await PackBuilder.create(options.cache), moved: [] };
          built.push(current);
        }
        const offset = current.builder.size;
        const bytes = await readInterval(objects, pack, iv);
        const kept = inside.map(([h, off, len]): [string, number, number] => [h, offset + off - iv.start, len]);
        keptEntries += kept.length;
        await current.builder.appendRaw(bytes, kept);
        iv.to = { pack: '', offset };
        current.moved.push(iv);
      }
    }
    if (options.dryRun) return keptEntries;
    for (const b of built) {
      const id = await b.builder.seal();
      for (const iv of b.moved) iv.to!.pack = id;
      const file = b.builder.file;
      await requests.putNamed(packKey(id), fileBody(file, b.builder.size));
      await requests.putNamed(packIndexKey(id), bufferBody(encodePackIndex({ pack: id, chunks: b.builder.chunks })));
      report.repacked.newPacks++;
    }
    const moved = new Map(packs);
    for (const { manifest } of keptManifests.values()) {
      if (!manifest.runs.some((r) => moved.has(r.pack))) continue;
      const runs: Run[] = manifest.runs.map((r) => {
        const iv = moved.get(r.pack)?.find((i) => r.offset >= i.start && r.offset + r.length <= i.end);
        return iv?.to ? { pack: iv.to.pack, offset: iv.to.offset + r.offset - iv.start, length: r.length } : r;
      });
      await requests.put(manifestKey(manifest.oid), bufferBody(encodeManifest({ oid: manifest.oid, size: manifest.size, runs: coalesce(runs) })), { overwrite: true });
    }
    return keptEntries;
  } finally {
    for (const b of built) await b.builder.dispose();
  }
}

/** The chunk entries of a pack's index, or none when it is missing or damaged (only dedup loses). */
async function oldIndexChunks(objects: ObjectStore, pack: string, packSize: number, byKey: Map<string, Listed>): Promise<[string, number, number][]> {
  if (!byKey.has(packIndexKey(pack))) return [];
  const data = await objects.requests.readAll(packIndexKey(pack), maxIndexBytes(packSize), 'a pack index').catch(() => null);
  if (!data) return [];
  try {
    return decodePackIndex(data, pack, packSize, objects.url).chunks;
  } catch {
    return [];
  }
}

/** One live interval of a pack, read into memory (at most the pack's size, a few tens of MiB). */
async function readInterval(objects: ObjectStore, pack: string, iv: Interval): Promise<Buffer> {
  const parts: Buffer[] = [];
  await withRetry(async () => {
    parts.length = 0;
    await readRangeInto(objects.requests, packKey(pack), { start: iv.start, end: iv.end }, async (source) => {
      for await (const c of source) parts.push(c);
    }, () => undefined);
  }, objects.requests.policy.retry);
  return Buffer.concat(parts);
}
