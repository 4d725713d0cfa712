import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ObjectCache } from '../cache';
import { cacheIoError, errnoCode, GitmlError } from '../errors';
import { shortOid } from '../pointer';
import { makeDirs } from '../safe-path';
import type { BodySource } from '../store/store';
import { Chunker, DEFAULT_CHUNK_PARAMS, type ChunkParams } from './cdc';
import type { ChunkIndex } from './chunk-index';
import { coalesce, encodeManifest, encodePackIndexStreamed, encodePackTrailer, PACK_MAX_ENTRIES, packEntriesText, type Run } from './format';
import { manifestKey, packIndexKey, packKey } from './layout';
import type { Requests } from '../store/requests';
import { PieceHasher, type FileHash } from '../util/hash-pieces';
import { readFullySync, readInBlocks, ReadBlocks } from '../util/read-blocks';

export interface ChunkedUploadOptions {
  requests: Requests;
  cache: ObjectCache;
  index: ChunkIndex;
  /** Packs are sealed and uploaded once they reach this size. */
  packTarget?: number;
  /** Packs uploading at once. */
  concurrency?: number;
  params?: ChunkParams;
  onBytes?: (n: number) => void;
  /**
   * A large object of new chunks may be its own pack (the cached file itself): for a store that takes
   * a local file without its bytes passing through this process (a directory store). Elsewhere the
   * chunks are copied into packs that upload while the object is still being cut: measured against
   * s3rver and azurite, cutting first and then sending the file was 1.2-1.6 × slower (docs/performance.md).
   */
  ownPacks?: boolean;
}

export interface ChunkedResult {
  /** Objects now stored: chunked ones (their manifests written) and packed ones. */
  oids: string[];
  /** Bytes of packs this upload actually added to the store (a pack already there costs nothing). */
  newBytes: number;
}

/**
 * A pack being filled: a temp file in the cache and its chunk list. Its id is the sha256 of its
 * index copy (layout.ts): every entry names its bytes by their sha256, with offset and length, so
 * the index determines the pack's content and the data need not be hashed a third time.
 */
export class PackBuilder {
  id: string | null = null;
  size = 0;
  readonly chunks: [string, number, number][] = [];
  /** Small appends gathered into one write (thousands of packed objects, not thousands of writes). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The write in flight: chunking goes on while the kernel copies the previous 4 MiB. */
  private writing: Promise<void> = Promise.resolve();
  /** The staging buffer `reserve` hands out views of, and how much of it is appended. */
  private filling: Buffer | null = null;
  private filled = 0;
  /** The staging buffer filled before it: free once the write after its last one has started. */
  private written: Buffer | null = null;
  private constructor(
    readonly file: string,
    private readonly handle: fsp.FileHandle,
    private readonly cacheRoot: string,
    private readonly staging: StagingBuffers,
  ) {}

