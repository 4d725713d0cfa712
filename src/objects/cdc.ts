import { createHash } from 'node:crypto';

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

/**
 * Streaming chunker: feed buffers in any sizes, get chunk buffers back in order. Holds at most one
 * `max` of data back between calls (memory stays flat).
 */
export class Chunker {
  private pending: Buffer = Buffer.alloc(0);
  private readonly masks: { small: number; large: number };

  constructor(private readonly params: ChunkParams = DEFAULT_CHUNK_PARAMS) {
    if (!(params.min > 0 && params.min <= params.avg && params.avg <= params.max)) throw new RangeError(`invalid chunk sizes ${JSON.stringify(params)}`);
    this.masks = masksFor(params.avg);
  }

  /** Chunks completed by this data. */
  *push(data: Buffer): Iterable<Buffer> {
    const buf = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    let at = 0;
    // Only cut where a whole `max` window is visible, so the cut equals the one over the whole input.
    while (buf.length - at >= this.params.max) {
      const len = cutPoint(buf, at, buf.length, this.params, this.masks);
      yield buf.subarray(at, at + len);
      at += len;
    }
    this.pending = at === 0 ? buf : Buffer.from(buf.subarray(at));
  }

  /** The remaining chunks at the end of the input. */
  *end(): Iterable<Buffer> {
    const buf = this.pending;
    this.pending = Buffer.alloc(0);
    let at = 0;
    while (at < buf.length) {
      const len = cutPoint(buf, at, buf.length, this.params, this.masks);
      yield buf.subarray(at, at + len);
      at += len;
    }
  }
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
