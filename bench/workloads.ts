import { createCipheriv } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/**
 * Reproducible workload bytes: an AES-128-CTR keystream keyed by a seed (incompressible, like model
 * weights, and generated at GiB/s).
 */
export function keystream(seed: number): (size: number) => Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed >>> 0, 0);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return (size) => cipher.update(Buffer.alloc(size));
}

export async function writeRandomFile(file: string, size: number, seed: number): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const next = keystream(seed);
  const out = fs.createWriteStream(file);
  for (let left = size; left > 0; ) {
    const n = Math.min(left, 8 << 20);
    if (!out.write(next(n))) await new Promise<void>((r) => out.once('drain', () => r()));
    left -= n;
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
}

/** W1: one large random file. */
export async function w1(dir: string, size: number): Promise<string[]> {
  await writeRandomFile(path.join(dir, 'w1', 'model.pt'), size, 1);
  return ['w1/model.pt'];
}

/** W2: many small files. */
export async function w2(dir: string, count: number, size: number): Promise<string[]> {
  const next = keystream(2);
  const names: string[] = [];
  await fsp.mkdir(path.join(dir, 'w2'), { recursive: true });
  for (let i = 0; i < count; i++) {
    const name = `w2/shard-${String(i).padStart(5, '0')}.pt`;
    await fsp.writeFile(path.join(dir, name), next(size));
    names.push(name);
  }
  return names;
}

/** The size mix of W4: a dataset of images and shards, 4 KiB to 64 KiB (average 24.8 KiB). */
export const W4_SIZES = [4, 8, 16, 32, 64].map((k) => k * 1024);

/** W4: `count` small files in folders of 200, sizes cycling through W4_SIZES (incompressible). */
export function w4(dir: string, count: number): Promise<string[]> {
  return smallFiles(dir, count, { seed: 4, perFolder: 200, sizes: W4_SIZES, name: (i) => `w4/class-${pad(i / 200, 3)}/img-${pad(i, 5)}.pt` });
}

/**
 * W6: `count` files of 4 KiB in folders of 1,000 (incompressible): a dataset of 100,000 thumbnails,
 * where per-file costs and per-file memory are all there is.
 */
export function w6(dir: string, count: number): Promise<string[]> {
  return smallFiles(dir, count, { seed: 6, perFolder: 1000, sizes: [4096], name: (i) => `w6/part-${pad(i / 1000, 3)}/thumb-${pad(i, 6)}.pt` });
}

async function smallFiles(
  dir: string,
  count: number,
  shape: { seed: number; perFolder: number; sizes: readonly number[]; name: (i: number) => string },
): Promise<string[]> {
  const next = keystream(shape.seed);
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = shape.name(i);
    if (i % shape.perFolder === 0) await fsp.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fsp.writeFile(path.join(dir, name), next(shape.sizes[i % shape.sizes.length]!));
    names.push(name);
  }
  return names;
}

function pad(n: number, width: number): string {
  return String(Math.floor(n)).padStart(width, '0');
}

/** W5: one very large file (linear scaling and flat memory). */
export async function w5(dir: string, size: number): Promise<string[]> {
  await writeRandomFile(path.join(dir, 'w5', 'model.pt'), size, 5);
  return ['w5/model.pt'];
}

/**
 * W3: a checkpoint and three later versions:
 *   v2 ~3% of bytes changed in 30 scattered 256 KiB regions
 *   v3 4 KiB inserted at 100 MiB (everything after shifts)
 *   v4 16 MiB appended
 * Returns a function that writes version n (1..4) to `file`.
 */
export function w3Versions(size: number): (version: number, file: string) => Promise<void> {
  return async (version, file) => {
    const base = keystream(3)(size);
    let data = base;
    if (version >= 2) {
      data = Buffer.from(base);
      const patch = keystream(30);
      const region = 256 * 1024;
      for (let i = 0; i < 30; i++) {
        const at = Math.floor(((i + 0.5) * size) / 30) - region / 2;
        patch(region).copy(data, Math.max(0, Math.min(size - region, at)));
      }
    }
    if (version >= 3) {
      const at = Math.min(100 * 1024 * 1024, Math.floor(size / 2));
      data = Buffer.concat([data.subarray(0, at), keystream(31)(4096), data.subarray(at)]);
    }
    if (version >= 4) data = Buffer.concat([data, keystream(32)(16 * 1024 * 1024)]);
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(file, data);
  };
}
