import fc from 'fast-check';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ObjectCache } from '../../src/cache';
import { silentLogger } from '../../src/log';
import { DirectoryStore } from '../../src/store/directory';
import { ObjectStore } from '../../src/objects/object-store';
import { ObjectChunks, PackBuilder, packIdOf, StagingBuffers } from '../../src/objects/chunked-upload';
import { decodeManifest, encodePackIndex, encodePackIndexStreamed } from '../../src/objects/format';
import { gunzipSync } from 'node:zlib';
import { manifestKey } from '../../src/objects/layout';
import { downloadObjects, uploadObjects, type TransferOptions } from '../../src/transfer/transfer';
import { listFiles, randomBytesSeeded, sha256 } from '../helpers/sandbox';
import { packsOf, storedAt } from '../helpers/store-layout';
import type { BodySource, ByteRange, PutOptions, RequestOptions, Store } from '../../src/store/store';

const retry = { retries: 0, baseDelayMs: 1, maxDelayMs: 1 };

/** A writable directory on another file system than the temp directory (tmpfs on Linux), if the machine has one. */
const OTHER_FILE_SYSTEM: string | null = (() => {
  try {
    return fs.statSync('/dev/shm').dev !== fs.statSync(os.tmpdir()).dev && (fs.accessSync('/dev/shm', fs.constants.W_OK), true) ? '/dev/shm' : null;
  } catch {
    return null;
  }
})();

/** A real directory store that counts the requests made of it (what a bucket would bill). */
class CountingStore implements Store {
  private readonly counts = new Map<string, number>();
  constructor(private readonly inner: Store) {}
  get url(): string {
    return this.inner.url;
  }
  count(kind: string): number {
    return this.counts.get(kind) ?? 0;
  }
  total(): number {
    return [...this.counts.values()].reduce((a, b) => a + b, 0);
  }
  private hit(kind: string): void {
    this.counts.set(kind, this.count(kind) + 1);
  }
  stat(key: string, o?: RequestOptions) {
    this.hit('stat');
    return this.inner.stat(key, o);
  }
  get(key: string, o?: RequestOptions & { range?: ByteRange }) {
    this.hit('get');
    return this.inner.get(key, o);
  }
  put(key: string, body: BodySource, o?: PutOptions) {
    this.hit('put');
    return this.inner.put(key, body, o);
  }
  list(prefix: string, o?: RequestOptions) {
    this.hit('list');
    return this.inner.list(prefix, o);
  }
  delete(key: string, o?: RequestOptions) {
    this.hit('delete');
    return this.inner.delete(key, o);
  }
  close() {
    return this.inner.close();
  }
}

async function world(): Promise<{ root: string; store: DirectoryStore; cache: (name: string) => ObjectCache; cleanup: () => Promise<void> }> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-chunked-'));
  await fsp.mkdir(path.join(root, 'store'));
  return {
    root,
    store: new DirectoryStore(path.join(root, 'store')),
    cache: (name) => new ObjectCache(path.join(root, name)),
    cleanup: () => fsp.rm(root, { recursive: true, force: true }),
  };
}

function options(cache: ObjectCache, store: DirectoryStore, chunking = true): TransferOptions {
  return { cache, objects: new ObjectStore(store, { retry, timeoutMs: 60_000, log: silentLogger, chunking, cacheRoot: cache.root }), concurrency: 4, log: silentLogger };
}

async function put(cache: ObjectCache, data: Buffer): Promise<{ oid: string; size: number }> {
  return cache.writeStream(Readable.from([data]));
}

async function readBack(cache: ObjectCache, oid: string): Promise<Buffer> {
  return fsp.readFile(cache.pathOf(oid));
}

/**
 * A 66 MiB object pushed from a cache 'local' into a directory store (the world's, or one at
 * `storeRoot`), where it is its own pack.
 */