  static async create(cache: ObjectCache, staging: StagingBuffers = new StagingBuffers()): Promise<PackBuilder> {
    try {
      await makeDirs(cache.tmpDir);
      const file = path.join(cache.tmpDir, `pack-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
      return new PackBuilder(file, await fsp.open(file, 'wx', 0o600), cache.root, staging);
    } catch (e) {
      throw cacheIoError(`cannot build a pack in the cache at ${cache.root}`, e);
    }
  }

  /**
   * Room for the next `size` bytes (at most STAGING_BYTES) in the pack's own write buffer: a small
   * object is read straight into it, and appending the view costs neither a buffer nor a copy (a push
   * of 20,000 small files allocated half a GiB of one-off buffers, and the collections they set off
   * were a tenth of its time). The view is valid until the next call on the builder; one not
   * appended is dropped.
   */
  async reserve(size: number): Promise<Buffer> {
    if (size > STAGING_BYTES) throw new RangeError(`cannot reserve ${size} bytes of a pack's ${STAGING_BYTES}-byte staging buffer`);
    if (!this.filling || this.filled + size > this.filling.length) {
      // What is appended of this buffer goes to the kernel now. That waits for the write before,
      // the last that could read from the buffer filled before this one: that one is free again.
      await this.startWrite();
      if (this.written) this.staging.release(this.written);
      this.written = this.filling;
      this.filling = this.staging.take();
      this.filled = 0;
    }
    return this.filling.subarray(this.filled, this.filled + size);
  }

  async append(chunkHash: string, data: Buffer): Promise<number> {
    const offset = this.size;
    // A view `reserve` gave (the next bytes of the staging buffer): it stays where it is.
    if (this.filling && data.buffer === this.filling.buffer && data.byteOffset === this.filling.byteOffset + this.filled) this.filled += data.length;
    await this.write(data);
    this.chunks.push([chunkHash, offset, data.length]);
    return offset;
  }

  /** Appends a copy of `data` (into the staging buffer): the pack keeps no reference to the caller's memory. */
  async appendCopy(chunkHash: string, data: Buffer): Promise<number> {
    if (data.length > STAGING_BYTES) return this.append(chunkHash, Buffer.from(data));
    const into = await this.reserve(data.length);
    data.copy(into);
    return this.append(chunkHash, into);
  }

  /** Appends bytes copied from another pack as one piece, with the index entries they carry (gc). */
  async appendRaw(data: Buffer, entries: [string, number, number][]): Promise<void> {
    await this.write(data);
    this.chunks.push(...entries);
  }

  private async write(data: Buffer): Promise<void> {
    this.size += data.length;
    this.pending.push(data);
    this.pendingBytes += data.length;
    // Gathered into one vectored write per 4 MiB: a write (and a thread-pool round trip) per 64 KiB
    // chunk was a third of a push's time. One write stays in flight while the next 4 MiB gather (the
    // kernel's copy into the page cache was 0.67 s of a 1 GiB push, spent waiting).
    if (this.pendingBytes >= 4 << 20) await this.startWrite();
  }

  /** Hands what is pending to the kernel once the write before it finished. */
  private async startWrite(): Promise<void> {
    await this.writing;
    this.writing = this.flush();
    this.writing.catch(() => undefined); // awaited by the next write or by seal()
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const parts = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const total = parts.reduce((n, p) => n + p.length, 0);
    try {
      // Packs are built in the cache's temp folder: a full disk here is the cache's disk.
      const written = (await this.handle.writev(parts)).bytesWritten;
      if (written < total) {
        const rest = Buffer.concat(parts).subarray(written);
        for (let at = 0; at < rest.length; ) at += (await this.handle.write(rest, at, rest.length - at)).bytesWritten;
      }
    } catch (e) {
      throw cacheIoError(`cannot build a pack in the cache at ${this.cacheRoot}`, e);
    }
  }

  /** Drops the chunk list once the pack and its index are stored (only the id is needed after that). */
  releaseChunks(): void {
    this.chunks.length = 0;
  }

  /** Whether the pack is full: by bytes, or by entries (an index must stay small). */
  full(targetBytes: number): boolean {
    return this.size >= targetBytes || this.chunks.length >= PACK_MAX_ENTRIES;
  }

  async seal(): Promise<string> {
    // The pack's own copy of its index (format.ts): not an entry, so `chunks` is unchanged.
    const trailer = encodePackTrailer(this.chunks);
    const dataBytes = this.size;
    this.size += trailer.length;
    this.pending.push(trailer);
    this.pendingBytes += trailer.length;
    await this.writing;
    await this.flush();
    this.releaseStaging();
    await this.handle.close();
    this.id = packIdOf(dataBytes, this.chunks);
    return this.id;
  }

  async dispose(): Promise<void> {
    await this.writing.catch(() => undefined);
    this.releaseStaging();
    await this.handle.close().catch(() => undefined);
    await fsp.rm(this.file, { force: true });
  }

  /** Called once no write is in flight: the next pack may use the staging buffers. */
  private releaseStaging(): void {
    for (const buffer of [this.filling, this.written]) if (buffer) this.staging.release(buffer);
    this.filling = this.written = null;
  }
}

/**
 * A pack's id: the sha256 of its data's length and its index entries (layout.ts), which name every
 * indexed byte by its sha256 and so determine the pack's content. Pure.
 */
export function packIdOf(dataBytes: number, chunks: Iterable<readonly [string, number, number]>): string {
  const hash = createHash('sha256').update(`gitml pack ${dataBytes}\n`);
  for (const text of packEntriesText(chunks)) hash.update(text);
  return hash.digest('hex');
}

/** Bytes of one staging buffer: the most PackBuilder.reserve hands out at once. */
export const STAGING_BYTES = 4 << 20;

/**
 * The staging buffers of an upload's packs, shared by the packs one after another: a buffer is
 * released only when no write still reads from it, and at most two are in use (one filling, one
 * being written), so the upload holds a few MiB whatever the number of packs.
 */
export class StagingBuffers {
  private readonly free: Buffer[] = [];

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(STAGING_BYTES);
  }

  release(buffer: Buffer): void {
    this.free.push(buffer);
  }
}

interface PendingRun {
  pack: PackBuilder | string;
  offset: number;
  length: number;
}

/** From this size an object's chunks are named and checked on another thread (a thread costs ~20 ms to start). */
const HASH_BESIDE_MIN_SIZE = 64 * 1024 * 1024;
/** Bytes of cut chunks that may wait for their names from the hashing thread. */
const CHUNKS_AHEAD = 4 * 1024 * 1024;
/**
 * Up to this size a large object is cut and named before any byte is written, so that one whose
 * chunks are nearly all new can be stored as its own pack. Its chunks are held meanwhile
 * (ObjectChunks: ~130 bytes a chunk, ~20 MiB for 10 GiB of average chunks); a larger object is cut
 * and copied into packs in one pass, with nothing held per chunk.
 */
const OWN_PACK_MAX_BYTES = 10 * 1024 * 1024 * 1024;
/** An object whose bytes the store (or this upload) already has beyond this share is not its own pack: its new chunks are copied into packs. */
const OWN_PACK_MAX_SHARED = 1 / 50;
/**
 * Distinct chunks one object's own pack may index: 16 GiB of average chunks, and an index far below
 * what a reader accepts (format.ts). An object of more (small chunks) is copied into packs.
 */
const OWN_PACK_MAX_ENTRIES = 262_144;

/**
 * One large object's chunks in order, held compactly while the object is cut and until its own pack
 * is stored: each chunk's sha256 as 32 bytes and its length, and the first place of each distinct
 * chunk (~130 bytes a chunk; a string, an array and an object per chunk cost several times that).
 */
export class ObjectChunks {
  /** More distinct chunks than `maxDistinct`: they are no longer told apart (no own pack then). */
  overflowed = false;
  private digests = Buffer.allocUnsafe(32 * 1024);
  private lengths = new Uint32Array(1024);
  private offsets: Float64Array | null = null;
  count = 0;
  /** Each distinct chunk (its 32 bytes as a latin1 string): the number of its first occurrence. */
  private readonly first = new Map<string, number>();

