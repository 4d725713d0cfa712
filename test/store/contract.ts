import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BodySource, Store } from '../../src/store/store';
import { ReadBlocks } from '../../src/util/read-blocks';

/**
 * The behaviour every store backend must have. Backends run these tests unchanged:
 *   describeStoreContract('directory', async () => ({ store, cleanup }))
 */
export interface StoreFixture {
  store: Store;
  cleanup(): Promise<void>;
}

export function bodyOf(data: Buffer, options: { failAfter?: number } = {}): BodySource {
  return {
    size: data.length,
    open(range) {
      const slice = range ? data.subarray(range.start, range.end) : data;
      if (options.failAfter === undefined) return Readable.from(chunks(slice, 64 * 1024));
      const limit = options.failAfter;
      return new Readable({
        read() {
          this.push(slice.subarray(0, limit));
          this.destroy(new Error('source failed'));
        },
      });
    },
  };
}

function chunks(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function sample(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed * 17) & 0xff;
  return out;
}

function keyFor(name: string): string {
  const h = createHash('sha256').update(name).digest('hex');
  return `objects/${h.slice(0, 2)}/${h.slice(2, 4)}/${h}`;
}

export function describeStoreContract(name: string, make: () => Promise<StoreFixture>): void {
  describe(`store contract: ${name}`, () => {
    let fixture: StoreFixture;
    let store: Store;
    beforeEach(async () => {
      fixture = await make();
      store = fixture.store;
    });
    afterEach(async () => {
      await store.close();
      await fixture.cleanup();
    });

    test('stat of a missing key is null; get is E_OBJECT_MISSING', async () => {
      expect(await store.stat(keyFor('missing'))).toBeNull();
      await expect(store.get(keyFor('missing'))).rejects.toMatchObject({ code: 'E_OBJECT_MISSING' });
    });

    test('put then get returns the same bytes; a second put reports exists', async () => {
      const data = sample(300_000, 1);
      const key = keyFor('a');
      expect(await store.put(key, bodyOf(data))).toBe('created');
      expect(await store.stat(key)).toMatchObject({ size: data.length });
      expect((await readAll(await store.get(key))).equals(data)).toBe(true);
      expect(await store.put(key, bodyOf(data))).toBe('exists');
    });

    test('empty objects round-trip', async () => {
      const key = keyFor('empty');
      expect(await store.put(key, bodyOf(Buffer.alloc(0)))).toBe('created');
      expect(await store.stat(key)).toMatchObject({ size: 0 });
      expect((await readAll(await store.get(key))).length).toBe(0);
    });

    test('ranged reads return exactly the range', async () => {
      const data = sample(100_000, 2);
      const key = keyFor('range');
      await store.put(key, bodyOf(data));
      const part = await readAll(await store.get(key, { range: { start: 1000, end: 54321 } }));
      expect(part.equals(data.subarray(1000, 54321))).toBe(true);
    });

    // Optional: a store that reads into memory it is given (Store.getInBlocks) reads what get reads.
    test('reads into given blocks (where the store has them) return what get returns, each chunk valid until the next', async () => {
      const getInBlocks = store.getInBlocks?.bind(store);
      if (!getInBlocks) return;
      const data = sample(300_000, 7);
      const key = keyFor('blocks');
      await store.put(key, bodyOf(data));
      const blocks = new ReadBlocks(() => false, 64 * 1024);
      const copyAll = async (source: AsyncIterable<Buffer>) => {
        const parts: Buffer[] = [];
        for await (const c of source) parts.push(Buffer.from(c)); // copied: the chunk is reused
        return Buffer.concat(parts);
      };
      expect((await copyAll(await getInBlocks(key, { blocks }))).equals(data)).toBe(true);
      expect((await copyAll(await getInBlocks(key, { blocks, range: { start: 1000, end: 254_321 } }))).equals(data.subarray(1000, 254_321))).toBe(true);
      expect((await copyAll(await getInBlocks(key, { blocks, range: { start: 5, end: 5 } }))).length).toBe(0);
      // A range past the end ends where the object ends (the caller judges a short read).
      expect((await copyAll(await getInBlocks(key, { blocks, range: { start: 299_000, end: 400_000 } }))).equals(data.subarray(299_000))).toBe(true);
      await expect(copyAll(await getInBlocks(keyFor('missing-blocks'), { blocks }))).rejects.toMatchObject({ code: 'E_OBJECT_MISSING' });
      // The block read and the one read ahead, reused by every read above.
      expect(blocks.allocated).toBe(2);
    });

    test('stat answers the size (and when it was written) of present keys, null for absent ones', async () => {
      const keys = ['m1', 'm2'].map(keyFor);
      await store.put(keys[0]!, bodyOf(sample(10, 3)));
      expect(await store.stat(keys[0]!)).toMatchObject({ key: keys[0], size: 10 });
      expect(Number.isFinite((await store.stat(keys[0]!))?.modified?.getTime())).toBe(true);
      expect(await store.stat(keys[1]!)).toBeNull();
    });

    test('keys that are not plain relative paths are refused before any request', async () => {
      for (const bad of ['../x', '/abs', 'a//b', 'a/./b', '', 'a\\b']) {
        await expect(store.put(bad, bodyOf(sample(1, 1)))).rejects.toMatchObject({ code: 'E_UNSAFE_PATH' });
        await expect(store.stat(bad)).rejects.toMatchObject({ code: 'E_UNSAFE_PATH' });
      }
    });

    test('list yields the keys under a prefix with their sizes', async () => {
      const keys = ['l1', 'l2'].map(keyFor);
      for (const k of keys) await store.put(k, bodyOf(sample(5, 5)));
      await store.put('other/thing', bodyOf(sample(7, 6)));
      const listed = [];
      for await (const e of store.list('objects/')) listed.push(e);
      expect(listed.map((e) => e.key).sort()).toEqual([...keys].sort());
      expect(listed.every((e) => e.size === 5)).toBe(true);
    });

    test('delete removes; deleting a missing key is fine', async () => {
      const key = keyFor('del');
      await store.put(key, bodyOf(sample(5, 7)));
      await store.delete(key);
      expect(await store.stat(key)).toBeNull();
      await store.delete(key);
    });

    test('a body that fails mid-way leaves no object', async () => {
      const key = keyFor('fail');
      await expect(store.put(key, bodyOf(sample(200_000, 8), { failAfter: 1000 }))).rejects.toBeDefined();
      expect(await store.stat(key)).toBeNull();
    });

    test('two writers of the same key at once both succeed and the object is whole', async () => {
      const data = sample(2_000_000, 9);
      const key = keyFor('race');
      const results = await Promise.all([store.put(key, bodyOf(data)), store.put(key, bodyOf(data)), store.put(key, bodyOf(data))]);
      expect(results.filter((r) => r === 'created').length).toBeGreaterThanOrEqual(1);
      expect((await readAll(await store.get(key))).equals(data)).toBe(true);
    });

    test('an existing key is never overwritten, unless the caller asks to (repairs)', async () => {
      const key = keyFor('conflict');
      const first = sample(100, 10);
      await store.put(key, bodyOf(first));
      expect(await store.put(key, bodyOf(sample(150, 11)))).toBe('exists');
      expect((await readAll(await store.get(key))).equals(first)).toBe(true);
      const good = sample(150, 12);
      expect(await store.put(key, bodyOf(good), { overwrite: true })).toBe('created');
      expect((await readAll(await store.get(key))).equals(good)).toBe(true);
    });

    test('a body that fails is reported as the local read error it is, not as the store\'s', async () => {
      const key = keyFor('bodyfail');
      const failing = { size: 100_000, open: () => new Readable({ read() { this.destroy(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' })); } }) };
      await expect(store.put(key, failing)).rejects.toMatchObject({ code: 'E_CACHE_IO' });
      expect(await store.stat(key)).toBeNull();
    });
  });
}