async function pushedAsOwnPack(
  w: Awaited<ReturnType<typeof world>>,
  seed: number,
  storeRoot = path.join(w.root, 'store'),
): Promise<{ data: Buffer; a: { oid: string; size: number }; packFile: string; local: ObjectCache; newBytes: number }> {
  const data = randomBytesSeeded(66 * 1024 * 1024, seed);
  const local = w.cache('local');
  const a = await put(local, data);
  const up = await uploadObjects([a], options(local, new DirectoryStore(storeRoot)));
  expect(up.failed).toEqual([]);
  const packs = [...packsOf(storeRoot)];
  expect(packs).toHaveLength(1);
  return { data, a, packFile: packs[0]!.packFile, local, newBytes: up.newBytes };
}

describe('chunked objects in a store', () => {
  test('any edit of a file: both versions rebuild byte-identical from chunks; the new version costs little', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1e9 }),
        fc.array(fc.record({ kind: fc.constantFrom('insert', 'delete', 'overwrite'), at: fc.double({ min: 0, max: 1, noNaN: true }), len: fc.integer({ min: 1, max: 200_000 }) }), {
          minLength: 1,
          maxLength: 4,
        }),
        async (seed, edits) => {
          const w = await world();
          try {
            const v1 = randomBytesSeeded(4 * 1024 * 1024, seed);
            let v2 = v1;
            for (const [i, e] of edits.entries()) {
              const at = Math.floor(e.at * v2.length);
              const patch = randomBytesSeeded(e.len, seed + i + 1);
              if (e.kind === 'insert') v2 = Buffer.concat([v2.subarray(0, at), patch, v2.subarray(at)]);
              else if (e.kind === 'delete') v2 = Buffer.concat([v2.subarray(0, at), v2.subarray(at + e.len)]);
              else v2 = Buffer.concat([v2.subarray(0, at), patch, v2.subarray(at + e.len)]);
            }
            const local = w.cache('local');
            const a = await put(local, v1);
            const b = await put(local, v2);
            const first = await uploadObjects([a], options(local, w.store));
            expect(first.failed).toEqual([]);
            const second = await uploadObjects([b], options(local, w.store));
            expect(second.failed).toEqual([]);
            // Changed bytes plus a few chunks around each edit, never the whole file again.
            const changed = edits.reduce((n, e) => n + e.len, 0);
            expect(second.newBytes).toBeLessThan(changed + edits.length * 4 * 256 * 1024 + 1);
            const fresh = w.cache('fresh');
            const down = await downloadObjects([a, b], options(fresh, w.store));
            expect(down.failed).toEqual([]);
            expect((await readBack(fresh, a.oid)).equals(v1)).toBe(true);
            expect((await readBack(fresh, b.oid)).equals(v2)).toBe(true);
          } finally {
            await w.cleanup();
          }
        },
      ),
      { numRuns: 8, seed: 3 },
    );
  });

  test('a pack id is the sha256 of its size and its entries as JSON, computed entry by entry', () => {
    const entries: [string, number, number][] = [
      [sha256(Buffer.from('a')), 0, 17_000],
      [sha256(Buffer.from('b')), 17_000, 65_536],
      [sha256(Buffer.from('c')), 90_000, 1],
    ];
    for (const list of [entries, entries.slice(0, 1), []]) {
      expect(packIdOf(123_456, list)).toBe(sha256(Buffer.from(`gitml pack 123456\n${JSON.stringify(list)}`)));
    }
  });

  test('an object\'s chunks held compactly: repeats told apart, first places found, and no more than the limit of distinct ones', () => {
    const h = (s: string) => sha256(Buffer.from(s));
    const chunks = new ObjectChunks(3);
    expect([chunks.push(h('a'), 10), chunks.push(h('b'), 20), chunks.push(h('a'), 10), chunks.push(h('c'), 5)]).toEqual([true, true, false, true]);
    expect(chunks.find(h('a'))).toEqual({ offset: 0, length: 10 });
    expect(chunks.find(h('c'))).toEqual({ offset: 40, length: 5 });
    expect(chunks.find(h('d'))).toBeUndefined();
    expect(chunks.find('not a hash')).toBeUndefined();
    expect([...chunks.entries()]).toEqual([[h('a'), 0, 10], [h('b'), 10, 20], [h('c'), 40, 5]]);
    expect(chunks.overflowed).toBe(false);
    // A fourth distinct chunk: no longer told apart, but every chunk is still listed in order.
    expect(chunks.push(h('d'), 7)).toBe(true);
    expect(chunks.overflowed).toBe(true);
    expect(chunks.push(h('a'), 10)).toBe(true);
    expect(chunks.count).toBe(6);
    expect([chunks.hashAt(4), chunks.lengthAt(4), chunks.offsetAt(5)]).toEqual([h('d'), 7, 52]);
  });

  test('a pack index compressed as its entries come is the same text as one made whole', async () => {
    const pack = sha256(Buffer.from('pack'));
    for (const count of [0, 1, 30_000]) {
      const entries = Array.from({ length: count }, (_, i): [string, number, number] => [sha256(Buffer.from(String(i))), i * 70_000, 65_536 + i]);
      const streamed = gunzipSync(await encodePackIndexStreamed(pack, entries)).toString();
      expect(streamed).toBe(gunzipSync(encodePackIndex({ pack, chunks: entries })).toString());
    }
  });

  test('dedup across files in one push', async () => {
    const w = await world();
    try {
      const shared = randomBytesSeeded(3 * 1024 * 1024, 1);
      const x = Buffer.concat([shared, randomBytesSeeded(1024 * 1024, 2)]);
      const y = Buffer.concat([randomBytesSeeded(1024 * 1024, 3), shared]);
      const local = w.cache('local');
      const refs = [await put(local, x), await put(local, y)];
      const report = await uploadObjects(refs, options(local, w.store));
      expect(report.uploaded).toHaveLength(2);
      expect(report.bytes).toBe(8 * 1024 * 1024);
      expect(report.newBytes).toBeLessThan(5.5 * 1024 * 1024);
      const fresh = w.cache('fresh');
      await downloadObjects(refs, options(fresh, w.store));
      expect(sha256(await readBack(fresh, refs[1]!.oid))).toBe(sha256(y));
    } finally {
      await w.cleanup();
    }
  });

  // From 64 MiB the chunks are named on another thread (util/hash-pieces.ts) while this one cuts them;
  // below, on this thread. Both must give every chunk the name of its own bytes: dedup trusts it.
  test('a large object named beside the chunking: every chunk in the packs is named by its bytes, and a smaller object shares them', async () => {
    const w = await world();
    try {
      const large = randomBytesSeeded(70 * 1024 * 1024, 5);
      const smaller = Buffer.concat([large.subarray(0, 3 * 1024 * 1024), randomBytesSeeded(1024 * 1024, 6)]);
      const local = w.cache('local');
      const a = await put(local, large);
      const first = await uploadObjects([a], options(local, w.store));
      expect(first.failed).toEqual([]);
      let entries = 0;
      for (const { packFile, chunks } of packsOf(path.join(w.root, 'store'))) {
        const pack = await fsp.readFile(packFile);
        for (const [hash, offset, length] of chunks) {
          expect(sha256(pack.subarray(offset, offset + length))).toBe(hash);
          entries++;
        }
      }
      expect(entries).toBeGreaterThan(500);
      const b = await put(local, smaller);
      const second = await uploadObjects([b], options(local, w.store));
      expect(second.failed).toEqual([]);
      // The shared 3 MiB are found by the names the other thread gave them.
      expect(second.newBytes).toBeLessThan(1.8 * 1024 * 1024);
      const fresh = w.cache('fresh');
      expect((await downloadObjects([a, b], options(fresh, w.store))).failed).toEqual([]);
      expect(sha256(await readBack(fresh, a.oid))).toBe(a.oid);
      expect((await readBack(fresh, b.oid)).equals(smaller)).toBe(true);
    } finally {
      await w.cleanup();
    }
  });

  // A large object whose chunks are all new is its own pack: the cached file itself, linked into a
  // directory store on the same file system, indexed by its chunks for later versions to share.
  test('a large object of new chunks is its own pack (the cached file, linked); a later version stores only its changes', async () => {
    const w = await world();
    try {
      const v1 = randomBytesSeeded(66 * 1024 * 1024, 11);
      const v2 = Buffer.from(v1);
      randomBytesSeeded(512 * 1024, 12).copy(v2, 30 * 1024 * 1024);
      const local = w.cache('local');
      const a = await put(local, v1);
      const first = await uploadObjects([a], options(local, w.store));
      expect(first.failed).toEqual([]);
      expect(first.newBytes).toBe(v1.length);
      const packs = [...packsOf(path.join(w.root, 'store'))];
      expect(packs).toHaveLength(1);
      const { packFile, chunks } = packs[0]!;
      // The same file, not a copy: no byte of the object was written again.
      expect(fs.statSync(packFile).ino).toBe(fs.statSync(local.pathOf(a.oid)).ino);
      expect(fs.statSync(packFile).size).toBe(v1.length);
      let end = 0;
      for (const [hash, offset, length] of chunks) {
        expect(offset).toBe(end);
        expect(sha256(v1.subarray(offset, offset + length))).toBe(hash);
        end = offset + length;
      }
      expect(end).toBe(v1.length);
      const manifest = decodeManifest(fs.readFileSync(path.join(w.root, 'store', manifestKey(a.oid))), a.oid, a.size, 'test');
      expect(manifest.runs).toEqual([{ pack: path.basename(packFile, '.pack'), offset: 0, length: v1.length }]);

      // 98% of v2 is in v1's pack: v2 is not a pack of its own, only its new chunks are copied.
      const b = await put(local, v2);
      const second = await uploadObjects([b], options(local, w.store));
      expect(second.failed).toEqual([]);
      expect(second.newBytes).toBeLessThan(512 * 1024 + 4 * 256 * 1024 + 4096);
      const fresh = w.cache('fresh');
      expect((await downloadObjects([a, b], options(fresh, w.store))).failed).toEqual([]);
      expect((await readBack(fresh, a.oid)).equals(v1)).toBe(true);
      expect((await readBack(fresh, b.oid)).equals(v2)).toBe(true);
    } finally {
      await w.cleanup();
    }
  });

  // The other way: a clone whose cache is on the store's file system takes such a pack as the file it
  // is (a hard link), once it hashes right, and only when nobody else can change it.
  test('a clone on the same file system links an object that is its own pack, verified; a copy for the work tree is made beside it', async () => {
    const w = await world();
    try {
      const { data, a, packFile } = await pushedAsOwnPack(w, 15);
      const fresh = w.cache('fresh');
      const copy = path.join(w.root, 'work-tree-copy');
      const down = await downloadObjects([a], options(fresh, w.store), new Map([[a.oid, copy]]));
      expect(down.failed).toEqual([]);
      expect(fs.statSync(fresh.pathOf(a.oid)).ino).toBe(fs.statSync(packFile).ino);
      expect((await readBack(fresh, a.oid)).equals(data)).toBe(true);
      // The work tree's copy is a file of its own.
      expect(fs.statSync(copy).ino).not.toBe(fs.statSync(packFile).ino);
      expect(fs.readFileSync(copy).equals(data)).toBe(true);
      expect(listFiles(fresh.tmpDir)).toEqual([]);
      expect(fresh.hashThreadsInUse).toBe(0);
    } finally {
      await w.cleanup();
    }
  });

  test('a store file that does not hold the object is not linked: the download fails as damage and leaves neither link nor copy', async () => {
    const w = await world();
    try {
      const { data, a, packFile } = await pushedAsOwnPack(w, 16);
      fs.chmodSync(packFile, 0o644);
      const fd = fs.openSync(packFile, 'r+');
      fs.writeSync(fd, Buffer.from([data[50 * 1024 * 1024]! ^ 0xff]), 0, 1, 50 * 1024 * 1024);
      fs.closeSync(fd);
      fs.chmodSync(packFile, 0o444);
      const fresh = w.cache('fresh');
      const copy = path.join(w.root, 'work-tree-copy');
      const down = await downloadObjects([a], options(fresh, w.store), new Map([[a.oid, copy]]));
      expect(down.failed).toHaveLength(1);
      expect(down.failed[0]!.error).toMatchObject({ code: 'E_OBJECT_CORRUPT' });
      expect(fs.existsSync(fresh.pathOf(a.oid))).toBe(false);
      expect(fs.existsSync(copy)).toBe(false);
      expect(listFiles(fresh.tmpDir)).toEqual([]);
      expect(fresh.hashThreadsInUse).toBe(0);
    } finally {
      await w.cleanup();
    }
  });

  // A store on another file system (an NFS mount; tmpfs stands in for it where the machine has one):
  // the push's own pack is a copy the kernel made, and a clone reads and verifies it, linking nothing.
  (OTHER_FILE_SYSTEM ? test : test.skip)('a store on another file system: an own pack is copied there, and a clone copies it back, verified', async () => {
    const w = await world();
    const storeRoot = await fsp.mkdtemp(path.join(OTHER_FILE_SYSTEM!, 'gitml-other-fs-'));
    try {
      const { data, a, packFile, local, newBytes } = await pushedAsOwnPack(w, 18, storeRoot);
      expect(newBytes).toBe(data.length);
      const stored = fs.statSync(packFile);
      expect(stored.dev).not.toBe(fs.statSync(local.pathOf(a.oid)).dev);
      expect(stored.mode & 0o222).toBe(0);
      expect(fs.readFileSync(packFile).equals(data)).toBe(true);
      const manifest = decodeManifest(fs.readFileSync(path.join(storeRoot, manifestKey(a.oid))), a.oid, a.size, 'test');
      expect(manifest.runs).toEqual([{ pack: path.basename(packFile, '.pack'), offset: 0, length: data.length }]);

      const fresh = w.cache('fresh');
      const copy = path.join(w.root, 'work-tree-copy');
      expect((await downloadObjects([a], options(fresh, new DirectoryStore(storeRoot)), new Map([[a.oid, copy]]))).failed).toEqual([]);
      expect(fs.statSync(fresh.pathOf(a.oid)).dev).not.toBe(stored.dev);
      expect((await readBack(fresh, a.oid)).equals(data)).toBe(true);
      expect(fs.readFileSync(copy).equals(data)).toBe(true);
      expect(listFiles(fresh.tmpDir)).toEqual([]);
      expect(fresh.hashThreadsInUse).toBe(0);
    } finally {
      await fsp.rm(storeRoot, { recursive: true, force: true });
      await w.cleanup();
    }
  });

  test('a store file others could change (writable) is read and copied, not linked', async () => {
    const w = await world();
    try {
      const { data, a, packFile } = await pushedAsOwnPack(w, 17);
      fs.chmodSync(packFile, 0o664);
      const fresh = w.cache('fresh');
      expect((await downloadObjects([a], options(fresh, w.store))).failed).toEqual([]);
      expect(fs.statSync(fresh.pathOf(a.oid)).ino).not.toBe(fs.statSync(packFile).ino);
      expect((await readBack(fresh, a.oid)).equals(data)).toBe(true);
    } finally {
      await w.cleanup();
    }
  });

  test('two versions of a large object in one push: the second finds its chunks in the first one\'s own pack', async () => {
    const w = await world();
    try {
      const v1 = randomBytesSeeded(66 * 1024 * 1024, 18);
      const v2 = Buffer.from(v1);
      randomBytesSeeded(256 * 1024, 19).copy(v2, 10 * 1024 * 1024);
      const local = w.cache('local');
      const refs = [await put(local, v1), await put(local, v2)];
      // v1's own pack is still being stored while v2 is cut: its first pack write waits for another.
      let release = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      let packPuts = 0;
      const holding = Object.assign(Object.create(w.store) as DirectoryStore, {
        put: async (key: string, body: BodySource, o?: PutOptions) => {
          if (key.endsWith('.pack') && ++packPuts === 1) await held;
          else if (key.endsWith('.pack')) release();
          return w.store.put(key, body, o);
        },
      });
      const report = await uploadObjects(refs, options(local, holding));
      expect(report.failed).toEqual([]);
      expect(report.newBytes).toBeLessThan(v1.length + 256 * 1024 + 4 * 256 * 1024 + 4096);
      const fresh = w.cache('fresh');
      expect((await downloadObjects(refs, options(fresh, w.store))).failed).toEqual([]);
      expect((await readBack(fresh, refs[1]!.oid)).equals(v2)).toBe(true);
    } finally {
      await w.cleanup();
    }
  });

  test('a large object that repeats itself is not its own pack: each chunk is stored once', async () => {
    const w = await world();
    try {
      const half = randomBytesSeeded(36 * 1024 * 1024, 13);
      const data = Buffer.concat([half, half]);
      const local = w.cache('local');
      const a = await put(local, data);
      const report = await uploadObjects([a], options(local, w.store));
      expect(report.failed).toEqual([]);
      expect(report.newBytes).toBeLessThan(half.length + 2 * 1024 * 1024);
      for (const { packFile } of packsOf(path.join(w.root, 'store'))) expect(fs.statSync(packFile).ino).not.toBe(fs.statSync(local.pathOf(a.oid)).ino);
      const fresh = w.cache('fresh');
      expect((await downloadObjects([a], options(fresh, w.store))).failed).toEqual([]);
      expect((await readBack(fresh, a.oid)).equals(data)).toBe(true);
    } finally {
      await w.cleanup();
    }
  });

  test('a large cached copy that does not match its name is removed and nothing of it is published', async () => {
    const w = await world();
    try {
      const data = randomBytesSeeded(66 * 1024 * 1024, 14);
      const local = w.cache('local');
      const a = await put(local, data);
      const file = local.pathOf(a.oid);
      fs.chmodSync(file, 0o644);
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, Buffer.from([data[40 * 1024 * 1024]! ^ 0xff]), 0, 1, 40 * 1024 * 1024);
      fs.closeSync(fd);
      const report = await uploadObjects([a], options(local, w.store));
      expect(report.failed).toHaveLength(1);
      expect((report.failed[0]!.error as Error).message).toMatch(/cached copy .* is damaged/);
      expect(fs.existsSync(file)).toBe(false);
      expect(storedAt(path.join(w.root, 'store'), a.oid)).toBeNull();
      expect([...packsOf(path.join(w.root, 'store'))]).toEqual([]);
    } finally {
      await w.cleanup();
    }
  });

  test('two pushes at once from two clones, sharing chunks, both readable afterwards', async () => {
    const w = await world();
    try {
      const base = randomBytesSeeded(6 * 1024 * 1024, 11);
      const one = Buffer.concat([base, randomBytesSeeded(500_000, 12)]);
      const two = Buffer.concat([randomBytesSeeded(500_000, 13), base]);
      const c1 = w.cache('c1');
      const c2 = w.cache('c2');
      const r1 = await put(c1, one);
      const r2 = await put(c2, two);
      const [u1, u2] = await Promise.all([uploadObjects([r1], options(c1, w.store)), uploadObjects([r2], options(c2, w.store))]);
      expect(u1.failed).toEqual([]);
      expect(u2.failed).toEqual([]);
      const fresh = w.cache('fresh');
      const down = await downloadObjects([r1, r2], options(fresh, w.store));
      expect(down.failed).toEqual([]);
      expect((await readBack(fresh, r1.oid)).equals(one)).toBe(true);
      expect((await readBack(fresh, r2.oid)).equals(two)).toBe(true);
    } finally {
      await w.cleanup();
    }
  });

  test('a pack built from objects read into its own staging buffers holds every byte where its index says', async () => {
    // Views of the staging buffers go to the kernel while the next objects are read into the other
    // buffer: a buffer reused before its write finished would show here as wrong bytes. The disk is
    // made slower than the reads (each vectored write starts 5 ms late), or the
    // kernel's copy would always stay ahead of an early reuse and hide it.
    const probe = await fsp.open(path.join(os.tmpdir(), `gitml-probe-${process.pid}`), 'w');
    const fileHandle = Object.getPrototypeOf(probe) as { writev: (this: unknown, ...args: unknown[]) => Promise<unknown> };
    await probe.close();
    await fsp.rm(path.join(os.tmpdir(), `gitml-probe-${process.pid}`), { force: true });
    const writev = fileHandle.writev;
    fileHandle.writev = async function (this: unknown, ...args: unknown[]) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return writev.apply(this, args);
    };
    // Sizes without fast-check's bias towards small values: staging buffers must fill and turn over.
    const op = fc.oneof(
      fc.record({ kind: fc.constant('reserved' as const), size: fc.noBias(fc.integer({ min: 1, max: (1 << 20) + 1 })), keep: fc.boolean() }),
      fc.record({ kind: fc.constant('external' as const), size: fc.noBias(fc.integer({ min: 1, max: 300_000 })), keep: fc.constant(true) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-pack-'));
        const staging = new StagingBuffers();
        try {
          const cache = new ObjectCache(path.join(root, 'cache'), { fsync: false });
          const expected: { offset: number; bytes: Buffer }[] = [];
          // Two packs one after the other share the staging buffers, as an upload's packs do.
          for (const half of [ops.slice(0, ops.length >> 1), ops.slice(ops.length >> 1)]) {
            const pack = await PackBuilder.create(cache, staging);
            const appended: { offset: number; bytes: Buffer }[] = [];
            for (const [n, o] of half.entries()) {
              const bytes = randomBytesSeeded(o.size, expected.length * 100 + n + 1);
              let data = bytes;
              if (o.kind === 'reserved') {
                data = await pack.reserve(o.size);
                bytes.copy(data);
              }
              if (!o.keep) continue; // a reservation dropped (a damaged cached copy)
              appended.push({ offset: await pack.append(sha256(bytes), data), bytes });
            }
            await pack.seal();
            const file = await fsp.readFile(pack.file);
            for (const a of appended) expect(file.subarray(a.offset, a.offset + a.bytes.length).equals(a.bytes)).toBe(true);
            expected.push(...appended);
            await pack.dispose();
          }
        } finally {
          await fsp.rm(root, { recursive: true, force: true });
        }
      }),
      {
        numRuns: 25,
        // A buffer filled to 3.3 MiB goes to the disk, and the next objects land in the other one.
        examples: [[[1 << 20, 1 << 20, 300_000, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20].map((size) => ({ kind: 'reserved' as const, size, keep: true }))]],
      },
    ).finally(() => {
      fileHandle.writev = writev;
    });
  });

  test('a thousand small files: a few pack writes up, a few ranged reads down, every object verified', async () => {
    const w = await world();
    try {
      const local = w.cache('local');
      const refs = [];
      for (let i = 0; i < 1000; i++) refs.push(await put(local, randomBytesSeeded(4096 + (i % 5) * 8192, 500 + i)));
      const counting = new CountingStore(w.store);
      const up = await uploadObjects(refs, { ...options(local, w.store), objects: new ObjectStore(counting, { retry, timeoutMs: 60_000, log: silentLogger, chunking: true, cacheRoot: local.root }) });
      expect(up.failed).toEqual([]);
      expect(up.uploaded).toHaveLength(1000);
      // Two listings (packs/, objects/), then a pack and its index per pack (a pack holds at most 16 MiB).
      expect(counting.total()).toBeLessThanOrEqual(12);
      expect(counting.count('put')).toBeLessThanOrEqual(6);
      for (const r of refs.slice(0, 5)) expect(storedAt(path.join(w.root, 'store'), r.oid)?.kind).toBe('packed');
      // Pushed again: known from the pack indexes, not one request per object.
      const again = new CountingStore(w.store);
      const second = await uploadObjects(refs, { ...options(local, w.store), objects: new ObjectStore(again, { retry, timeoutMs: 60_000, log: silentLogger, chunking: true, cacheRoot: w.cache('other-index').root }) });
      expect(second.present).toBe(1000);
      expect(again.count('stat') + again.count('put')).toBe(0);

      const fresh = w.cache('fresh');
      const down = new CountingStore(w.store);
      const report = await downloadObjects(refs, { ...options(fresh, w.store), objects: new ObjectStore(down, { retry, timeoutMs: 60_000, log: silentLogger, chunking: true, cacheRoot: fresh.root }) });
      expect(report.failed).toEqual([]);
      expect(report.downloaded).toHaveLength(1000);
      // ~20 MB of objects in ranged reads of up to 4 MiB, plus the index.
      expect(down.count('get')).toBeLessThanOrEqual(12);
      for (const r of refs) expect(sha256(await readBack(fresh, r.oid))).toBe(r.oid);
    } finally {
      await w.cleanup();
    }
  });

  test('whole objects written before chunking stay readable; small files are packed', async () => {
    const w = await world();
    try {
      const local = w.cache('local');
      const big = await put(local, randomBytesSeeded(2 * 1024 * 1024, 21));
      const tiny = await put(local, randomBytesSeeded(10_000, 22));
      await uploadObjects([big], options(local, w.store, false));
      await uploadObjects([tiny], options(local, w.store, true));
      expect(fs.existsSync(path.join(w.root, 'store', 'objects', big.oid.slice(0, 2), big.oid.slice(2, 4), big.oid))).toBe(true);
      expect(listFiles(path.join(w.root, 'store', 'manifests'))).toEqual([]);
      expect(storedAt(path.join(w.root, 'store'), tiny.oid)?.kind).toBe('packed');
      // A later chunking push of the same object finds it already stored.
      expect((await uploadObjects([big], options(local, w.store, true))).present).toBe(1);
      const fresh = w.cache('fresh');
      expect((await downloadObjects([big, tiny], options(fresh, w.store))).failed).toEqual([]);
    } finally {
      await w.cleanup();
    }
  });

  test('a damaged pack is detected on download and nothing is written to the cache', async () => {
    const w = await world();
    try {
      const local = w.cache('local');
      const ref = await put(local, randomBytesSeeded(3 * 1024 * 1024, 31));
      await uploadObjects([ref], options(local, w.store));
      const pack = listFiles(path.join(w.root, 'store', 'packs')).find((f) => f.endsWith('.pack'))!;
      const bytes = await fsp.readFile(pack);
      bytes[1000] = bytes[1000]! ^ 1;
      await fsp.chmod(pack, 0o644);
      await fsp.writeFile(pack, bytes);
      const fresh = w.cache('fresh');
      const down = await downloadObjects([ref], options(fresh, w.store));
      expect(down.failed[0]?.error.code).toBe('E_OBJECT_CORRUPT');
      expect(await fresh.has(ref.oid)).toBe(false);
    } finally {
      await w.cleanup();
    }
  });
});