  constructor(private readonly maxDistinct: number) {}

  /**
   * Adds the next chunk; true when no chunk before it in this object has the same bytes (always true
   * once overflowed: the map of distinct chunks stops growing, which bounds the memory whatever the
   * chunk sizes).
   */
  push(hash: string, length: number): boolean {
    if (this.count === this.lengths.length) {
      const digests = Buffer.allocUnsafe(this.digests.length * 2);
      this.digests.copy(digests);
      this.digests = digests;
      const lengths = new Uint32Array(this.lengths.length * 2);
      lengths.set(this.lengths);
      this.lengths = lengths;
    }
    const n = this.count++;
    this.offsets = null;
    this.digests.write(hash, n * 32, 32, 'hex');
    this.lengths[n] = length;
    if (this.overflowed) return true;
    const key = this.digests.toString('latin1', n * 32, n * 32 + 32);
    if (this.first.has(key)) return false;
    if (this.first.size >= this.maxDistinct) {
      this.overflowed = true;
      this.first.clear();
      return true;
    }
    this.first.set(key, n);
    return true;
  }

  get distinct(): number {
    return this.first.size;
  }

  hashAt(n: number): string {
    return this.digests.toString('hex', n * 32, n * 32 + 32);
  }

  lengthAt(n: number): number {
    return this.lengths[n]!;
  }

  /** Where chunk `n` starts in the object. */
  offsetAt(n: number): number {
    if (!this.offsets) {
      this.offsets = new Float64Array(this.count);
      for (let i = 1; i < this.count; i++) this.offsets[i] = this.offsets[i - 1]! + this.lengths[i - 1]!;
    }
    return this.offsets[n]!;
  }

