import { createHash, randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, isGitmlError } from '../errors';
import { makeDirs } from '../safe-path';
import { runInOrder } from '../util/pool';
import { decodePackIndex, decodePackTrailer, encodePackIndex, maxIndexBytes, PACK_FOOTER_BYTES, trailerLength, type PackIndex } from './format';
import { packIndexKey, packKey, parseKey, PACKS_PREFIX } from './layout';
import { damagedData as damaged, type Requests } from '../store/requests';

export interface ChunkLocation {
  pack: string;
  offset: number;
  length: number;
}

/**
 * Which chunks a store has: the union of its pack indexes. Indexes are immutable (named by their
 * pack's hash), so each is downloaded once and kept in a local directory; a push lists `packs/` once
 * and fetches only new indexes. Nothing shared is ever rewritten, which keeps the index right when two
 * clones push at once (at worst both store the same new chunk).
 *
 * An index counts only when its pack is listed beside it with at least the size the index implies:
 * a pack deleted behind gitml's back (a lifecycle rule, an operator) must not be deduplicated against,
 * or a push would publish manifests that point into nothing. Damaged indexes are skipped the same way
 * and reported, so their chunks are simply uploaded again.
 */
export class ChunkIndex {
  /**
   * Every entry in the order it was added: its hash as eight 32-bit words, then its place (pack
   * number, offset, length). ~62 bytes an entry, where a Map keyed by the hash cost ~98: the index
   * holds every chunk of the store (163,840 for a 10 GiB file; a million for a large store) in every
   * process that reads or writes packed objects.
   */
  private words = new Uint32Array(1024 * HASH_WORDS);
  private packOf = new Uint32Array(1024);
  private offsetOf = new Float64Array(1024);
  private lengthOf = new Float64Array(1024);
  private count = 0;
  /** Entries found already sorted when merged (their columns stay unused). */
  private repeated = 0;
  /**
   * Entry numbers in hash order, found by binary search: O(log n) whatever hashes a store lists (a
   * hash table keyed by hashes a bucket's writer chose could be made to collide).
   */
  private sorted = new Uint32Array(0);
  /** Entries added since they were last merged into `sorted`, by their 32 bytes as a latin1 string. */
  private readonly recent = new Map<string, number>();
  /** The hash being looked up, as words and as bytes (one buffer, reused). */
  private readonly probeWords = new Uint32Array(HASH_WORDS);
  private readonly probeBytes = Buffer.from(this.probeWords.buffer);
  private readonly packIds: string[] = [];
  private readonly packNumbers = new Map<string, number>();
  private readonly packs = new Map<string, number>();
  /** Entries each pack's index lists (gc reports what it drops). */
  private readonly entries = new Map<string, number>();
  /** Every pack the listing showed, with its size (whether or not its index is usable). */
  readonly listed = new Map<string, number>();
  /** Indexes not used, with why (pack gone or short, index damaged). */
  readonly skipped: { pack: string; why: string }[] = [];
  /** Packs whose .idx was damaged or missing and whose own index copy was used instead. */
  readonly recovered: { pack: string; why: string }[] = [];

  /** Distinct chunks indexed. */
  get size(): number {
    if (this.recent.size > 0) this.merge();
    return this.count - this.repeated;
  }

  get(hash: string): ChunkLocation | undefined {
    const i = this.find(hash);
    return i === undefined ? undefined : { pack: this.packIds[this.packOf[i]!]!, offset: this.offsetOf[i]!, length: this.lengthOf[i]! };
  }

  /** Size of a pack the index knows, or undefined. */
  packSize(pack: string): number | undefined {
    return this.packs.get(pack);
  }

  /** How many entries a known pack's index lists (0 when unknown). */
  entriesIn(pack: string): number {
    return this.entries.get(pack) ?? 0;
  }

  /**
   * Adds a pack's entries (any iterable: an object's own pack makes its ~16,000 a GiB one at a time);
   * a chunk already indexed keeps its first place.
   */
  add(idx: { pack: string; chunks: Iterable<readonly [string, number, number]> }, packSize: number): void {
    this.packs.set(idx.pack, packSize);
    let packNo = this.packNumbers.get(idx.pack);
    if (packNo === undefined) {
      packNo = this.packIds.push(idx.pack) - 1;
      this.packNumbers.set(idx.pack, packNo);
    }
    let listed = 0;
    for (const [hash, offset, length] of idx.chunks) {
      listed++;
      // A hash already sorted is dropped at the next merge (a binary search per entry here doubled
      // the time to load a large index); until then lookups find the sorted, first, place.
      if (!this.setProbe(hash)) continue;
      const key = this.probeBytes.toString('latin1');
      if (this.recent.has(key)) continue;
      const i = this.count++;
      if (i === this.packOf.length) this.grow();
      this.words.set(this.probeWords, i * HASH_WORDS);
      this.packOf[i] = packNo;
      this.offsetOf[i] = offset;
      this.lengthOf[i] = length;
      this.recent.set(key, i);
      // Within one large pack too, so the recent map (a string a chunk) stays a fraction of the index.
      if (this.recent.size >= MERGE_MIN && this.recent.size * 4 >= this.sorted.length) this.merge();
    }
    this.entries.set(idx.pack, listed);
  }

