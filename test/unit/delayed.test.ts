import { randomBytes } from 'node:crypto';
import type { Gitml } from '../../src/context';
import { DelayedFiles } from '../../src/filter/delayed';
import { GITML_SPEC, LFS_SPEC, type Pointer } from '../../src/pointer';

// The settings are only compared by identity here.
const main = { name: 'main' } as unknown as Gitml;
const other = { name: 'other' } as unknown as Gitml;

function pointer(size: number, spec = GITML_SPEC): Pointer {
  return { oid: randomBytes(32).toString('hex'), size, spec };
}

describe('delayed files of a checkout (src/filter/delayed.ts)', () => {
  test('each file comes back as it was delayed, with what happened to it, once', () => {
    const files = new DelayedFiles();
    const pointers = Array.from({ length: 3000 }, (_, i) => pointer(i * 4097 + 1, i % 3 === 0 ? LFS_SPEC : GITML_SPEC));
    const slots = pointers.map((p, i) => files.add(`data/f${i}.bin`, p, i % 2 ? other : main, i % 5 === 0));
    expect(files.size).toBe(3000);
    files.markVerified(slots[7]!);
    const why = new Error('gone from the store');
    files.markFailed(slots[8]!, why);
    files.setStaged(slots[10]!, '/tmp/stage-10');
    expect(files.pathnames().slice(0, 3)).toEqual(['data/f0.bin', 'data/f1.bin', 'data/f2.bin']);
    expect(files.leftoverStaged()).toEqual(['/tmp/stage-10']);
    for (let i = 0; i < 3000; i++) {
      const f = files.take(`data/f${i}.bin`)!;
      expect(f.pointer).toEqual(pointers[i]);
      expect(f.gitml).toBe(i % 2 ? other : main);
      expect(f.direct).toBe(i % 5 === 0);
      expect(f.verified).toBe(i === 7);
      expect(f.error).toBe(i === 8 ? why : undefined);
      expect(f.staged).toBe(i === 10 ? '/tmp/stage-10' : undefined);
      expect(files.take(`data/f${i}.bin`)).toBeUndefined();
    }
    expect(files.size).toBe(0);
    expect(files.leftoverStaged()).toEqual([]);
  });

  test('a download that ends after git took its file back marks no other file', () => {
    const files = new DelayedFiles();
    const early = files.add('a.bin', pointer(10), main, false);
    files.take('a.bin');
    expect(files.pathname(early)).toBeUndefined();
    const later = files.add('b.bin', pointer(20), main, false);
    expect(later).not.toBe(early);
    files.markFailed(early, new Error('late'));
    files.markVerified(early);
    const b = files.take('b.bin')!;
    expect(b.error).toBeUndefined();
    expect(b.verified).toBe(false);
  });
});