  /** The first place of a chunk in the object, by its sha256 (hex). */
  find(hash: string): { offset: number; length: number } | undefined {
    if (!/^[0-9a-f]{64}$/.test(hash)) return undefined;
    const n = this.first.get(Buffer.from(hash, 'hex').toString('latin1'));
    return n === undefined ? undefined : { offset: this.offsetAt(n), length: this.lengthAt(n) };
  }

  /** Each distinct chunk at its first place, in order: the index of the object as its own pack. */
  *entries(): Generator<[string, number, number]> {
    for (let n = 0; n < this.count; n++) {
      if (this.first.get(this.digests.toString('latin1', n * 32, n * 32 + 32)) === n) yield [this.hashAt(n), this.offsetAt(n), this.lengthAt(n)];
    }
  }
}

/**
 * Stores objects as content-defined chunks in packs (docs/chunking.md): each object is read from the
 * cache (a large one by three threads: one cutting, one naming the chunks, one checking the whole),
 * its sha256 re-checked, cut with FastCDC,
 * and only chunks the store does not have (per its
 * index, or earlier in this upload) go into new packs. Packs upload while chunking goes on; manifests
 * are written last, after every pack they name is stored, so an interrupted push leaves at worst
 * unreferenced packs, and a re-run reuses what already arrived.
 *
 * In a directory store (`ownPacks`), a large object whose chunks are nearly all new is its own pack:
 * the cached file is the pack's data, hard-linked into the store on the same file system (as
 * git-lfs's file remote does), with an index of its chunks like any pack's. Copying its chunks into
 * packs would write the same bytes in the same order a second time.
 */

export class ChunkedUploader {
  private current: PackBuilder | null = null;
  private readonly local = new Map<string, { pack: PackBuilder; offset: number; length: number }>();
  private readonly uploads: Promise<void>[] = [];
  private readonly objects: { oid: string; size: number; runs: PendingRun[]; replace: boolean }[] = [];
  private readonly packed: string[] = [];
  private readonly packTarget: number;
  private readonly concurrency: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private newBytes = 0;
  private readonly staging = new StagingBuffers();
  /** Objects being stored as their own pack: their chunks count as this upload's until the index has them. */
  private readonly ownPacks = new Map<string, ObjectChunks>();

  constructor(private readonly options: ChunkedUploadOptions) {
    this.packTarget = options.packTarget ?? 16 * 1024 * 1024;
    this.concurrency = options.concurrency ?? 4;
  }

  /** Chunks one cached object into packs. Its manifest is written by finish(). */
  async add(ref: { oid: string; size: number; path?: string }, replaceManifest = false): Promise<void> {
    if (this.options.ownPacks && ref.size >= HASH_BESIDE_MIN_SIZE && ref.size <= OWN_PACK_MAX_BYTES) return this.addLarge(ref, replaceManifest);
    const runs: PendingRun[] = [];
    const take = async (chunk: Buffer, hash: string) => {
      const known = this.knownChunk(hash);
      if (known) return addRun(runs, known.pack, known.offset, known.length);
      const pack = await this.packFor();
      // Copied: the chunk may lie in a read buffer that is reused once this returns.
      await this.appended(runs, pack, hash, await pack.appendCopy(hash, chunk), chunk.length);
    };
    let read: (FileHash & { cut: number }) | null;
    if (ref.size >= HASH_BESIDE_MIN_SIZE) {
      const handle = await this.options.cache.openHandle(ref.oid);
      try {
        read = await this.chunkHashedBeside(handle, take);
      } finally {
        await handle.close();
      }
    } else read = await this.chunkHashedHere(ref, take);
    await this.assertReadWhole(ref, read);
    this.objects.push({ oid: ref.oid, size: ref.size, runs, replace: replaceManifest });
  }

