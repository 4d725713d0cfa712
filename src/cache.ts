import { createHash, randomBytes, type Hash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { cacheIoError, errnoCode, GitmlError } from './errors';
import { isValidOid, shortOid } from './pointer';
import { makeDirs, makeDirsSync } from './safe-path';
import { FileWriterThread } from './util/file-writer-thread';
import { PieceHasher } from './util/hash-pieces';
import { readFullySync } from './util/read-blocks';

/**
 * Objects up to this size are stored and read with one blocking call each (putSmall, readSmall):
 * for thousands of small files the thread-pool round trips of streams cost more than the bytes
 * (measured on 2,000 × 64 KiB, docs/performance.md).
 */
export const SMALL_OBJECT = 1 << 20;

/**
 * The local object cache: `<root>/objects-v2/<aa>/<oid>`, temp files in `<root>/tmp` on the same
 * filesystem. An object only ever appears under its name after its bytes were hashed and matched,
 * so a killed process leaves at most a temp file, never a wrong object.
 *
 * One level of fan-out, as git's own loose objects: 256 directories at most. The first layout,
 * `<root>/objects/<aa>/<bb>/<oid>`, made a directory for nearly every object of a small-file
 * dataset (17,200 for 20,000 objects), and on ext4 creating an inode is what a checkout of many
 * small files waits for (a 20,000-file clone 12.7-14.2 s -> 9.3-11.0 s, docs/performance.md).
 * Caches in that layout are still read: an object found there is moved into this one the first
 * time it is looked for (a rename on the same filesystem), so nothing that was added and not yet
 * pushed is lost by an upgrade, and nothing is migrated in bulk.
 */
export class ObjectCache {
  readonly objectsDir: string;
  /** The first layout's objects (`<aa>/<bb>/<oid>`), read and moved from while it exists. */
  readonly legacyObjectsDir: string;
  readonly tmpDir: string;
  /** Whether legacyObjectsDir exists, looked at once per instance (a stat): no cost per object without it. */
  private legacyPresent: boolean | undefined;
  private tmpReady: Promise<unknown> | null = null;
  private writerThread: FileWriterThread | null = null;
  /** Hashing threads the writers of this cache hold now (HASH_THREADS at most). */
  private hashThreads = 0;
  private readonly tempPrefix = `${process.pid}-${randomBytes(6).toString('hex')}`;
  private tempCount = 0;

  constructor(
    readonly root: string,
    private readonly options: { fsync: boolean } = { fsync: true },
  ) {
    this.objectsDir = path.join(root, 'objects-v2');
    this.legacyObjectsDir = path.join(root, 'objects');
    this.tmpDir = path.join(root, 'tmp');
  }

  /**
   * A thread to hash the file open at `fd` (whole file only), or null when HASH_THREADS are in use:
   * the writer then hashes on its own thread. `releaseHashThread` gives its place back.
   */
  hashThreadFor(fd: number): PieceHasher | null {
    if (this.hashThreads >= HASH_THREADS) return null;
    this.hashThreads++;
    return new PieceHasher(fd, { pieces: false });
  }

  releaseHashThread(): void {
    this.hashThreads--;
  }

  /** Hashing threads in use (tests). */
  get hashThreadsInUse(): number {
    return this.hashThreads;
  }

  /** A fresh temp file name in the cache (the pid says which process left it, if one is killed). */
  private newTempPath(): string {
    // Unique by process, by cache instance and by count: random bytes per object cost a 20,000-file
    // checkout 40 ms of its busiest thread.
    return path.join(this.tmpDir, `${this.tempPrefix}-${++this.tempCount}.tmp`);
  }

  /** Where the object is named (written to, and read from once any copy in the first layout was moved). */
  pathOf(oid: string): string {
    if (!isValidOid(oid)) throw new GitmlError('E_INTERNAL', `refusing to build a cache path from an invalid oid: ${JSON.stringify(oid)}`);
    // Joined here, not by path.join: objectsDir is already normalized and an oid is 64 hex digits,
    // and this runs several times for each of 20,000 objects in a checkout (path.join's garbage was
    // 70 MiB). Array#join makes one flat string; a template literal would keep six rope nodes alive
    // for every path held on to.
    return [this.objectsDir, oid.slice(0, 2), oid].join(path.sep);
  }

  /**
   * The path to read the object from: pathOf, after moving a copy in the first layout there (see the
   * class). For callers that open the file themselves; the object may still be missing. (The cache's
   * own reads try pathOf first and look in the first layout only on a miss: no call more per object.)
   */
  locate(oid: string): string {
    const target = this.pathOf(oid);
    if (this.hasLegacyLayout() && !fs.existsSync(target)) this.adoptLegacy(oid);
    return target;
  }

  /** `use(pathOf(oid))`, once more after moving the object from the first layout when it missed. */
  private orFromLegacy<T>(oid: string, use: (file: string) => T, missed: (result: T) => boolean): T {
    const result = use(this.pathOf(oid));
    return missed(result) && this.adoptLegacy(oid) ? use(this.pathOf(oid)) : result;
  }

  private hasLegacyLayout(): boolean {
    this.legacyPresent ??= fs.existsSync(this.legacyObjectsDir);
    return this.legacyPresent;
  }

  private legacyPathOf(oid: string): string {
    return [this.legacyObjectsDir, oid.slice(0, 2), oid.slice(2, 4), oid].join(path.sep);
  }

  /**
   * Moves the object from the first layout to pathOf, when it is there; true when pathOf now holds
   * it. Two processes may race: the loser's source is gone and the winner's copy is in place.
   */
  private adoptLegacy(oid: string): boolean {
    if (!this.hasLegacyLayout()) return false;
    const from = this.legacyPathOf(oid);
    const to = this.pathOf(oid);
    try {
      try {
        fs.renameSync(from, to);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT' || !fs.existsSync(from)) throw e;
        makeDirsSync(path.dirname(to));
        fs.renameSync(from, to);
      }
      return true;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return fs.existsSync(to);
      throw cacheIoError(`cannot move object sha256:${shortOid(oid)} into the cache's current layout at ${this.root}`, e);
    }
  }

  /** True when the object is present with the expected size (when one is given). */
  async has(oid: string, size?: number): Promise<boolean> {
    try {
      // A small object's stat is blocking, as its read is (SMALL_OBJECT): through the thread pool,
      // 20,000 of them cost a push 0.2 s of this thread's time in dispatch alone (docs/performance.md).
      // (A miss is answered without an exception: a checkout's first look at 20,000 objects misses.)
      const st =
        size !== undefined && size <= SMALL_OBJECT
          ? this.orFromLegacy(oid, (file) => fs.statSync(file, { throwIfNoEntry: false }), (st) => st === undefined)
          : await fsp.stat(this.locate(oid));
      return st !== undefined && st.isFile() && (size === undefined || st.size === size);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return false;
      throw cacheIoError(`cannot read the cache at ${this.root}`, e);
    }
  }

  /** The temp directory exists (made once per process: this runs for every object of a checkout or a push). */
  private async tempDirReady(): Promise<void> {
    this.tmpReady ??= makeDirs(this.tmpDir);
    await this.tmpReady.catch((e) => {
      this.tmpReady = null;
      throw e;
    });
  }

  async createWriter(): Promise<CacheWriter> {
    try {
      await this.tempDirReady();
      const tmpPath = this.newTempPath();
      const handle = await fsp.open(tmpPath, 'wx+', 0o644); // readable too: ranged writers hash by reading back
      return new CacheWriter(this, tmpPath, handle, this.options.fsync);
    } catch (e) {
      throw cacheIoError(`cannot write to the cache at ${this.root}`, e);
    }
  }

  /**
   * Stores a small object (SMALL_OBJECT) held in memory, with blocking calls. Same guarantees as the
   * streaming path: temp file, optional fsync, rename only under its own hash. `stored`: false when
   * the object was cached already and nothing was written.
   */
  putSmall(content: Buffer): { oid: string; size: number; stored: boolean } {
    const oid = createHash('sha256').update(content).digest('hex');
    // Already there (git re-cleaning a racily clean file after checkout, a re-add): nothing to write.
    try {
      if (this.orFromLegacy(oid, (file) => fs.statSync(file, { throwIfNoEntry: false }), (st) => st === undefined)?.size === content.length) return { oid, size: content.length, stored: false };
    } catch {
      // not cached yet
    }
    const tmpPath = this.newTempPath();
    try {
      let fd: number;
      try {
        fd = fs.openSync(tmpPath, 'wx', 0o644);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
        makeDirsSync(this.tmpDir);
        fd = fs.openSync(tmpPath, 'wx', 0o644);
      }
      try {
        for (let offset = 0; offset < content.length; ) offset += fs.writeSync(fd, content, offset, content.length - offset);
        if (this.options.fsync) fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      const target = this.pathOf(oid);
      try {
        fs.renameSync(tmpPath, target);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
        makeDirsSync(path.dirname(target));
        fs.renameSync(tmpPath, target);
      }
      return { oid, size: content.length, stored: true };
    } catch (e) {
      fs.rmSync(tmpPath, { force: true });
      throw cacheIoError(`cannot store object sha256:${shortOid(oid)} in the cache at ${this.root}`, e);
    }
  }

  /**
   * Stores objects cut from `length` bytes that `fill` writes (a pack read) whose oids are known: each
   * hashed, compared and written under a temp name and renamed, on the cache's writer thread
   * (util/file-writer-thread.ts), so the event loop keeps answering git. A failure of `fill` is
   * thrown. Per item: null when it is cached, `{ mismatch }` with the sha256 the bytes really have
   * (nothing stored), or the cache's error.
   */
  async putExpected(length: number, fill: (into: Uint8Array) => Promise<void>, items: readonly { oid: string; offset: number; size: number }[]): Promise<(null | { mismatch: string } | GitmlError)[]> {
    try {
      await this.tempDirReady();
    } catch (e) {
      const error = cacheIoError(`cannot write to the cache at ${this.root}`, e);
      return items.map(() => error);
    }
    this.writerThread ??= new FileWriterThread(this.options.fsync);
    const jobs = items.map((i) => ({ offset: i.offset, size: i.size, sha256: i.oid, tmp: this.newTempPath(), target: this.pathOf(i.oid) }));
    const results = await this.writerThread.write(length, fill, jobs);
    return results.map((r, n) =>
      r === null || 'mismatch' in r ? r : cacheIoError(`cannot store object sha256:${shortOid(items[n]!.oid)} in the cache at ${this.root}`, Object.assign(new Error(r.error.message), { code: r.error.code })),
    );
  }

  /**
   * Stores a stream as an object. With `expected`, the bytes must hash to it or nothing is stored and
   * E_OBJECT_CORRUPT is thrown.
   */
  async writeStream(source: Readable | AsyncIterable<Buffer>, expected?: { oid: string; size: number }): Promise<{ oid: string; size: number }> {
    const writer = await this.createWriter();
    try {
      for await (const chunk of source) await writer.write(chunk as Buffer);
      return await writer.commit(expected);
    } catch (e) {
      await writer.abort();
      throw e;
    }
  }

  /**
   * A writer that takes an object in byte ranges, in any order and in parallel (ranged downloads),
   * and hashes it in order as contiguous parts complete. Named only once the whole matches `expected`.
   * `partsInOrder`: the parts come one at a time from the start (a directory store), so each is hashed
   * as it arrives and no thread is needed.
   */
  async createRangedWriter(expected: { oid: string; size: number }, copyTo?: string, options: { partsInOrder?: boolean } = {}): Promise<RangedCacheWriter> {
    const writer = await this.createWriter();
    const onThread = !options.partsInOrder && expected.size >= HASH_ON_THREAD_FROM;
    if (!copyTo) return new RangedCacheWriter(this, writer, expected, null, onThread);
    try {
      return new RangedCacheWriter(this, writer, expected, { file: copyTo, handle: await fsp.open(copyTo, 'wx', 0o600) }, onThread);
    } catch (e) {
      await writer.abort();
      throw cacheIoError(`cannot write to the cache at ${this.root}`, e);
    }
  }

  /**
   * Takes `file`, a local store's file holding exactly this object, into the cache as a hard link, once
   * its bytes hash to `expected`; `copyTo` (direct checkout) gets a copy made by the kernel meanwhile.
   * Only a read-only regular file of this user is linked, so nobody else can change what the cache
   * then holds. False, with nothing left behind, when it cannot be taken this way (another file system,
   * another owner, writable, another size, no hashing thread free): the caller reads it as usual. A
   * file that does not match is E_OBJECT_CORRUPT, and neither the link nor the copy is left.
   */
  async adoptLinked(expected: { oid: string; size: number }, file: string, copyTo?: string): Promise<boolean> {
    let st: fs.Stats;
    try {
      st = await fsp.lstat(file);
    } catch {
      return false;
    }
    if (!st.isFile() || st.size !== expected.size || st.uid !== process.getuid?.() || (st.mode & 0o222) !== 0) return false;
    const tmp = this.newTempPath();
    try {
      await makeDirs(this.tmpDir);
      await fsp.link(file, tmp);
    } catch {
      return false;
    }
    let handle: fsp.FileHandle | null = null;
    let hasher: PieceHasher | null = null;
    let copied: Promise<void> | null = null;
    try {
      handle = await fsp.open(tmp, 'r');
      const linked = await handle.stat();
      if (linked.ino === st.ino && linked.dev === st.dev && linked.size === expected.size) hasher = this.hashThreadFor(handle.fd);
      if (!hasher) {
        await fsp.rm(tmp, { force: true });
        return false;
      }
      copied = copyTo ? fsp.copyFile(tmp, copyTo, fs.constants.COPYFILE_EXCL) : null;
      const [whole] = await Promise.all([hasher.finish(), copied]);
      if (whole.sha256 !== expected.oid || whole.size !== expected.size) throw contentMismatch(expected, whole);
      await renameCreatingDir(tmp, this.pathOf(expected.oid));
      return true;
    } catch (e) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      // The copy is removed unless it failed because a file was there already (not ours to remove).
      if (copied && !(await copied.then(() => false, (err: unknown) => errnoCode(err) === 'EEXIST'))) await fsp.rm(copyTo!, { force: true }).catch(() => undefined);
      if (e instanceof GitmlError) throw e;
      throw cacheIoError(`cannot store object sha256:${shortOid(expected.oid)} in the cache at ${this.root}`, e);
    } finally {
      if (hasher) {
        await hasher.close();
        this.releaseHashThread();
      }
      await handle?.close().catch(() => undefined);
    }
  }

  /**
   * A small object's bytes (SMALL_OBJECT), read with blocking calls: at most `size` + 1 bytes, so a
   * file that grew shows as too long. Not verified here: callers hash what they read. `scratch`, when
   * large enough, is read into instead of a new buffer (the result is then a view of it, good until
   * its next use): a checkout of 20,000 files otherwise leaves 20,000 buffers for the collector.
   */
  readSmall(oid: string, size: number, scratch?: Buffer): Buffer {
    const fd = this.orFromLegacy(oid, (file) => openOrMiss(file), (fd) => fd === null) ?? fs.openSync(this.pathOf(oid), 'r');
    try {
      const buffer = scratch && scratch.length >= size + 1 ? scratch.subarray(0, size + 1) : Buffer.allocUnsafe(size + 1);
      return buffer.subarray(0, readFullySync(fd, buffer, 0));
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * The object's bytes, or a half-open range of them. `size` (when known) sizes the read buffer: a
   * 1 MiB buffer for each of thousands of small objects is mostly garbage to collect.
   */
  openRead(oid: string, range?: { start: number; end: number }, size?: number): fs.ReadStream {
    const length = range ? range.end - range.start : size;
    return fs.createReadStream(this.locate(oid), {
      highWaterMark: readBufferSize(length),
      ...(range ? { start: range.start, end: Math.max(range.start, range.end) - 1 } : {}),
    });
  }

  /** The object opened for reading (positional reads: two threads may read it through one descriptor). */
  async openHandle(oid: string): Promise<fsp.FileHandle> {
    return fsp.open(this.locate(oid), 'r');
  }

  /**
   * Marks an object as just used (its mtime is the cache's least-recently-used clock: gitml never
   * reads an object's mtime for anything else). Best effort: a failure only makes eviction less exact.
   */
  touch(oid: string): void {
    const now = new Date();
    fs.utimes(this.pathOf(oid), now, now, () => undefined);
  }

  /**
   * Every object in the cache, with its size and when it was last used: the current layout's, then
   * those still in the first layout (an object in both is listed twice; remove() takes both).
   */
  async *list(): AsyncIterable<{ oid: string; size: number; path: string; used: number }> {
    for (const a of await readdirOrEmpty(this.objectsDir)) {
      yield* objectsIn(path.join(this.objectsDir, a), a);
    }
    if (!this.hasLegacyLayout()) return;
    for (const a of await readdirOrEmpty(this.legacyObjectsDir)) {
      for (const b of await readdirOrEmpty(path.join(this.legacyObjectsDir, a))) yield* objectsIn(path.join(this.legacyObjectsDir, a, b), a + b);
    }
  }

  async remove(oid: string): Promise<void> {
    await fsp.rm(this.pathOf(oid), { force: true });
    if (this.hasLegacyLayout()) await fsp.rm(this.legacyPathOf(oid), { force: true });
  }

  /** Removes temp files older than `olderThanMs` (left by killed processes). */
  async removeStaleTemp(olderThanMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const name of await readdirOrEmpty(this.tmpDir)) {
      const file = path.join(this.tmpDir, name);
      const st = await fsp.stat(file).catch(() => null);
      if (st && now - st.mtimeMs > olderThanMs) {
        await fsp.rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }
}

/**
 * See ObjectCache.createRangedWriter. With a copy, every part is also written at its offset in a second
 * file (a work-tree file being checked out: src/filter/direct.ts), so the bytes reach both places in
 * one pass; the copy holds the same buffers as the cache file whose bytes are hashed, is complete
 * once commit() returns, and is removed when the object does not match.
 *
 * From HASH_ON_THREAD_FROM on, unless the parts come in order, the hash runs on another thread
 * (while one is free: ObjectCache.hashThreadFor), which reads the temp file back from the page cache
 * as far as the parts are complete from its start: this thread only moves bytes. Otherwise a part that
 * starts where the hash stands is hashed as it arrives and any other part is read back once every
 * part before it is in (none, when they come in order).
 */
export class RangedCacheWriter {
  private hash: Hash = createHash('sha256');
  /** Completed parts by start offset: end offset. */
  private readonly completed = new Map<number, number>();
  private hashedUpTo = 0;
  private hashing: Promise<void> = Promise.resolve();
  /** A part is being hashed as it is written (it started where the hash stood). */
  private hashingInline = false;
  /** Hashes the temp file on another thread (large objects); told how far it may read. */
  private readonly thread: PieceHasher | null;

  constructor(
    private readonly cache: ObjectCache,
    private readonly inner: CacheWriter,
    private readonly expected: { oid: string; size: number },
    private readonly copy: { file: string; handle: fsp.FileHandle } | null,
    onThread: boolean,
  ) {
    this.thread = onThread ? inner.hashOnThread() : null;
  }

  /** Writes one part; the stream must deliver exactly the range's bytes. Safe to call again for a failed part. */
  async writePart(range: { start: number; end: number }, source: AsyncIterable<Buffer>): Promise<void> {
    // Without the thread: a part that starts where the hash stands is hashed as it arrives, beside its
    // writes; a part further on is read back (from the page cache) once every part before it is in. A
    // failed inline part puts the hash back as it was, so its retry hashes from the same point.
    const inline = !this.thread && !this.hashingInline && range.start === this.hashedUpTo;
    const before = inline ? this.hash.copy() : null;
    if (inline) this.hashingInline = true;
    let at = range.start;
    try {
      // Errors of the source (the store) pass through as they are; only writes are the cache's.
      for await (const chunk of source) {
        if (at + chunk.length > range.end) throw new GitmlError('E_STORE_IO', `the store sent more than the ${range.end - range.start} bytes asked for`, { retryable: true });
        const written = (this.copy ? Promise.all([this.inner.writeAt(chunk, at), writeFullyAt(this.copy.handle, chunk, at)]) : this.inner.writeAt(chunk, at)).catch((e) => {
          throw cacheIoError(`cannot write to the cache at ${this.cache.root}`, e);
        });
        if (inline) this.hash.update(chunk);
        await written;
        at += chunk.length;
      }
      if (at !== range.end) {
        throw new GitmlError('E_STORE_IO', `a ranged read ended after ${at - range.start} of ${range.end - range.start} bytes`, { retryable: true });
      }
    } catch (e) {
      if (inline) {
        this.hash = before!;
        this.hashingInline = false;
      }
      throw e;
    }
    if (inline) {
      this.hashedUpTo = range.end;
      this.hashingInline = false;
    } else {
      this.completed.set(range.start, range.end);
    }
    // Hash what is now contiguous from the start.
    this.hashing = this.hashing.then(() => this.advance());
    await this.hashing;
  }

  async commit(): Promise<{ oid: string; size: number }> {
    await this.hashing;
    if (this.hashedUpTo !== this.expected.size) {
      await this.abort();
      throw new GitmlError('E_STORE_IO', `ranged download incomplete: ${this.hashedUpTo} of ${this.expected.size} bytes`, { retryable: true });
    }
    let digest: string;
    try {
      digest = this.thread ? await this.inner.digestOnThread(this.expected.size) : this.hash.digest('hex');
    } catch (e) {
      await this.abort();
      throw e;
    }
    try {
      const named = await this.inner.commitWithDigest(digest, this.expected.size, this.expected);
      await this.copy?.handle.close();
      return named;
    } catch (e) {
      await this.removeCopy();
      throw e;
    }
  }

  async abort(): Promise<void> {
    await this.removeCopy();
    return this.inner.abort();
  }

  private async removeCopy(): Promise<void> {
    if (!this.copy) return;
    await this.copy.handle.close().catch(() => undefined);
    await fsp.rm(this.copy.file, { force: true }).catch(() => undefined);
  }

  private async advance(): Promise<void> {
    const from = this.hashedUpTo;
    for (let end = this.completed.get(this.hashedUpTo); end !== undefined; end = this.completed.get(this.hashedUpTo)) {
      if (!this.thread) for await (const chunk of this.inner.readBack(this.hashedUpTo, end)) this.hash.update(chunk);
      this.completed.delete(this.hashedUpTo);
      this.hashedUpTo = end;
    }
    // Every part up to here has been written: the thread may read that far.
    if (this.thread && this.hashedUpTo > from) this.thread.cut([this.hashedUpTo]);
  }
}

/**
 * Past this many bytes a stream's sha256 moves to another thread (util/hash-pieces.ts), which reads
 * the temp file back from the page cache as it is written: hashing on the thread that also reads git's
 * packets and issues the writes was the longest part of `git add` of 1 GiB (2.2 s with it, 1.3 s
 * without: docs/performance.md). Below it, starting a thread costs more than it saves.
 */
export const HASH_ON_THREAD_FROM = 64 << 20;

/**
 * Hashing threads at once per cache, each ~10 MiB of memory: a checkout downloads `gitml.concurrency`
 * large objects at once, and memory must not grow with that setting. Writers past these hash on their
 * own thread, as everything did before the threads.
 */
export const HASH_THREADS = 2;

/** Bytes are hashed as they are written; `commit` renames the temp file into place once it matches. */
export class CacheWriter {
  private readonly hash: Hash = createHash('sha256');
  /** Set once the stream passes HASH_ON_THREAD_FROM: it hashes the temp file from its start. */
  private hasher: PieceHasher | null = null;
  /** No thread was free when the stream passed HASH_ON_THREAD_FROM: it is hashed here to its end. */
  private hashingHere = false;
  /** Bytes the writes have put in the temp file, and how far the hashing thread was told it may read. */
  private flushed = 0;
  private toldHasher = 0;
  private size = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private done = false;
  private inFlight: Promise<void> | null = null;
  private static readonly WRITE_BATCH = 1 << 20;
  private static readonly HASHER_STEP = 16 << 20;

  constructor(
    private readonly cache: ObjectCache,
    readonly tmpPath: string,
    private readonly handle: fsp.FileHandle,
    private readonly fsync: boolean,
  ) {}

  get bytesWritten(): number {
    return this.size;
  }

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    if (!this.hasher) {
      if (!this.hashingHere && this.size + chunk.length >= HASH_ON_THREAD_FROM) {
        this.hasher = this.cache.hashThreadFor(this.handle.fd);
        this.hashingHere = !this.hasher;
      }
      if (!this.hasher) this.hash.update(chunk);
    }
    this.size += chunk.length;
    // Small packets (64 KiB from git) are gathered into fewer, larger writes.
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= CacheWriter.WRITE_BATCH) await this.flushPending();
  }

  /** Positional write for ranged downloads (no hashing here: RangedCacheWriter hashes in order). */
  writeAt(chunk: Buffer, position: number): Promise<void> {
    return writeFullyAt(this.handle, chunk, position);
  }

  async *readBack(start: number, end: number): AsyncIterable<Buffer> {
    const buffer = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(1, end - start)));
    for (let at = start; at < end; ) {
      const { bytesRead } = await this.handle.read(buffer, 0, Math.min(buffer.length, end - at), at);
      if (bytesRead === 0) throw new GitmlError('E_CACHE_IO', `cache temp file ${this.tmpPath} is shorter than written`);
      yield buffer.subarray(0, bytesRead);
      at += bytesRead;
    }
  }

  async commit(expected?: { oid: string; size: number }): Promise<{ oid: string; size: number }> {
    if (this.done) throw new GitmlError('E_INTERNAL', 'cache writer used after commit or abort');
    let digest: string;
    try {
      await this.flushPending();
      await this.drain();
      digest = this.hasher ? await this.digestOnThread() : this.hash.digest('hex');
    } catch (e) {
      await this.abort();
      throw e;
    }
    return this.commitWithDigest(digest, this.size, expected);
  }

  /**
   * The temp file hashed on another thread from its start, as far as `cut` allows, then to its end
   * (RangedCacheWriter; a streamed write starts one by itself); null when none is free
   * (ObjectCache.hashThreadFor). The thread stops, and its place is given back, with commit or abort.
   */
  hashOnThread(): PieceHasher | null {
    this.hasher ??= this.cache.hashThreadFor(this.handle.fd);
    return this.hasher;
  }

  /** The hashing thread's sha256 of the whole temp file, which must hold exactly `size` bytes. */
  async digestOnThread(size = this.size): Promise<string> {
    let whole: { sha256: string; size: number };
    try {
      whole = await this.hasher!.finish();
    } catch (e) {
      throw cacheIoError(`cannot read back the cache's temp file ${this.tmpPath}`, e);
    }
    if (whole.size !== size) throw new GitmlError('E_CACHE_IO', `the cache's temp file ${this.tmpPath} holds ${whole.size} bytes where ${size} were written`);
    return whole.sha256;
  }

  /** Names the temp file by `oid` once it matches `expected`; the digest was computed by the caller. */
  async commitWithDigest(oid: string, size: number, expected?: { oid: string; size: number }): Promise<{ oid: string; size: number }> {
    if (this.done) throw new GitmlError('E_INTERNAL', 'cache writer used after commit or abort');
    try {
      await this.drain();
      if (expected && (expected.oid !== oid || expected.size !== size)) throw contentMismatch(expected, { sha256: oid, size });
      if (this.fsync) await this.handle.sync();
      await this.handle.close();
      this.done = true;
      await this.stopHashThread();
      const target = this.cache.pathOf(oid);
      await renameCreatingDir(this.tmpPath, target);
      return { oid, size };
    } catch (e) {
      await this.abort();
      if (e instanceof GitmlError) throw e;
      throw cacheIoError(`cannot store object sha256:${shortOid(oid)} in the cache at ${this.cache.root}`, e);
    }
  }

  async abort(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.inFlight?.catch(() => undefined);
      this.inFlight = null;
      await this.stopHashThread();
      await this.handle.close().catch(() => undefined);
    }
    await fsp.rm(this.tmpPath, { force: true }).catch(() => undefined);
  }

  /** Stops the hashing thread (done or not) and gives its place back to the cache. */
  private async stopHashThread(): Promise<void> {
    const hasher = this.hasher;
    if (!hasher) return;
    this.hasher = null;
    await hasher.close();
    this.cache.releaseHashThread();
  }

  /**
   * Starts writing what is pending and returns once the previous write is done: one write is in
   * flight while the next MiB is read and hashed (measured: `git add` of 1 GiB spent a third of its
   * time waiting on writes when each was awaited in turn). Memory: at most two batches.
   */
  private async flushPending(): Promise<void> {
    await this.drain();
    if (this.pendingBytes === 0) return;
    const buffers = this.pending;
    const total = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    const write = (async () => {
      // One writev of git's packets: no copy into a batch buffer.
      const { bytesWritten } = await this.handle.writev(buffers);
      if (bytesWritten !== total) {
        const rest = Buffer.concat(buffers, total).subarray(bytesWritten);
        for (let offset = 0; offset < rest.length; ) {
          const r = await this.handle.write(rest, offset, rest.length - offset);
          offset += r.bytesWritten;
        }
      }
      this.flushed += total;
    })();
    // Failures surface at the next drain (next write, commit); abort waits for the write too.
    write.catch(() => undefined);
    this.inFlight = write;
  }

  /** Waits for the write in flight; its failure is this writer's failure. */
  private async drain(): Promise<void> {
    const write = this.inFlight;
    if (!write) return;
    this.inFlight = null;
    try {
      await write;
    } catch (e) {
      throw cacheIoError(`cannot write to the cache at ${this.cache.root}`, e);
    }
    // What is written may be read: the hashing thread is told in steps (one message per 16 MiB).
    if (this.hasher && this.flushed - this.toldHasher >= CacheWriter.HASHER_STEP) {
      this.hasher.cut([this.flushed]);
      this.toldHasher = this.flushed;
    }
  }
}

