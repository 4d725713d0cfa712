import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileWriterThread } from '../../src/util/file-writer-thread';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('file writer thread', () => {
  let dir: string;
  let thread: FileWriterThread;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-fwt-'));
    thread = new FileWriterThread(false);
  });
  afterEach(async () => {
    await thread.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test('writes each file that matches its sha256 (making its folder), refuses the one that does not, and leaves no temp file', async () => {
    const data = Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 31) % 256));
    const a = data.subarray(0, 20_000);
    const b = data.subarray(20_000, 50_000);
    const jobs = [
      { offset: 0, size: a.length, sha256: sha256(a), tmp: path.join(dir, 'a.tmp'), target: path.join(dir, 'x', 'y', 'a') },
      { offset: 20_000, size: b.length, sha256: sha256(Buffer.from('other')), tmp: path.join(dir, 'b.tmp'), target: path.join(dir, 'b') },
    ];
    const results = await thread.write(data.length, async (into) => into.set(data), jobs);
    expect(results[0]).toBeNull();
    expect(results[1]).toEqual({ mismatch: sha256(b) });
    expect(fs.readFileSync(path.join(dir, 'x', 'y', 'a'))).toEqual(a);
    expect(fs.readdirSync(dir).sort()).toEqual(['x']);
  });

  test('many more batches than buffers all complete; a failed fill gives its buffer back; a write error names its cause', async () => {
    const batches = Array.from({ length: 20 }, (_, n) => Buffer.alloc(1 << 20, n));
    const results = await Promise.all(
      batches.map((data, n) => thread.write(data.length, async (into) => into.set(data), [{ offset: 0, size: data.length, sha256: sha256(data), tmp: path.join(dir, `${n}.tmp`), target: path.join(dir, `${n}`) }])),
    );
    expect(results.flat()).toEqual(batches.map(() => null));
    for (const [n, data] of batches.entries()) expect(fs.readFileSync(path.join(dir, `${n}`)).equals(data)).toBe(true);

    for (let i = 0; i < 6; i++) await expect(thread.write(10, async () => Promise.reject(new Error('read failed')), [{ offset: 0, size: 10, sha256: 'x', tmp: 't', target: 'u' }])).rejects.toThrow('read failed');
    const blocker = path.join(dir, 'file');
    await fsp.writeFile(blocker, '');
    const data = Buffer.from('payload');
    const [failed] = await thread.write(data.length, async (into) => into.set(data), [{ offset: 0, size: data.length, sha256: sha256(data), tmp: path.join(dir, 'p.tmp'), target: path.join(blocker, 'inside') }]);
    expect(failed).toMatchObject({ error: { code: 'ENOTDIR' } });
    expect(fs.existsSync(path.join(dir, 'p.tmp'))).toBe(false);
  });
});
