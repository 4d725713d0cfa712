import fs from 'node:fs';
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
 * The bytes of `range` of the file (all of it by default) in blocks from `blocks`, one read ahead of
 * the consumer (the read of the next block overlaps the work on this one, as a read stream's would).
 * Each chunk is valid until the next one is asked for: a view of it kept longer must be held
 * (blocks.hold). Ends early, without an error, where the file ends; stops reading ahead once `signal`
 * fires.
 */
export async function* blocksOf(handle: FileHandle, blocks: ReadBlocks, range?: { start: number; end: number }, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const end = range?.end ?? Number.MAX_SAFE_INTEGER;
  const readAt = async (position: number) => {
    const block = blocks.take();
    try {
      return { block, bytesRead: (await handle.read(block, 0, Math.min(block.length, end - position), position)).bytesRead };
    } catch (e) {
      blocks.done(block);
      throw e;
    }
  };
  let position = range?.start ?? 0;
  let next: ReturnType<typeof readAt> | null = position < end ? readAt(position) : null;
  try {
    while (next) {
      const { block, bytesRead } = await next;
      next = null;
      if (bytesRead === 0) {
        blocks.done(block);
        return;
      }
      position += bytesRead;
      if (position < end && !signal?.aborted) next = readAt(position);
      try {
        yield block.subarray(0, bytesRead);
      } finally {
        blocks.done(block);
      }
    }
  } finally {
    // Stopped early (a failure, or the consumer is done): the read ahead ends before the handle may be closed.
    if (next) await next.then((r) => blocks.done(r.block), () => undefined);
  }
}

/** blocksOf, the whole file, each block handed to `each` (which may keep none of it once it returns). */
export async function readInBlocks(handle: FileHandle, blocks: ReadBlocks, each: (data: Buffer) => void | Promise<void>): Promise<void> {
  for await (const data of blocksOf(handle, blocks)) await each(data);
}

/** Reads `into.length` bytes of `fd` from `position` with blocking calls; fewer only where the file ends. */
export function readFullySync(fd: number, into: Uint8Array, position: number): number {
  let got = 0;
  while (got < into.length) {
    const n = fs.readSync(fd, into, got, into.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
