import fc from 'fast-check';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readInBlocks, ReadBlocks } from '../../src/util/read-blocks';
import { randomBytesSeeded } from '../helpers/sandbox';

describe('reused read blocks (util/read-blocks.ts)', () => {
  // The cut of a large object reads into reused blocks (util/read-blocks.ts); chunks waiting for their
  // names are views of them. A block handed out while something points into it would change their bytes.
  test('a read block is handed out again only when the reader, every waiting chunk and the chunker are done with it', () => {
    const op = fc.oneof(
      fc.constant({ op: 'take' as const, pick: 0 }),
      ...(['done', 'hold', 'release', 'chunker'] as const).map((name) => fc.record({ op: fc.constant(name), pick: fc.nat() })),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        let chunkerHolds: ArrayBufferLike | null = null;
        const blocks = new ReadBlocks((memory) => memory === chunkerHolds, 64);
        const all = new Set<Buffer>();
        const reading: Buffer[] = [];
        const held: Buffer[] = [];
        const pointedInto = (b: Buffer) => reading.includes(b) || held.some((v) => v.buffer === b.buffer) || b.buffer === chunkerHolds;
        for (const { op: name, pick } of ops) {
          if (name === 'take') {
            const free = [...all].some((b) => !pointedInto(b));
            const before = blocks.allocated;
            const block = blocks.take();
            expect(pointedInto(block)).toBe(false);
            // Reused whenever one is free: a new block only when every block is pointed into.
            expect(blocks.allocated).toBe(free ? before : before + 1);
            all.add(block);
            reading.push(block);
          } else if (name === 'done' && reading.length > 0) {
            blocks.done(reading.splice(pick % reading.length, 1)[0]!);
          } else if (name === 'hold' && all.size > 0) {
            const view = [...all][pick % all.size]!.subarray(pick % 32, 32 + (pick % 32));
            blocks.hold(view);
            held.push(view);
          } else if (name === 'release' && held.length > 0) {
            blocks.release(held.splice(pick % held.length, 1)[0]!);
          } else if (name === 'chunker') {
            chunkerHolds = all.size > 0 && pick % 3 !== 0 ? [...all][pick % all.size]!.buffer : null;
          }
        }
        expect(blocks.allocated).toBe(all.size);
      }),
      { numRuns: 500 },
    );
  });

  test('reading in blocks: every byte once, in order, one read ahead; a failure of the work leaves no read behind', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-blocks-'));
    try {
      const data = randomBytesSeeded(5 * 64 + 17, 9);
      const file = path.join(root, 'data');
      await fsp.writeFile(file, data);
      const blocks = new ReadBlocks(() => false, 64);
      const handle = await fsp.open(file, 'r');
      const seen: Buffer[] = [];
      await readInBlocks(handle, blocks, (view) => void seen.push(Buffer.from(view)));
      expect(Buffer.concat(seen).equals(data)).toBe(true);
      // The block being worked on and the one read ahead: two, reused for the rest.
      expect(blocks.allocated).toBe(2);
      await expect(readInBlocks(handle, blocks, () => Promise.reject(new Error('work failed')))).rejects.toThrow('work failed');
      // Both blocks are free again: nothing is left pointing into them.
      blocks.take();
      blocks.take();
      expect(blocks.allocated).toBe(2);
      await handle.close();
    } finally {
      await fsp.rm(root, { recursive: true, force: true });
    }
  });

});