  /**
   * A large object in two steps: cut and named first, writing nothing, then either stored as its own
   * pack (its chunks nearly all new) or its new chunks read again from the same open file, each
   * checked against the name it was given, and copied into packs (a file changed in between is
   * damage; its size and times would not say so reliably: the cache's LRU touch sets them).
   */
  private async addLarge(ref: { oid: string; size: number; path?: string }, replaceManifest: boolean): Promise<void> {
    const handle = await this.options.cache.openHandle(ref.oid);
    try {
      const chunks = new ObjectChunks(OWN_PACK_MAX_ENTRIES);
      let shared = 0;
      const read = await this.chunkHashedBeside(handle, async (chunk, hash) => {
        if (!chunks.push(hash, chunk.length) || this.knownChunk(hash)) shared += chunk.length;
      });
      await this.assertReadWhole(ref, read);
      if (!chunks.overflowed && shared <= ref.size * OWN_PACK_MAX_SHARED) return await this.storeAsOwnPack(ref, chunks, replaceManifest);
      const runs: PendingRun[] = [];
      for (let n = 0, at = 0; n < chunks.count; at += chunks.lengthAt(n), n++) {
        const hash = chunks.hashAt(n);
        const length = chunks.lengthAt(n);
        const known = this.knownChunk(hash);
        if (known) addRun(runs, known.pack, known.offset, known.length);
        else {
          const pack = await this.packFor();
          const into = await pack.reserve(length);
          if (readFullySync(handle.fd, into, at) !== length || createHash('sha256').update(into).digest('hex') !== hash) throw await this.damagedCopy(ref);
          await this.appended(runs, pack, hash, await pack.append(hash, into), length);
        }
      }
      this.objects.push({ oid: ref.oid, size: ref.size, runs, replace: replaceManifest });
    } finally {
      await handle.close();
    }
  }

  /**
   * The cached file as a pack of its own: indexed by its first occurrence of each chunk, at the
   * chunk's place in the object, and read back by one run. No trailer: a lost .idx costs only the
   * dedup of these chunks, as the manifest alone says where the object is (format.ts).
   */
  private async storeAsOwnPack(ref: { oid: string; size: number }, chunks: ObjectChunks, replaceManifest: boolean): Promise<void> {
    const id = packIdOf(ref.size, chunks.entries());
    this.ownPacks.set(id, chunks);
    this.objects.push({ oid: ref.oid, size: ref.size, runs: [{ pack: id, offset: 0, length: ref.size }], replace: replaceManifest });
    this.options.requests.policy.log.debug({ oid: ref.oid, pack: id, chunks: chunks.distinct }, 'object stored as its own pack');
    await this.upload(id, fileBody(this.options.cache.locate(ref.oid), ref.size), () => chunks.entries(), async () => void this.ownPacks.delete(id));
  }

  private knownChunk(hash: string): { pack: PackBuilder | string; offset: number; length: number } | undefined {
    const known = this.options.index.get(hash) ?? this.local.get(hash);
    if (known || this.ownPacks.size === 0) return known;
    for (const [pack, chunks] of this.ownPacks) {
      const at = chunks.find(hash);
      if (at) return { pack, ...at };
    }
    return undefined;
  }

  /** A new chunk appended to `pack` at `offset`: remembered for this upload, and the pack sealed once full. */
  private async appended(runs: PendingRun[], pack: PackBuilder, hash: string, offset: number, length: number): Promise<void> {
    this.local.set(hash, { pack, offset, length });
    addRun(runs, pack, offset, length);
    if (pack.full(this.packTarget)) await this.sealCurrent();
  }

  /** The cached copy read (null: it ended early) is the object, cut to its end; else it is damaged. */
  private async assertReadWhole(ref: { oid: string; size: number; path?: string }, read: (FileHash & { cut: number }) | null): Promise<void> {
    if (!read || read.sha256 !== ref.oid || read.size !== ref.size || read.cut !== ref.size) throw await this.damagedCopy(ref);
  }

  /** Drops a cached copy that does not hash to its name; the error the push fails with. */
  private async damagedCopy(ref: { oid: string; path?: string }): Promise<GitmlError> {
    await this.options.cache.remove(ref.oid);
    return new GitmlError('E_OBJECT_CORRUPT', `the cached copy of ${ref.path ? `'${ref.path}' ` : ''}(sha256:${shortOid(ref.oid)}) is damaged; it was removed from the cache and not published`, {
      hint: 'Restore the file from a good copy (or another clone) and `git add` it again.',
    });
  }