/** Read buffers: the object's size, between 16 KiB and 1 MiB. */
export function readBufferSize(length: number | undefined): number {
  return length === undefined ? 1 << 20 : Math.min(1 << 20, Math.max(16 << 10, length));
}


/** Bytes that are not the object their pointer names (E_OBJECT_CORRUPT): what was expected, what came. */
function contentMismatch(expected: { oid: string; size: number }, got: { sha256: string; size: number }): GitmlError {
  return new GitmlError('E_OBJECT_CORRUPT', `content does not match its pointer: expected sha256:${shortOid(expected.oid)} (${expected.size} bytes), got sha256:${shortOid(got.sha256)} (${got.size} bytes)`);
}

/** rename, creating the target's directory only when it is missing (the common case is that it exists). */
async function renameCreatingDir(from: string, to: string): Promise<void> {
  try {
    await fsp.rename(from, to);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
    await makeDirs(path.dirname(to));
    await fsp.rename(from, to);
  }
}

/** The objects in one fan-out directory whose names start with `prefix`; other names are skipped. */
async function* objectsIn(dir: string, prefix: string): AsyncIterable<{ oid: string; size: number; path: string; used: number }> {
  for (const name of await readdirOrEmpty(dir)) {
    if (!isValidOid(name) || !name.startsWith(prefix)) continue;
    const file = path.join(dir, name);
    const st = await fsp.stat(file).catch(() => null);
    if (st?.isFile()) yield { oid: name, size: st.size, path: file, used: st.mtimeMs };
  }
}

/** A file opened for reading, or null when it does not exist. */
function openOrMiss(file: string): number | null {
  try {
    return fs.openSync(file, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return null;
    throw e;
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
}

async function writeFullyAt(handle: fsp.FileHandle, chunk: Buffer, position: number): Promise<void> {
  for (let offset = 0; offset < chunk.length; ) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset, position + offset);
    offset += bytesWritten;
  }
}
