import { createHash } from 'node:crypto';
import { GEAR_WASM } from './gear-wasm';

/**
 * Content-defined chunking: FastCDC (Xia et al., USENIX ATC 2016) with a gear rolling hash and
 * normalized chunking. Cut points depend only on nearby content, so an insert or an append moves no
 * boundary beyond the edit: a new version of a model shares all unchanged chunks with the old one.
 *
 * Written here: no maintained JavaScript implementation exists on npm, and the algorithm is a short,
 * pure loop (property-tested in test/unit/cdc.test.ts).
 */
export interface ChunkParams {
  min: number;
  avg: number;
  max: number;
}

/** Chosen from measurements on the W3 checkpoint workload (docs/chunking.md). */
export const DEFAULT_CHUNK_PARAMS: ChunkParams = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 };

/**
 * 256 pseudo-random 32-bit values. Derived from sha256 so the table is fixed forever: changing it
 * would move every boundary (costing dedup against older versions, never correctness).
 */
export const GEAR: Int32Array = (() => {
  // Int32 values keep the hash loop in small integers (Uint32 values above 2^31 would be doubles in V8).
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) table[i] = createHash('sha256').update(`gitml-gear-${i}`).digest().readInt32LE(0);
  return table;
})();

/** A mask of `bits` ones in the top bits of a 32-bit gear hash (the bits that saw the most bytes). */
function topMask(bits: number): number {
  return (((1 << bits) - 1) << (32 - bits)) | 0;
}

export function masksFor(avg: number): { small: number; large: number } {
  const bits = Math.round(Math.log2(avg));
  // Normalized chunking, level 2: harder to cut before the average size, easier after it.
  return { small: topMask(bits + 2), large: topMask(bits - 2) };
}

/**
 * Length of the first chunk of `data[start, end)`, as FastCDC cuts it. `end - start` may be shorter than
 * `max` only at the end of the input. Pure.
 */
export function cutPoint(data: Uint8Array, start: number, end: number, params: ChunkParams, masks = masksFor(params.avg)): number {
  let n = end - start;
  if (n <= params.min) return n;
  if (n > params.max) n = params.max;
  const normal = Math.min(n, params.avg);
  const gear = GEAR;
  let h = 0;
  let i = params.min;
  const small = masks.small;
  const large = masks.large;
  for (; i < normal; i++) {
    h = ((h << 1) + gear[data[start + i]!]!) | 0;
    if ((h & small) === 0) return i + 1;
  }
  for (; i < n; i++) {
    h = ((h << 1) + gear[data[start + i]!]!) | 0;
    if ((h & large) === 0) return i + 1;
  }
  return n;
}

/** The compiled cut-point search (scripts/gear-wasm.ts); an instance per chunker is cheap. */
const GEAR_MODULE = new WebAssembly.Module(GEAR_WASM);
/** The gear table sits at the start of the module's memory; the data follows it. */
const DATA_AT = GEAR.length * 4;
/** Input is copied into the module in slices of at most this size, so its memory stays bounded. */
const SLICE_BYTES = 1 << 20;
const PAGE_BYTES = 64 * 1024;

/**
 * Streaming chunker: feed buffers in any sizes, get chunk buffers back in order, cut exactly where
 * `cutPoint` cuts the whole input. The cut points are searched by the WebAssembly module (at about
 * twice the speed of the JavaScript loop); the chunks handed out are views of the caller's buffers
 * (copied only where one spans two of them), so the caller must not reuse a buffer it passed in
 * while a chunk it took is still in use, or while `holds` says the chunker still reads from it.
 * Holds back less than one `max` between calls, and the module's memory holds at most one `max` plus
 * 1 MiB: memory stays flat.
 */
export class Chunker {
  /** The input not cut yet (shorter than `max`); its copy sits at DATA_AT in the module's memory. */
  private pending: Buffer = Buffer.alloc(0);
  private readonly masks: { small: number; large: number };
  private readonly memory: WebAssembly.Memory;
  private readonly cut: (start: number, end: number, min: number, avg: number, max: number, small: number, large: number) => number;

  constructor(private readonly params: ChunkParams = DEFAULT_CHUNK_PARAMS) {
    if (!(params.min > 0 && params.min <= params.avg && params.avg <= params.max)) throw new RangeError(`invalid chunk sizes ${JSON.stringify(params)}`);
    this.masks = masksFor(params.avg);
    const instance = new WebAssembly.Instance(GEAR_MODULE, {});
    this.memory = instance.exports.memory as WebAssembly.Memory;
    this.cut = instance.exports.cut as Chunker['cut'];
    const needed = DATA_AT + params.max + SLICE_BYTES;
    this.memory.grow(Math.ceil(needed / PAGE_BYTES) - this.memory.buffer.byteLength / PAGE_BYTES);
    new Int32Array(this.memory.buffer, 0, GEAR.length).set(GEAR);
  }

  /** Chunks completed by this data. */
  *push(data: Buffer): Iterable<Buffer> {
    for (let at = 0; at < data.length; at += SLICE_BYTES) yield* this.cutSlice(data.subarray(at, at + SLICE_BYTES), false);
  }

  /** Whether the input held back for the next cut lies in this memory (a buffer passed in earlier). */
  holds(memory: ArrayBufferLike): boolean {
    return this.pending.length > 0 && this.pending.buffer === memory;
  }

  /** The remaining chunks at the end of the input. */
  *end(): Iterable<Buffer> {
    yield* this.cutSlice(Buffer.alloc(0), true);
  }

  private *cutSlice(slice: Buffer, last: boolean): Iterable<Buffer> {
    const held = this.pending;
    const total = held.length + slice.length;
    new Uint8Array(this.memory.buffer, DATA_AT + held.length, slice.length).set(slice);
    const { min, avg, max } = this.params;
    let at = 0;
    // Before the end, only cut where a whole `max` window is visible, so the cut equals the one over
    // the whole input.
    while (last ? at < total : total - at >= max) {
      const len = this.cut(DATA_AT + at, DATA_AT + total, min, avg, max, this.masks.small, this.masks.large);
      yield bytesOf(held, slice, at, len);
      at += len;
    }
    this.pending = at >= held.length ? slice.subarray(at - held.length) : bytesOf(held, slice, at, total - at);
    new Uint8Array(this.memory.buffer).copyWithin(DATA_AT, DATA_AT + at, DATA_AT + total);
  }
}

/** Bytes [at, at + len) of `first` followed by `second`: a view where they lie in one of the two. */
function bytesOf(first: Buffer, second: Buffer, at: number, len: number): Buffer {
  if (at + len <= first.length) return first.subarray(at, at + len);
  if (at >= first.length) return second.subarray(at - first.length, at - first.length + len);
  return Buffer.concat([first.subarray(at), second.subarray(0, at + len - first.length)]);
}

/** All chunk lengths of a buffer at once (tests and tools). Pure. */
export function chunkLengths(data: Uint8Array, params: ChunkParams = DEFAULT_CHUNK_PARAMS): number[] {
  const masks = masksFor(params.avg);
  const out: number[] = [];
  for (let at = 0; at < data.length; ) {
    const len = cutPoint(data, at, data.length, params, masks);
    out.push(len);
    at += len;
  }
  return out;
}