  /** Cuts, names and hashes the object on this thread: for objects too small to pay for a thread. */
  private async chunkHashedHere(ref: { oid: string; size: number }, take: (chunk: Buffer, hash: string) => Promise<void>): Promise<FileHash & { cut: number }> {
    const chunker = new Chunker(this.options.params ?? DEFAULT_CHUNK_PARAMS);
    const whole = createHash('sha256');
    let cut = 0;
    const named = async (chunk: Buffer) => {
      cut += chunk.length;
      await take(chunk, createHash('sha256').update(chunk).digest('hex'));
    };
    for await (const block of this.options.cache.openRead(ref.oid, undefined, ref.size)) {
      const data = block as Buffer;
      whole.update(data);
      for (const chunk of chunker.push(data)) await named(chunk);
      this.options.onBytes?.(data.length);
    }
    for (const chunk of chunker.end()) await named(chunk);
    return { sha256: whole.digest('hex'), size: cut, cut };
  }

  /**
   * Cuts the object here while one thread names the chunks and another checks the whole object
   * (util/hash-pieces.ts), all through the same open file: two sha256s a byte, one on each of those
   * threads, and the cut points on this one. Chunks wait for their names in order, at most
   * CHUNKS_AHEAD bytes of them. Null when the file ended before a piece did: a cached copy that
   * shrank while it was read is as damaged as one that hashes wrong.
   */
  private async chunkHashedBeside(handle: fsp.FileHandle, take: (chunk: Buffer, hash: string) => Promise<void>): Promise<(FileHash & { cut: number }) | null> {
    const chunker = new Chunker(this.options.params ?? DEFAULT_CHUNK_PARAMS);
    const blocks = new ReadBlocks((memory) => chunker.holds(memory));
    const hasher = new PieceHasher(handle.fd, { pieces: true, whole: false });
    const wholeHasher = new PieceHasher(handle.fd, { pieces: false });
    const whole = wholeHasher.finish();
    whole.catch(() => undefined); // awaited below, or the thread is closed
    try {
      const waiting: Buffer[] = [];
      let waitingBytes = 0;
      let cut = 0;
      const enqueue = (chunks: Iterable<Buffer>) => {
        const ends: number[] = [];
        for (const chunk of chunks) {
          blocks.hold(chunk);
          waiting.push(chunk);
          waitingBytes += chunk.length;
          ends.push((cut += chunk.length));
        }
        hasher.cut(ends);
      };
      // Takes the chunks whose names have arrived, and waits for more while over `ahead` bytes wait.
      const takeNamed = async (ahead: number) => {
        while (waiting.length > 0 && (waitingBytes > ahead || hasher.ready > 0)) {
          const hash = await hasher.next();
          const chunk = waiting.shift()!;
          waitingBytes -= chunk.length;
          await take(chunk, hash);
          blocks.release(chunk);
        }
      };
      await readInBlocks(handle, blocks, async (data) => {
        enqueue(chunker.push(data));
        await takeNamed(CHUNKS_AHEAD);
        this.options.onBytes?.(data.length);
      });
      enqueue(chunker.end());
      await takeNamed(0);
      await hasher.finishPieces();
      return { ...(await whole), cut };
    } catch (e) {
      if (errnoCode(e) === 'E_SHORT_READ') return null;
      throw e;
    } finally {
      await hasher.close();
      await wholeHasher.close();
    }
  }

  /**
   * A small object as one chunk named by its oid (layout.ts: packed): read from the cache, its sha256
   * re-checked, and appended unless the store (or this upload) has it already. Stored when finish()
   * has stored its pack and index.
   */
  async addPacked(ref: { oid: string; size: number; path?: string }): Promise<void> {
    const stored = this.options.index.get(ref.oid)?.length === ref.size || this.local.has(ref.oid);
    // Read where it is going to be written (one byte more, to see a cached copy that is too long);
    // one the store has already is only checked.
    const pack = stored ? null : await this.packFor();
    const data = this.options.cache.readSmall(ref.oid, ref.size, pack ? await pack.reserve(ref.size + 1) : undefined);
    if (data.length !== ref.size || createHash('sha256').update(data).digest('hex') !== ref.oid) throw await this.damagedCopy(ref);
    this.options.onBytes?.(data.length);
    this.packed.push(ref.oid);
    if (!pack) return;
    const offset = await pack.append(ref.oid, data);
    this.local.set(ref.oid, { pack, offset, length: data.length });
    if (pack.full(this.packTarget)) await this.sealCurrent();
  }

