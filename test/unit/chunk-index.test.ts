import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { ChunkIndex } from '../../src/objects/chunk-index';

/** One pack's index: `n` entries, some of them hashes seen before (a chunk in two packs). */
function packOf(name: string, n: number, earlier: string[], repeatEvery: number): { pack: string; chunks: [string, number, number][] } {
  const chunks: [string, number, number][] = [];
  for (let i = 0; i < n; i++) {
    const repeat = repeatEvery > 0 && i % repeatEvery === 0 && earlier.length > 0;
    const hash = repeat ? earlier[(i * 7919) % earlier.length]! : randomBytes(32).toString('hex');
    chunks.push([hash, i * 100, 100]);
  }
  return { pack: name, chunks };
}

describe('the chunk index (src/objects/chunk-index.ts)', () => {
  test('finds every chunk where it was first indexed, across many packs and merges; nothing else', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: 5 }), (sizes, repeatEvery) => {
        const index = new ChunkIndex();
        const expected = new Map<string, { pack: string; offset: number; length: number }>();
        const hashes: string[] = [];
        sizes.forEach((n, p) => {
          const idx = packOf(`p${p}`, n, hashes, repeatEvery);
          index.add(idx, n * 100);
          for (const [hash, offset, length] of idx.chunks) {
            if (!expected.has(hash)) expected.set(hash, { pack: idx.pack, offset, length });
            hashes.push(hash);
          }
        });
        expect(index.size).toBe(expected.size);
        for (const [hash, place] of expected) expect(index.get(hash)).toEqual(place);
        for (let i = 0; i < 50; i++) expect(index.get(randomBytes(32).toString('hex'))).toBeUndefined();
      }),
      { numRuns: 25 },
    );
  });

  test('hashes that differ in one bit, or share all but their last byte, are told apart', () => {
    const index = new ChunkIndex();
    const base = Buffer.alloc(32, 0xab);
    const chunks: [string, number, number][] = [];
    for (let i = 0; i < 256 * 40; i++) {
      const h = Buffer.from(base);
      h[31] = i & 0xff;
      h[i % 31] ^= 1 << (i % 8);
      h[(i >> 8) % 31] ^= 0x80;
      chunks.push([h.toString('hex'), i, 1]);
    }
    const unique = new Map<string, number>();
    for (const [h, offset] of chunks) if (!unique.has(h)) unique.set(h, offset);
    index.add({ pack: 'p', chunks }, chunks.length + 1);
    expect(index.size).toBe(unique.size);
    for (const [h, offset] of unique) expect(index.get(h)?.offset).toBe(offset);
  });

  test('anything but 64 hex digits is in no index', () => {
    const index = new ChunkIndex();
    const hash = randomBytes(32).toString('hex');
    index.add({ pack: 'p', chunks: [[hash, 0, 10]] }, 10);
    expect(index.get(hash)).toEqual({ pack: 'p', offset: 0, length: 10 });
    // A lookup that would leave the last hash in place if only part of it were read.
    expect(index.get(`${hash.slice(0, 62)}zz`)).toBeUndefined();
    expect(index.get(hash.slice(0, 40))).toBeUndefined();
    expect(index.get('')).toBeUndefined();
  });
});
