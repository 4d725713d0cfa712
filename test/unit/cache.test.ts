import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { HASH_ON_THREAD_FROM, HASH_THREADS, ObjectCache } from '../../src/cache';
import { Cleaner } from '../../src/filter/clean';
import { parsePointer } from '../../src/pointer';
import { asGitmlWroteIt, unchangedSince, type WrittenFile } from '../../src/written';
import { placeStaged, stagingFileFor, writeFromCache, WRITTEN_MTIME_AGE_MS } from '../../src/worktree';
import { GitmlError } from '../../src/errors';
import { listFiles, randomBytesSeeded, ROOT, sha256 } from '../helpers/sandbox';

describe('object cache', () => {
  let dir: string;
  let cache: ObjectCache;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-cache-'));
    cache = new ObjectCache(dir);
  });
  afterEach(() => fsp.rm(dir, { recursive: true, force: true }));

  test('stores under objects-v2/<aa>/<oid> only after hashing', async () => {
    const data = Buffer.from('model weights');
    const oid = sha256(data);
    const result = await cache.writeStream(Readable.from([data.subarray(0, 5), data.subarray(5)]));
    expect(result).toEqual({ oid, size: data.length });
    expect(cache.pathOf(oid)).toBe(path.join(dir, 'objects-v2', oid.slice(0, 2), oid));
    expect(fs.readFileSync(cache.pathOf(oid))).toEqual(data);
    expect(await cache.has(oid, data.length)).toBe(true);
    expect(await cache.has(oid, data.length + 1)).toBe(false);
    expect(listFiles(cache.tmpDir)).toEqual([]);
  });

  test('small objects are stored in one go, under their hash, with no temp file left', async () => {
    const data = Buffer.from('a small label file\n');
    expect(cache.putSmall(data)).toEqual({ oid: sha256(data), size: data.length, stored: true });
    expect(fs.readFileSync(cache.pathOf(sha256(data)))).toEqual(data);
    expect(cache.putSmall(data)).toEqual({ oid: sha256(data), size: data.length, stored: false }); // again: nothing written
    expect(listFiles(cache.tmpDir)).toEqual([]);
  });

  test('readSmall returns the bytes, and one byte more of a file that grew', async () => {
    const data = Buffer.from('a small label file\n');
    const { oid } = cache.putSmall(data);
    expect(cache.readSmall(oid, data.length)).toEqual(data);
    await fsp.chmod(cache.pathOf(oid), 0o644);
    await fsp.appendFile(cache.pathOf(oid), 'more');
    expect(cache.readSmall(oid, data.length).length).toBe(data.length + 1);
  });

  test('a small object that cannot be stored is a cache error and leaves nothing', async () => {
    await fsp.mkdir(cache.objectsDir, { recursive: true });
    const data = Buffer.from('labels');
    const oid = sha256(data);
    await fsp.writeFile(path.join(cache.objectsDir, oid.slice(0, 2)), 'a file where a directory belongs');
    expect(() => cache.putSmall(data)).toThrow(expect.objectContaining({ code: 'E_CACHE_IO' }));
    expect(listFiles(cache.tmpDir)).toEqual([]);
  });

  test('a stream past HASH_ON_THREAD_FROM is hashed on another thread from the temp file: the same oid; a mismatch or an abort leaves nothing', async () => {
    const data = randomBytesSeeded(HASH_ON_THREAD_FROM + 3 * (1 << 20) + 12345, 21);
    const ref = { oid: sha256(data), size: data.length };
    const packets = (from: Buffer) => Array.from({ length: Math.ceil(from.length / 65536) }, (_, i) => from.subarray(i * 65536, (i + 1) * 65536));
    const writer = await cache.createWriter();
    for (const p of packets(data)) await writer.write(p);
    expect(await writer.commit(ref)).toEqual(ref);
    expect(sha256(fs.readFileSync(cache.pathOf(ref.oid)))).toBe(ref.oid);

    const wrong = await cache.createWriter();
    for (const p of packets(data)) await wrong.write(p);
    await expect(wrong.commit({ oid: sha256('other bytes'), size: data.length })).rejects.toMatchObject({ code: 'E_OBJECT_CORRUPT' });

    const aborted = await cache.createWriter();
    for (const p of packets(data.subarray(0, HASH_ON_THREAD_FROM + (1 << 20)))) await aborted.write(p);
    await aborted.abort();
    expect(listFiles(cache.tmpDir)).toEqual([]);
    expect(fs.readdirSync(cache.objectsDir).length).toBe(1);
  });

  test('a ranged download with a copy: parts in any order reach both files; a mismatch or an abort leaves neither', async () => {
    const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
    const ref = { oid: sha256(data), size: data.length };
    const parts = [{ start: 200_000, end: 300_000 }, { start: 0, end: 100_000 }, { start: 100_000, end: 200_000 }];
    const copy = path.join(dir, 'copy');
    const writer = await cache.createRangedWriter(ref, copy);
    for (const r of parts) await writer.writePart(r, Readable.from([data.subarray(r.start, r.start + 7), data.subarray(r.start + 7, r.end)]));
    expect(await writer.commit()).toEqual(ref);
    expect(fs.readFileSync(cache.pathOf(ref.oid))).toEqual(data);
    expect(fs.readFileSync(copy)).toEqual(data);

    const wrong = { oid: sha256('something else'), size: data.length };
    const copy2 = path.join(dir, 'copy2');
    const bad = await cache.createRangedWriter(wrong, copy2);
    for (const r of parts) await bad.writePart(r, Readable.from([data.subarray(r.start, r.end)]));
    await expect(bad.commit()).rejects.toMatchObject({ code: 'E_OBJECT_CORRUPT' });
    expect(fs.existsSync(copy2)).toBe(false);

    const copy3 = path.join(dir, 'copy3');
    const aborted = await cache.createRangedWriter(wrong, copy3);
    await aborted.writePart(parts[0]!, Readable.from([data.subarray(parts[0]!.start, parts[0]!.end)]));
    await aborted.abort();
    expect(fs.existsSync(copy3)).toBe(false);
    expect(listFiles(cache.tmpDir)).toEqual([]);
  });

  test('parts read in order are hashed as they arrive; one that fails part way is hashed again from its start', async () => {
    const data = randomBytesSeeded(300_000, 12);
    const ref = { oid: sha256(data), size: data.length };
    const parts = [{ start: 0, end: 100_000 }, { start: 100_000, end: 200_000 }, { start: 200_000, end: 300_000 }];
    const writer = await cache.createRangedWriter(ref);
    await writer.writePart(parts[0]!, Readable.from([data.subarray(0, 100_000)]));
    // The second part breaks after some of its bytes were hashed; its retry sends them again.
    const broken = (async function* () {
      yield data.subarray(100_000, 150_000);
      throw new GitmlError('E_STORE_IO', 'connection reset', { retryable: true });
    })();
    await expect(writer.writePart(parts[1]!, broken)).rejects.toMatchObject({ code: 'E_STORE_IO' });
    await writer.writePart(parts[1]!, Readable.from([data.subarray(100_000, 130_000), data.subarray(130_000, 200_000)]));
    await writer.writePart(parts[2]!, Readable.from([data.subarray(200_000, 300_000)]));
    expect(await writer.commit()).toEqual(ref);
    expect(fs.readFileSync(cache.pathOf(ref.oid))).toEqual(data);
  });

  test('from HASH_ON_THREAD_FROM on, a ranged download is hashed on a thread: parts in any order, a retried part, a mismatch and an abort', async () => {
    const size = HASH_ON_THREAD_FROM + 5_000_000;
    const data = randomBytesSeeded(size, 13);
    const ref = { oid: sha256(data), size };
    const step = 16 << 20;
    const parts: { start: number; end: number }[] = [];
    for (let start = 0; start < size; start += step) parts.push({ start, end: Math.min(size, start + step) });
    const slice = (r: { start: number; end: number }) => Readable.from([data.subarray(r.start, r.start + 1000), data.subarray(r.start + 1000, r.end)]);
    const order = [parts[1]!, parts[0]!, parts[4]!, parts[2]!, parts[3]!];

    const copy = path.join(dir, 'copy');
    const writer = await cache.createRangedWriter(ref, copy);
    for (const r of order) {
      if (r === parts[2]) {
        // Breaks part way, after its first bytes were written; the retry sends the part again.
        const broken = (async function* () {
          yield data.subarray(r.start, r.start + 3_000_000);
          throw new GitmlError('E_STORE_IO', 'connection reset', { retryable: true });
        })();
        await expect(writer.writePart(r, broken)).rejects.toMatchObject({ code: 'E_STORE_IO' });
      }
      await writer.writePart(r, slice(r));
    }
    expect(await writer.commit()).toEqual(ref);
    expect(sha256(fs.readFileSync(cache.pathOf(ref.oid)))).toBe(ref.oid);
    expect(sha256(fs.readFileSync(copy))).toBe(ref.oid);
    expect(listFiles(cache.tmpDir)).toEqual([]);

    // One byte changed in the last part: nothing is named, the copy is removed.
    const tampered = Buffer.from(data.subarray(parts[4]!.start, parts[4]!.end));
    tampered[tampered.length - 1]! ^= 1;
    const bad = await cache.createRangedWriter(ref, path.join(dir, 'copy2'));
    for (const r of order) await bad.writePart(r, r === parts[4] ? Readable.from([tampered]) : slice(r));
    await expect(bad.commit()).rejects.toMatchObject({ code: 'E_OBJECT_CORRUPT' });
    expect(fs.existsSync(path.join(dir, 'copy2'))).toBe(false);
    expect(listFiles(cache.tmpDir)).toEqual([]);

    const aborted = await cache.createRangedWriter(ref, path.join(dir, 'copy3'));
    await aborted.writePart(parts[0]!, slice(parts[0]!));
    await aborted.abort();
    expect(fs.existsSync(path.join(dir, 'copy3'))).toBe(false);
    expect(listFiles(cache.tmpDir)).toEqual([]);
  });

  test('at most HASH_THREADS hashing threads at once, none for parts in order: writers past them hash on their own thread, and every place is given back', async () => {
    const size = HASH_ON_THREAD_FROM + 1000;
    const data = randomBytesSeeded(size, 14);
    const ref = { oid: sha256(data), size };
    const writers = [];
    for (let i = 0; i < HASH_THREADS + 2; i++) writers.push(await cache.createRangedWriter(ref));
    expect(cache.hashThreadsInUse).toBe(HASH_THREADS);
    // A streamed write past the threshold finds no thread free either.
    expect(await cache.writeStream(Readable.from([data.subarray(0, 40 << 20), data.subarray(40 << 20)]))).toEqual(ref);
    expect(cache.hashThreadsInUse).toBe(HASH_THREADS);
    // The first writer hashes on a thread, the last on its own; both name the object. The rest abort.
    for (const writer of [writers[0]!, writers[writers.length - 1]!]) {
      await writer.writePart({ start: 0, end: size }, Readable.from([data]));
      expect(await writer.commit()).toEqual(ref);
    }
    expect(cache.hashThreadsInUse).toBe(HASH_THREADS - 1);
    for (const writer of writers.slice(1, -1)) await writer.abort();
    expect(cache.hashThreadsInUse).toBe(0);
    expect(sha256(fs.readFileSync(cache.pathOf(ref.oid)))).toBe(ref.oid);

    // Parts that come in order (a directory store) are hashed as they arrive: no thread.
    const inOrder = await cache.createRangedWriter(ref, undefined, { partsInOrder: true });
    expect(cache.hashThreadsInUse).toBe(0);
    await inOrder.writePart({ start: 0, end: 1 << 20 }, Readable.from([data.subarray(0, 1 << 20)]));
    await inOrder.writePart({ start: 1 << 20, end: size }, Readable.from([data.subarray(1 << 20)]));
    expect(await inOrder.commit()).toEqual(ref);
    expect(listFiles(cache.tmpDir)).toEqual([]);
  });

  test('bytes that do not match the expected oid leave nothing behind', async () => {
    const data = Buffer.from('tampered');
    const expected = { oid: sha256('original'), size: data.length };
    await expect(cache.writeStream(Readable.from([data]), expected)).rejects.toMatchObject({ code: 'E_OBJECT_CORRUPT' });
    expect(await cache.has(expected.oid)).toBe(false);
    expect(listFiles(dir)).toEqual([]);
  });

  test('a process killed in the middle of a write leaves no object, only a temp file prune removes', async () => {
    // A child writes half an object through the real cache code, then waits to be killed.
    const script = `
      const { ObjectCache } = require(${JSON.stringify(path.join(ROOT, 'dist/src/cache.js'))});
      (async () => {
        const w = await new ObjectCache(${JSON.stringify(dir)}).createWriter();
        await w.write(Buffer.alloc(3 << 20, 1));
        process.stdout.write('written\\n');
        setInterval(() => {}, 1000);
      })();`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    const objects = [];
    for await (const o of cache.list()) objects.push(o);
    expect(objects).toEqual([]);
    expect(listFiles(cache.tmpDir)).toHaveLength(1);
    expect(await cache.removeStaleTemp(0, Date.now() + 1000)).toBe(1);
    expect(listFiles(cache.tmpDir)).toEqual([]);
  });

  test('lists only well-formed object names', async () => {
    const { oid } = await cache.writeStream(Readable.from([Buffer.from('x')]));
    await fsp.writeFile(path.join(cache.objectsDir, oid.slice(0, 2), 'junk'), 'x');
    await fsp.writeFile(path.join(cache.objectsDir, oid.slice(0, 2), `ff${oid.slice(2)}`), 'an object in the wrong fan-out folder');
    const seen = [];
    for await (const o of cache.list()) seen.push(o.oid);
    expect(seen).toEqual([oid]);
  });

  describe('a cache in the first layout (objects/<aa>/<bb>/<oid>)', () => {
    const legacyPath = (oid: string) => path.join(dir, 'objects', oid.slice(0, 2), oid.slice(2, 4), oid);
    const putLegacy = async (data: Buffer) => {
      const oid = sha256(data);
      await fsp.mkdir(path.dirname(legacyPath(oid)), { recursive: true });
      await fsp.writeFile(legacyPath(oid), data);
      return oid;
    };

    test('an object there is found, read and moved into the current layout, whichever call looks first', async () => {
      const small = Buffer.from('added before the upgrade, not pushed yet');
      const streamed = Buffer.from('read as a stream');
      const located = Buffer.from('opened by path');
      const [a, b, c] = [await putLegacy(small), await putLegacy(streamed), await putLegacy(located)];
      // A fresh instance, as a process started after the upgrade.
      const upgraded = new ObjectCache(dir);
      expect(await upgraded.has(a, small.length)).toBe(true);
      expect(upgraded.readSmall(a, small.length)).toEqual(small);
      const chunks: Buffer[] = [];
      for await (const chunk of upgraded.openRead(b)) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks)).toEqual(streamed);
      expect(fs.readFileSync(upgraded.locate(c))).toEqual(located);
      for (const oid of [a, b, c]) {
        expect(fs.existsSync(legacyPath(oid))).toBe(false);
        expect(fs.existsSync(upgraded.pathOf(oid))).toBe(true);
      }
    });

    test('an object only in the first layout is listed, and removed from there', async () => {
      const data = Buffer.from('old');
      const oid = await putLegacy(data);
      const { oid: current } = await cache.writeStream(Readable.from([Buffer.from('new')]));
      const seen = [];
      for await (const o of new ObjectCache(dir).list()) seen.push(o.oid);
      expect(seen.sort()).toEqual([oid, current].sort());
      await new ObjectCache(dir).remove(oid);
      expect(fs.existsSync(legacyPath(oid))).toBe(false);
      expect(await new ObjectCache(dir).has(oid)).toBe(false);
    });

    test('storing bytes already in the first layout moves them rather than writing a second copy', async () => {
      const data = Buffer.from('the same weights');
      const oid = await putLegacy(data);
      const upgraded = new ObjectCache(dir);
      expect(upgraded.putSmall(data)).toEqual({ oid, size: data.length, stored: false });
      expect(fs.existsSync(legacyPath(oid))).toBe(false);
      expect(fs.readFileSync(upgraded.pathOf(oid))).toEqual(data);
    });

    test('a missing object is a miss in both layouts, and a cache without the first layout never makes it', async () => {
      await putLegacy(Buffer.from('something else'));
      const upgraded = new ObjectCache(dir);
      expect(await upgraded.has(sha256(Buffer.from('absent')))).toBe(false);
      expect(() => upgraded.readSmall(sha256(Buffer.from('absent')), 6)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      const fresh = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-cache-'));
      try {
        const cacheOfFresh = new ObjectCache(fresh);
        const { oid } = cacheOfFresh.putSmall(Buffer.from('x'));
        expect(await cacheOfFresh.has(oid, 1)).toBe(true);
        expect(fs.existsSync(path.join(fresh, 'objects'))).toBe(false);
      } finally {
        await fsp.rm(fresh, { recursive: true, force: true });
      }
    });
  });

  test('refuses paths built from invalid oids', () => {
    expect(() => cache.pathOf('../../etc/passwd')).toThrow(/invalid oid/);
  });
});