  /** The entry for a hash (64 hex digits; anything else is in no index). */
  private find(hash: string): number | undefined {
    if (!this.setProbe(hash)) return undefined;
    return this.findSorted() ?? (this.recent.size > 0 ? this.recent.get(this.probeBytes.toString('latin1')) : undefined);
  }

  /** Puts a hash into the probe; false when it is not 64 hex digits (the probe is then meaningless). */
  private setProbe(hash: string): boolean {
    return hash.length === HASH_BYTES * 2 && this.probeBytes.write(hash, 0, HASH_BYTES, 'hex') === HASH_BYTES;
  }

  /** The sorted entry for the hash in the probe. */
  private findSorted(): number | undefined {
    const probe = this.probeWords;
    const words = this.words;
    let lo = 0;
    let hi = this.sorted.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const entry = this.sorted[mid]!;
      const c = compareWords(words, entry * HASH_WORDS, probe, 0);
      if (c === 0) return entry;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  /** Moves the recent entries into hash order beside the sorted ones. */
  private merge(): void {
    const words = this.words;
    const fresh = Uint32Array.from(this.recent.values()).sort((a, b) => compareWords(words, a * HASH_WORDS, words, b * HASH_WORDS));
    const old = this.sorted;
    const out = new Uint32Array(old.length + fresh.length);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < old.length && j < fresh.length) {
      const c = compareWords(words, old[i]! * HASH_WORDS, words, fresh[j]! * HASH_WORDS);
      if (c === 0) {
        j++; // indexed before: the first place stays
        this.repeated++;
      } else out[k++] = c < 0 ? old[i++]! : fresh[j++]!;
    }
    while (i < old.length) out[k++] = old[i++]!;
    while (j < fresh.length) out[k++] = fresh[j++]!;
    this.sorted = out.subarray(0, k);
    this.recent.clear();
  }

  private grow(): void {
    const n = this.packOf.length * 2;
    const words = new Uint32Array(n * HASH_WORDS);
    words.set(this.words);
    const packOf = new Uint32Array(n);
    packOf.set(this.packOf);
    const offsetOf = new Float64Array(n);
    offsetOf.set(this.offsetOf);
    const lengthOf = new Float64Array(n);
    lengthOf.set(this.lengthOf);
    [this.words, this.packOf, this.offsetOf, this.lengthOf] = [words, packOf, offsetOf, lengthOf];
  }