  /** Uploads the last pack, waits for all packs, then writes the manifests. */
  async finish(): Promise<ChunkedResult> {
    await this.sealCurrent();
    const results = await Promise.allSettled(this.uploads);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const oids: string[] = [...this.packed];
    for (const o of this.objects) {
      const runs: Run[] = coalesce(o.runs.map((r) => ({ pack: typeof r.pack === 'string' ? r.pack : r.pack.id!, offset: r.offset, length: r.length })));
      const body = bufferBody(encodeManifest({ oid: o.oid, size: o.size, runs }));
      if (o.replace) await this.options.requests.put(manifestKey(o.oid), body, { overwrite: true });
      else await this.options.requests.putNamed(manifestKey(o.oid), body);
      oids.push(o.oid);
    }
    return { oids, newBytes: this.newBytes };
  }

  /** Removes temp packs (after a failure). */
  async abort(): Promise<void> {
    await this.current?.dispose();
    this.current = null;
    await Promise.allSettled(this.uploads);
  }

  private async packFor(): Promise<PackBuilder> {
    this.current ??= await PackBuilder.create(this.options.cache, this.staging);
    return this.current;
  }

  /** Seals the pack being filled and starts its upload (at most `concurrency` packs in flight). */
  private async sealCurrent(): Promise<void> {
    const pack = this.current;
    if (!pack) return;
    this.current = null;
    if (pack.size === 0) {
      await pack.dispose();
      return;
    }
    const id = await pack.seal();
    await this.upload(id, fileBody(pack.file, pack.size), () => pack.chunks, () => pack.dispose(), () => pack.releaseChunks());
  }

  /**
   * Starts storing a pack and its index (at most `concurrency` at once: chunking waits here, as each
   * pack in flight is a file). `entries` gives the pack's index (made when needed: an object's own
   * pack holds its chunks compactly meanwhile); `stored` runs once the index answers for them, `done`
   * after the upload whatever its outcome.
   */
  private async upload(id: string, body: BodySource, entries: () => Iterable<[string, number, number]>, done: () => Promise<void>, stored: () => void = () => undefined): Promise<void> {
    while (this.running >= this.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    const task = (async () => {
      try {
        if ((await this.options.requests.putNamed(packKey(id), body)) === 'created') this.newBytes += body.size;
        await this.options.requests.putNamed(packIndexKey(id), bufferBody(await encodePackIndexStreamed(id, entries())));
        this.options.index.add({ pack: id, chunks: entries() }, body.size);
        // The index answers for these chunks from now on: one record each, not three (the objects'
        // runs keep a builder until finish() reads its id, but not its chunk list).
        if (!this.ownPacks.has(id)) {
          for (const [hash] of entries()) if (this.local.get(hash)?.pack.id === id) this.local.delete(hash);
        }
        this.options.requests.policy.log.debug({ pack: id, bytes: body.size }, 'pack stored');
        stored();
      } finally {
        await done();
        this.running--;
        this.waiting.shift()?.();
      }
    })();
    task.catch(() => undefined); // observed in finish()
    this.uploads.push(task);
  }
}

/** Adds a run, merged with the one before when it continues it (a record per pack, not per chunk). */
function addRun(runs: PendingRun[], pack: PackBuilder | string, offset: number, length: number): void {
  const last = runs[runs.length - 1];
  if (last && last.pack === pack && last.offset + last.length === offset) last.length += length;
  else runs.push({ pack, offset, length });
}

/** A sealed local file as a body (a store on the same file system may link it). */
export function fileBody(file: string, size: number): BodySource {
  return {
    size,
    localFile: file,
    open: (range) => fs.createReadStream(file, { highWaterMark: 1 << 20, ...(range ? { start: range.start, end: range.end - 1 } : {}) }),
  };
}

export function bufferBody(data: Buffer): BodySource {
  return {
    size: data.length,
    open: (range) => Readable.from([range ? data.subarray(range.start, range.end) : data]),
  };
}