describe('cleaning a file gitml itself wrote and nobody touched since (src/written.ts)', () => {
  let dir: string;
  let cache: ObjectCache;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-clean-'));
    cache = new ObjectCache(dir);
  });
  afterEach(() => fsp.rm(dir, { recursive: true, force: true }));

  const content = Buffer.alloc(3 << 20, 7); // past the pointer-size limit and several write batches

  test('the same bytes give the pointer without a second copy in the cache', async () => {
    const stored = await cache.writeStream(Readable.from([content]));
    const before = listFiles(dir);
    const cleaner = new Cleaner(cache, stored);
    for (let at = 0; at < content.length; at += 65516) await cleaner.write(content.subarray(at, at + 65516));
    expect(parsePointer(await cleaner.finish())).toMatchObject(stored);
    expect(listFiles(dir)).toEqual(before);
  });

  test('content of another size, or an object no longer cached, is refused and nothing is stored', async () => {
    const stored = await cache.writeStream(Readable.from([content]));
    const longer = Buffer.concat([content, Buffer.from('!')]);
    const cleaner = new Cleaner(cache, stored);
    await cleaner.write(longer);
    await expect(cleaner.finish()).rejects.toMatchObject({ code: 'E_CHANGED' });
    expect(await cache.has(sha256(longer))).toBe(false);

    await cache.remove(stored.oid);
    const orphan = new Cleaner(cache, stored);
    await orphan.write(content);
    await expect(orphan.finish()).rejects.toMatchObject({ code: 'E_CHANGED' });
  });

  test('a record matches only the same inode, size and mtime', () => {
    const record: WrittenFile = { path: 'm.pt', oid: 'a'.repeat(64), size: 10, ino: '42', mtimeNs: '1700000000123456789' };
    const st = { ino: 42n, size: 10n, mtimeNs: 1700000000123456789n, isFile: () => true };
    expect(unchangedSince(record, st)).toBe(true);
    expect(unchangedSince(record, { ...st, ino: 43n })).toBe(false);
    expect(unchangedSince(record, { ...st, size: 11n })).toBe(false);
    expect(unchangedSince(record, { ...st, mtimeNs: 1700000000123456790n })).toBe(false);
    expect(unchangedSince(record, { ...st, isFile: () => false })).toBe(false);
  });

  test('a file counts as gitml wrote it while it has the size and the back-dated mtime', () => {
    const now = 1_800_000_000_000;
    const st = { size: 10n, mtimeMs: BigInt(now - WRITTEN_MTIME_AGE_MS), isFile: () => true };
    expect(asGitmlWroteIt(st, { size: 10 }, now)).toBe(true);
    expect(asGitmlWroteIt(st, { size: 11 }, now)).toBe(false);
    expect(asGitmlWroteIt({ ...st, mtimeMs: BigInt(now - 1) }, { size: 10 }, now)).toBe(false); // written since
    expect(asGitmlWroteIt({ ...st, isFile: () => false }, { size: 10 }, now)).toBe(false);
  });
});

