import { once } from 'node:events';
import { createGzip, gunzipSync, gzipSync } from 'node:zlib';
import { damagedData as damaged } from '../store/requests';
import { isValidOid } from '../pointer';
import { DEFAULT_CHUNK_PARAMS } from './cdc';

/**
 * Encoding and validation of the chunked representation (docs/chunking.md): manifests (how to rebuild
 * an object from runs of packs) and pack indexes (which chunks a pack holds). Both come from a store
 * someone else may write, so decoding is bounded before it starts (decompression stops at a size
 * derived from what the object or pack can plausibly need) and the result is checked before use:
 * every count, offset and length in range, runs summing to the object's size. A violation is damage
 * (E_OBJECT_CORRUPT, with the repair hint), never a retry.
 */

/** A contiguous run of the object's bytes inside one pack. */
export interface Run {
  pack: string;
  offset: number;
  length: number;
}

export interface Manifest {
  oid: string;
  size: number;
  runs: Run[];
}

export interface PackIndex {
  pack: string;
  /** [chunk hash (hex), offset, length], in pack order. */
  chunks: [string, number, number][];
}

/**
 * The most runs an object of `size` bytes can have: every chunk but the last is at least the
 * minimum chunk size, and a run holds one chunk or more. Pure.
 */
export function maxRuns(size: number): number {
  return Math.ceil(size / DEFAULT_CHUNK_PARAMS.min) + 16;
}

/** Bytes of JSON a manifest of `size` bytes can need, at most (64 MiB whatever the size). Pure. */
export function maxManifestBytes(size: number): number {
  return Math.min(64 * 1024 * 1024, 4096 + maxRuns(size) * 120);
}

/** Entries gitml puts in one pack at most (a pack of tiny packed objects is sealed at this count). */
export const PACK_MAX_ENTRIES = 8192;

/**
 * Entries a pack of `packSize` bytes can index, at most: every entry holds a byte or more, and no
 * writer puts more than PACK_MAX_ENTRIES in a pack (or, before packed objects, one per 512 bytes). Pure.
 */
export function maxIndexEntries(packSize: number): number {
  return Math.max(Math.min(packSize, PACK_MAX_ENTRIES), Math.ceil(packSize / 512) + 1024);
}

export function maxIndexBytes(packSize: number): number {
  return Math.min(64 * 1024 * 1024, 4096 + maxIndexEntries(packSize) * 100);
}

/** Merges adjacent runs that continue each other in the same pack. Pure. */
export function coalesce(runs: readonly Run[]): Run[] {
  const out: Run[] = [];
  for (const r of runs) {
    const last = out[out.length - 1];
    if (last && last.pack === r.pack && last.offset + last.length === r.offset) last.length += r.length;
    else out.push({ ...r });
  }
  return out;
}

export function encodeManifest(m: Manifest): Buffer {
  const packs = [...new Set(m.runs.map((r) => r.pack))];
  const at = new Map(packs.map((p, i) => [p, i]));
  return gzipSync(JSON.stringify({ version: 1, oid: m.oid, size: m.size, packs, runs: m.runs.map((r) => [at.get(r.pack), r.offset, r.length]) }));
}

/** Decodes and checks a manifest for an object of `expectedSize` bytes (the pointer's size). Pure. */
export function decodeManifest(data: Buffer, expectedOid: string, expectedSize: number, where: string): Manifest {
  const name = `manifest of sha256:${expectedOid.slice(0, 12)} (${where})`;
  const raw = inflate(data, maxManifestBytes(expectedSize), name) as { version?: unknown; oid?: unknown; size?: unknown; packs?: unknown; runs?: unknown };
  if (!raw || typeof raw !== 'object' || raw.version !== 1 || raw.oid !== expectedOid || !Array.isArray(raw.packs) || !Array.isArray(raw.runs)) {
    throw damaged(`${name} has an unexpected shape`);
  }
  if (raw.size !== expectedSize) throw damaged(`${name} describes ${String(raw.size)} bytes, the pointer says ${expectedSize}`);
  const packs = raw.packs as unknown[];
  const runsIn = raw.runs as unknown[];
  if (runsIn.length > maxRuns(expectedSize)) throw damaged(`${name} has ${runsIn.length} runs, more than an object of ${expectedSize} bytes can have`);
  if (packs.length > Math.max(1, runsIn.length) || !packs.every((p) => typeof p === 'string' && isValidOid(p))) throw damaged(`${name} names invalid packs`);
  let total = 0;
  const runs: Run[] = new Array(runsIn.length);
  for (let i = 0; i < runsIn.length; i++) {
    const r = runsIn[i];
    if (!Array.isArray(r) || r.length !== 3 || !r.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) throw damaged(`${name} has an invalid run`);
    const [p, offset, length] = r as [number, number, number];
    if (p >= packs.length || length === 0) throw damaged(`${name} has an invalid run`);
    total += length;
    if (total > expectedSize) throw damaged(`${name} has runs past the object's ${expectedSize} bytes`);
    runs[i] = { pack: packs[p] as string, offset, length };
  }
  if (total !== expectedSize) throw damaged(`${name} covers ${total} bytes, not ${expectedSize}`);
  return { oid: expectedOid, size: expectedSize, runs };
}

export function encodePackIndex(idx: PackIndex): Buffer {
  return gzipSync(JSON.stringify({ version: 1, pack: idx.pack, chunks: idx.chunks }));
}

/**
 * A pack's entries as `JSON.stringify` writes them, in pieces of about a MiB (the brackets included),
 * made one entry at a time: an object's own pack lists ~16,000 chunks a GiB, whose text is never
 * whole in memory. Pure.
 */
