import type { FileHandle } from 'node:fs/promises';

/** Bytes read at a time. */
export const READ_BLOCK_BYTES = 1 << 20;

/**
 * Reused read buffers for a file read from start to end, whose bytes are handed on as views. A fresh
 * buffer per read costs a page fault and the zeroing of a page per 4 KiB read, and on a virtual
 * machine whose free memory goes back to the host, the host's fault as well: on this project's CI
 * machine a 1 GiB push spent a second of system time on it (docs/performance.md, "Changes, pair by
 * pair"). A block is handed out again only when nothing points into it any more: not the reader (from
 * take until done), no view held (hold/release), and not whoever `inUse` asks (a chunker keeps the
 * input it has not cut yet). Otherwise a new block is allocated, so no view's bytes ever change under
 * it; the blocks in use at once are bounded by what the caller lets wait.
 */
export class ReadBlocks {
  private readonly blocks: { buffer: Buffer; refs: number }[] = [];
  private readonly byMemory = new Map<ArrayBufferLike, { buffer: Buffer; refs: number }>();

  constructor(
    /** Whether something else still reads from this memory. */
    private readonly inUse: (memory: ArrayBufferLike) => boolean = () => false,
    private readonly blockBytes = READ_BLOCK_BYTES,
  ) {}

  /** A block for the next read, in use until `done`. */
  take(): Buffer {
    let block = this.blocks.find((b) => b.refs === 0 && !this.inUse(b.buffer.buffer));
    if (!block) {
      block = { buffer: Buffer.allocUnsafeSlow(this.blockBytes), refs: 0 };
      this.blocks.push(block);
      this.byMemory.set(block.buffer.buffer, block);
    }
    block.refs++;
    return block.buffer;
  }

  /** The reader is done with a block it took (views of it it handed on may still be held). */
  done(block: Buffer): void {
    this.release(block);
  }

  /** A view points into its block until released (memory of its own, a copy, lies in none). */
  hold(view: Buffer): void {
    const block = this.byMemory.get(view.buffer);
    if (block) block.refs++;
  }

  release(view: Buffer): void {
    const block = this.byMemory.get(view.buffer);
    if (block) block.refs--;
  }

  /** How many blocks were allocated (tests). */
  get allocated(): number {
    return this.blocks.length;
  }
}

/**
 * Reads the file from its start to its end into blocks from `blocks`, one read ahead of `each` (the
 * read of the next block overlaps the work on this one, as a read stream's would). A block is the
 * reader's until `each` has returned; a view of it that `each` keeps must be held (blocks.hold).
 */
export async function readInBlocks(handle: FileHandle, blocks: ReadBlocks, each: (data: Buffer) => void | Promise<void>): Promise<void> {
  const readAt = async (position: number) => {
    const block = blocks.take();
    try {
      return { block, bytesRead: (await handle.read(block, 0, block.length, position)).bytesRead };
    } catch (e) {
      blocks.done(block);
      throw e;
    }
  };
  let position = 0;
  let next: ReturnType<typeof readAt> | null = readAt(position);
  try {
    for (;;) {
      const { block, bytesRead } = await next;
      next = null;
      if (bytesRead === 0) {
        blocks.done(block);
        return;
      }
      position += bytesRead;
      next = readAt(position);
      try {
        await each(block.subarray(0, bytesRead));
      } finally {
        blocks.done(block);
      }
    }
  } finally {
    // A failure in `each` leaves one read in flight: it ends before the handle may be closed.
    if (next) await next.then((r) => blocks.done(r.block), () => undefined);
  }
}