describe('writing a work-tree file from the cache', () => {
  let dir: string;
  let cache: ObjectCache;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-wfc-'));
    cache = new ObjectCache(path.join(dir, 'cache'));
  });
  afterEach(() => fsp.rm(dir, { recursive: true, force: true }));

  test('writes verified bytes over the target, back-dated, with the mode asked for', async () => {
    const data = Buffer.from('weights '.repeat(10_000));
    const stored = await cache.writeStream(Readable.from([data]));
    const target = path.join(dir, 'model.pt');
    await fsp.writeFile(target, 'pointer text');
    await writeFromCache(cache, target, stored, 0o755);
    expect(await fsp.readFile(target)).toEqual(data);
    const st = await fsp.stat(target);
    expect(st.mode & 0o777).toBe(0o755);
    expect(st.mtimeMs).toBeLessThan(Date.now() - WRITTEN_MTIME_AGE_MS / 2);
    expect(fs.readdirSync(dir).sort()).toEqual(['cache', 'model.pt']);
    expect(listFiles(cache.tmpDir)).toEqual([]);
  });

  test('a copy staged during the download is moved over the pointer file as writeFromCache would write it', async () => {
    const data = Buffer.from('weights '.repeat(10_000));
    const stored = await cache.writeStream(Readable.from([data]));
    const target = path.join(dir, 'model.pt');
    await fsp.writeFile(target, 'pointer text');
    const staged = await stagingFileFor(cache, dir);
    expect(staged && path.dirname(staged)).toBe(cache.tmpDir);
    await fsp.writeFile(staged!, data);
    expect(await placeStaged(cache, staged!, target, stored, 0o755)).toBe(true);
    expect(await fsp.readFile(target)).toEqual(data);
    const st = await fsp.stat(target);
    expect(st.mode & 0o777).toBe(0o755);
    expect(st.mtimeMs).toBeLessThan(Date.now() - WRITTEN_MTIME_AGE_MS / 2);
    expect(listFiles(cache.tmpDir)).toEqual([]);
    // A copy that is gone or short is not placed: the caller writes from the cache instead.
    expect(await placeStaged(cache, path.join(cache.tmpDir, 'gone'), target, stored, 0o644)).toBe(false);
    await fsp.writeFile(staged!, data.subarray(1));
    expect(await placeStaged(cache, staged!, target, stored, 0o644)).toBe(false);
    expect(await fsp.readFile(target)).toEqual(data);
  });

  test('a damaged cached copy is removed from the cache and the target is left as it was', async () => {
    const data = Buffer.from('weights '.repeat(10_000));
    const stored = await cache.writeStream(Readable.from([data]));
    const damaged = Buffer.from(data);
    damaged[100] = 0;
    await fsp.chmod(cache.pathOf(stored.oid), 0o644);
    await fsp.writeFile(cache.pathOf(stored.oid), damaged);
    const target = path.join(dir, 'model.pt');
    await fsp.writeFile(target, 'pointer text');
    await expect(writeFromCache(cache, target, stored, 0o644)).rejects.toMatchObject({ code: 'E_OBJECT_CORRUPT' });
    expect(await fsp.readFile(target, 'utf8')).toBe('pointer text');
    expect(await cache.has(stored.oid)).toBe(false);
    expect(fs.readdirSync(dir).sort()).toEqual(['cache', 'model.pt']);
  });
});