export function* packEntriesText(chunks: Iterable<readonly [string, number, number]>): Generator<string> {
  let text = '[';
  let first = true;
  for (const [chunk, offset, length] of chunks) {
    text += `${first ? '' : ','}[${JSON.stringify(chunk)},${offset},${length}]`;
    first = false;
    if (text.length >= 1 << 20) {
      yield text;
      text = '';
    }
  }
  yield `${text}]`;
}

/** The same bytes once gunzipped as encodePackIndex, compressed as packEntriesText makes them. */
export async function encodePackIndexStreamed(pack: string, chunks: Iterable<readonly [string, number, number]>): Promise<Buffer> {
  const gzip = createGzip();
  const out: Buffer[] = [];
  gzip.on('data', (b: Buffer) => out.push(b));
  const ended = once(gzip, 'end');
  if (!gzip.write(`{"version":1,"pack":${JSON.stringify(pack)},"chunks":`)) await once(gzip, 'drain');
  for (const text of packEntriesText(chunks)) if (!gzip.write(text)) await once(gzip, 'drain');
  gzip.end('}');
  await ended;
  return Buffer.concat(out);
}

/**
 * A pack's own copy of its index, appended after its chunks: gzip JSON of the entries, then a
 * 16-byte footer (PACK_TRAILER_MAGIC, and the copy's length as a big-endian 64-bit integer). The
 * packs/<id>.idx file is what readers use; the copy lets a damaged or deleted .idx be recovered, which
 * matters because a packed object has no other record of where it is.
 */
export const PACK_TRAILER_MAGIC = Buffer.from('GMLIDX01', 'latin1');
export const PACK_FOOTER_BYTES = 16;

export function encodePackTrailer(chunks: readonly [string, number, number][]): Buffer {
  const body = gzipSync(JSON.stringify({ version: 1, chunks }));
  const footer = Buffer.alloc(PACK_FOOTER_BYTES);
  PACK_TRAILER_MAGIC.copy(footer, 0);
  footer.writeBigUInt64BE(BigInt(body.length), 8);
  return Buffer.concat([body, footer]);
}

/** The length of the index copy a pack's footer announces, or null when the pack has none. Pure. */
export function trailerLength(footer: Buffer, packSize: number): number | null {
  if (footer.length !== PACK_FOOTER_BYTES || !footer.subarray(0, 8).equals(PACK_TRAILER_MAGIC)) return null;
  const length = Number(footer.readBigUInt64BE(8));
  return Number.isSafeInteger(length) && length > 0 && length <= Math.min(maxIndexBytes(packSize), packSize - PACK_FOOTER_BYTES) ? length : null;
}

/** Decodes a pack's own index copy (the bytes trailerLength announced). Pure. */
export function decodePackTrailer(data: Buffer, pack: string, packSize: number, where: string): PackIndex {
  const name = `index copy in pack ${pack.slice(0, 12)} (${where})`;
  const raw = inflate(data, maxIndexBytes(packSize), name) as { version?: unknown; chunks?: unknown };
  if (!raw || typeof raw !== 'object' || raw.version !== 1 || !Array.isArray(raw.chunks)) throw damaged(`${name} has an unexpected shape`);
  return { pack, chunks: checkedEntries(raw.chunks, packSize, name) };
}

/**
 * Decodes and checks the index of a pack of `packSize` bytes: entries in pack order, each inside the
 * pack, none overlapping the one before. Pure.
 */
export function decodePackIndex(data: Buffer, expectedPack: string, packSize: number, where: string): PackIndex {
  const name = `pack index ${expectedPack.slice(0, 12)} (${where})`;
  const raw = inflate(data, maxIndexBytes(packSize), name) as { version?: unknown; pack?: unknown; chunks?: unknown };
  if (!raw || typeof raw !== 'object' || raw.version !== 1 || raw.pack !== expectedPack || !Array.isArray(raw.chunks)) throw damaged(`${name} has an unexpected shape`);
  return { pack: expectedPack, chunks: checkedEntries(raw.chunks, packSize, name) };
}

/** Index entries in pack order, each inside the pack, none overlapping the one before. Pure. */
function checkedEntries(chunks: unknown[], packSize: number, name: string): [string, number, number][] {
  if (chunks.length > maxIndexEntries(packSize)) throw damaged(`${name} lists ${chunks.length} chunks, more than a pack of ${packSize} bytes can hold`);
  let end = 0;
  for (const c of chunks) {
    if (!Array.isArray(c) || c.length !== 3 || typeof c[0] !== 'string' || !isValidOid(c[0]) || !Number.isSafeInteger(c[1]) || !Number.isSafeInteger(c[2])) {
      throw damaged(`${name} has an invalid entry`);
    }
    const [, offset, length] = c as [string, number, number];
    if (offset < end || length <= 0 || offset + length > packSize) throw damaged(`${name} has an entry outside the pack's ${packSize} bytes or overlapping another`);
    end = offset + length;
  }
  return chunks as [string, number, number][];
}

/** gunzip with a ceiling on the output (a small bomb cannot take the memory), then JSON. */
function inflate(data: Buffer, maxBytes: number, name: string): unknown {
  let text: Buffer;
  try {
    text = gunzipSync(data, { maxOutputLength: maxBytes });
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || /Cannot create a Buffer larger|maxOutputLength|too large/i.test((e as Error).message)) {
      throw damaged(`${name} unpacks to more than the ${maxBytes} bytes it can need`);
    }
    throw damaged(`${name} is unreadable: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text.toString('utf8'));
  } catch (e) {
    throw damaged(`${name} is unreadable: ${(e as Error).message}`);
  }
}