  static async load(requests: Requests, localDir: string): Promise<ChunkIndex> {
    const index = new ChunkIndex();
    await makeDirs(localDir);
    const listing = await requests.list(PACKS_PREFIX);
    const packSizes = new Map<string, number>();
    const indexes: { pack: string; size: number }[] = [];
    for (const e of listing) {
      const k = parseKey(e.key);
      if (k.kind === 'pack') {
        packSizes.set(k.pack, e.size);
        index.listed.set(k.pack, e.size);
      }
      else if (k.kind === 'index') indexes.push({ pack: k.pack, size: e.size });
    }
    let fetched = 0;
    const usable = indexes.filter(({ pack, size }) => {
      const packSize = packSizes.get(pack);
      if (packSize === undefined) index.skipped.push({ pack, why: 'its pack is not in the store' });
      else if (size > maxIndexBytes(packSize)) index.skipped.push({ pack, why: `its index (${size} bytes) is larger than a pack of ${packSize} bytes can need` });
      else return true;
      return false;
    });
    // Indexes are read side by side (a clone of a store with hundreds of packs) and added in listing
    // order a group at a time: a decoded index costs ~150 bytes an entry, so holding every one until
    // the last had arrived took more memory than the whole index in a store of a million chunks.
    await runInOrder(usable, INDEX_READS_IN_FLIGHT, async ({ pack }): Promise<PackIndex | null> => {
      const packSize = packSizes.get(pack)!;
      const local = path.join(localDir, `${pack}.idx`);
      try {
        let data: Buffer | null = await fsp.readFile(local).catch((e) => (errnoCode(e) === 'ENOENT' ? null : Promise.reject(e)));
        const fresh = data === null;
        data ??= await requests.readAll(packIndexKey(pack), maxIndexBytes(packSize), `pack index ${pack.slice(0, 12)}`);
        if (data === null) return null; // deleted since the listing
        const idx = decodePackIndex(data, pack, packSize, requests.url);
        if (fresh) {
          const tmp = `${local}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
          await fsp.writeFile(tmp, data);
          await fsp.rename(tmp, local);
          fetched++;
        }
        return idx;
      } catch (e) {
        if (!isGitmlError(e, 'E_OBJECT_CORRUPT')) throw e;
        await fsp.rm(local, { force: true });
        index.skipped.push({ pack, why: e.message });
        return null;
      }
    }, ({ pack }, idx) => {
      if (idx) index.add(idx, packSizes.get(pack)!);
    });
    // A pack whose .idx is damaged or gone keeps a copy of its index (format.ts): without it the
    // packed objects in it could not be found at all. Recovered copies are kept locally like indexes.
    const orphans = [...packSizes.keys()].filter((pack) => index.packSize(pack) === undefined);
    await runInOrder(orphans, INDEX_READS_IN_FLIGHT, async (pack): Promise<PackIndex | null> => {
      const packSize = packSizes.get(pack)!;
      const local = path.join(localDir, `${pack}.trailer.idx`);
      const cached = await fsp.readFile(local).catch(() => null);
      const idx = cached ? decodePackIndex(cached, pack, packSize, 'local copy') : await readTrailer(requests, pack, packSize).catch((e) => (isGitmlError(e, 'E_OBJECT_CORRUPT') ? null : Promise.reject(e)));
      if (idx && !cached) await writeLocal(local, encodePackIndex(idx));
      return idx;
    }, (pack, idx) => {
      if (!idx) return;
      const skipped = index.skipped.findIndex((x) => x.pack === pack);
      index.recovered.push({ pack, why: skipped >= 0 ? index.skipped.splice(skipped, 1)[0]!.why : 'its index is not in the store' });
      index.add(idx, packSizes.get(pack)!);
    });
    // Indexes of packs gc removed from the store are dropped here too.
    for (const name of await fsp.readdir(localDir).catch(() => [] as string[])) {
      const pack = name.endsWith('.idx') ? name.slice(0, -4) : null;
      if (pack && !packSizes.has(pack.replace(/\.trailer$/, ''))) await fsp.rm(path.join(localDir, name), { force: true });
    }
    requests.policy.log.debug({ packs: index.packs.size, chunks: index.size, fetched, skipped: index.skipped.length }, 'chunk index loaded');
    return index;
  }
}

const HASH_BYTES = 32;
const HASH_WORDS = HASH_BYTES / 4;
/** Below this many recent entries no merge: a small index is a Map and nothing more. */
const MERGE_MIN = 4096;
/** Pack indexes read at once while the index loads. */
const INDEX_READS_IN_FLIGHT = 16;

/** Orders two hashes by their words (any fixed total order serves a binary search). Pure. */
function compareWords(x: Uint32Array, at: number, y: Uint32Array, yt: number): number {
  for (let k = 0; k < HASH_WORDS; k++) {
    const p = x[at + k]!;
    const q = y[yt + k]!;
    if (p !== q) return p < q ? -1 : 1;
  }
  return 0;
}

/** A pack's own copy of its index, or null when it has none (packs written before the copy existed). */
async function readTrailer(requests: Requests, pack: string, packSize: number): Promise<PackIndex | null> {
  if (packSize <= PACK_FOOTER_BYTES) return null;
  const footer = await readRange(requests, packKey(pack), packSize - PACK_FOOTER_BYTES, packSize);
  const length = trailerLength(footer, packSize);
  if (length === null) return null;
  const start = packSize - PACK_FOOTER_BYTES - length;
  return decodePackTrailer(await readRange(requests, packKey(pack), start, start + length), pack, start, requests.url);
}

async function readRange(requests: Requests, key: string, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  for await (const c of await requests.open(key, { start, end })) {
    parts.push(c as Buffer);
    got += (c as Buffer).length;
    if (got > end - start) break;
  }
  const data = Buffer.concat(parts);
  if (data.length !== end - start) throw damaged(`${key} in ${requests.url} is shorter than its listing says`);
  return data;
}

async function writeLocal(local: string, data: Buffer): Promise<void> {
  const tmp = `${local}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fsp.writeFile(tmp, data);
  await fsp.rename(tmp, local);
}

/** Local directory for one store's pack indexes, inside the cache. */
export function indexDirFor(cacheRoot: string, storeUrl: string): string {
  return path.join(cacheRoot, 'chunk-index', createHash('sha256').update(storeUrl).digest('hex').slice(0, 16));
}
