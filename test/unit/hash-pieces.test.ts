import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PieceHasher } from '../../src/util/hash-pieces';
import { randomBytesSeeded, sha256 } from '../helpers/sandbox';

describe('hashing a file and its pieces on another thread', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-pieces-'));
  });
  afterEach(() => fsp.rm(dir, { recursive: true, force: true }));

  async function withFile<T>(data: Buffer, use: (hasher: PieceHasher, file: string) => Promise<T>): Promise<T> {
    const file = path.join(dir, 'data');
    await fsp.writeFile(file, data);
    const handle = await fsp.open(file, 'r');
    const hasher = new PieceHasher(handle.fd);
    try {
      return await use(hasher, file);
    } finally {
      await hasher.close();
      await handle.close();
    }
  }

  test('pieces cut in several messages, across and inside the thread\'s 1 MiB reads, are hashed in order; the whole file too', async () => {
    const data = randomBytesSeeded(3 * 1024 * 1024 + 123, 9);
    const ends = [1, 2, 65_536, 1024 * 1024, 1024 * 1024 + 7, 2_500_000, data.length];
    await withFile(data, async (hasher) => {
      hasher.cut(ends.slice(0, 3));
      expect(await hasher.next()).toBe(sha256(data.subarray(0, 1)));
      hasher.cut(ends.slice(3));
      const hashes = [];
      for (let i = 1; i < ends.length; i++) hashes.push(await hasher.next());
      expect(hashes).toEqual(ends.slice(1).map((end, i) => sha256(data.subarray(ends[i]!, end))));
      expect(await hasher.finish()).toEqual({ sha256: sha256(data), size: data.length });
    });
  });

  test('with no pieces it is the whole file\'s hash; a file longer than its pieces shows in the size', async () => {
    const data = randomBytesSeeded(1_500_000, 10);
    await withFile(data, async (hasher) => expect(await hasher.finish()).toEqual({ sha256: sha256(data), size: data.length }));
    await withFile(data, async (hasher) => {
      hasher.cut([1000]);
      expect(await hasher.next()).toBe(sha256(data.subarray(0, 1000)));
      expect(await hasher.finish()).toEqual({ sha256: sha256(data), size: data.length });
    });
  });

  test('pieces only: every piece is hashed, the whole file is not, and the answer is how far the pieces reached', async () => {
    const data = randomBytesSeeded(2_200_000, 13);
    const file = path.join(dir, 'pieces-only');
    await fsp.writeFile(file, data);
    const handle = await fsp.open(file, 'r');
    const hasher = new PieceHasher(handle.fd, { pieces: true, whole: false });
    try {
      hasher.cut([70_000, 1_500_000, 2_000_000]);
      expect([await hasher.next(), await hasher.next(), await hasher.next()]).toEqual([
        sha256(data.subarray(0, 70_000)),
        sha256(data.subarray(70_000, 1_500_000)),
        sha256(data.subarray(1_500_000, 2_000_000)),
      ]);
      expect(await hasher.finishPieces()).toBe(2_000_000);
      await expect(hasher.finish()).rejects.toThrow(/without the whole file hash/);
    } finally {
      await hasher.close();
      await handle.close();
    }
  });

  test('whole file only: a file still being written is read as far as it is told, and no piece is answered', async () => {
    const data = randomBytesSeeded(3_000_000, 12);
    const handle = await fsp.open(path.join(dir, 'growing'), 'w+');
    const hasher = new PieceHasher(handle.fd, { pieces: false });
    try {
      await handle.write(data, 0, 1_200_000, 0);
      hasher.cut([1_200_000]);
      await handle.write(data, 1_200_000, data.length - 1_200_000, 1_200_000);
      hasher.cut([2_500_000]);
      expect(await hasher.finish()).toEqual({ sha256: sha256(data), size: data.length });
      expect(hasher.ready).toBe(0);
    } finally {
      await hasher.close();
      await handle.close();
    }
  });

  test('a piece past the end of the file fails what waits for it, and the whole', async () => {
    const data = randomBytesSeeded(100_000, 11);
    await withFile(data, async (hasher) => {
      hasher.cut([50_000, 200_000]);
      expect(await hasher.next()).toBe(sha256(data.subarray(0, 50_000)));
      await expect(hasher.next()).rejects.toMatchObject({ code: 'E_SHORT_READ' });
      await expect(hasher.finish()).rejects.toMatchObject({ code: 'E_SHORT_READ' });
    });
  });

  test('closing it rejects what still waits, promptly', async () => {
    await withFile(randomBytesSeeded(10, 12), async (hasher) => {
      const waiting = hasher.next();
      await hasher.close();
      await expect(waiting).rejects.toThrow('stopped');
    });
  });
});
