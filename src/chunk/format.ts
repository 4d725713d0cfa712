import { gunzipSync, gzipSync } from 'node:zlib';
import { GitmlError } from '../errors';
import { isValidOid } from '../pointer';

/**
 * The chunked representation of objects in a store (docs/chunking.md):
 *
 *   packs/<packid>.pack        chunks' bytes, concatenated (several MiB to tens of MiB)
 *   packs/<packid>.idx         gzip JSON: the chunks in that pack (hash, offset, length)
 *   manifests/<aa>/<bb>/<oid>  gzip JSON: how to rebuild the object: runs of (pack, offset, length)
 *
 * <packid> is the sha256 of the pack's bytes, so packs are immutable and never collide. A pack and
 * its index are written before any manifest that uses them; a manifest is what makes an object
 * "stored". Whole objects (objects/<aa>/<bb>/<oid>) remain readable alongside.
 */
export const MANIFESTS_PREFIX = 'manifests/';
export const PACKS_PREFIX = 'packs/';
/** Objects at least this large may be stored chunked; smaller ones are always whole objects. */
export const CHUNKED_MIN_SIZE = 1024 * 1024;

export function manifestKey(oid: string): string {
  if (!isValidOid(oid)) throw new GitmlError('E_INTERNAL', `refusing to build a manifest key from ${JSON.stringify(oid)}`);
  return `${MANIFESTS_PREFIX}${oid.slice(0, 2)}/${oid.slice(2, 4)}/${oid}`;
}

export function packKey(packId: string): string {
  if (!isValidOid(packId)) throw new GitmlError('E_INTERNAL', `invalid pack id ${JSON.stringify(packId)}`);
  return `${PACKS_PREFIX}${packId}.pack`;
}

export function packIndexKey(packId: string): string {
  if (!isValidOid(packId)) throw new GitmlError('E_INTERNAL', `invalid pack id ${JSON.stringify(packId)}`);
  return `${PACKS_PREFIX}${packId}.idx`;
}

export function packIdOfIndexKey(key: string): string | null {
  const m = /^packs\/([0-9a-f]{64})\.idx$/.exec(key);
  return m ? m[1]! : null;
}

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
  /** [chunk hash (hex), offset, length] */
  chunks: [string, number, number][];
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

export function decodeManifest(data: Buffer, expectedOid: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(gunzipSync(data).toString('utf8'));
  } catch (e) {
    throw badData(`manifest of sha256:${expectedOid.slice(0, 12)} is unreadable: ${(e as Error).message}`);
  }
  const m = raw as { version?: unknown; oid?: unknown; size?: unknown; packs?: unknown; runs?: unknown };
  if (m.version !== 1 || m.oid !== expectedOid || !Number.isSafeInteger(m.size) || !Array.isArray(m.packs) || !Array.isArray(m.runs)) {
    throw badData(`manifest of sha256:${expectedOid.slice(0, 12)} has an unexpected shape`);
  }
  const packs = m.packs as unknown[];
  if (!packs.every((p) => typeof p === 'string' && isValidOid(p))) throw badData('manifest names an invalid pack');
  let total = 0;
  const runs: Run[] = (m.runs as unknown[]).map((r) => {
    if (!Array.isArray(r) || r.length !== 3 || !r.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) throw badData('manifest has an invalid run');
    const [p, offset, length] = r as [number, number, number];
    if (p >= packs.length || length === 0) throw badData('manifest has an invalid run');
    total += length;
    return { pack: packs[p] as string, offset, length };
  });
  if (total !== m.size) throw badData(`manifest of sha256:${expectedOid.slice(0, 12)} covers ${total} bytes, not ${String(m.size)}`);
  return { oid: expectedOid, size: m.size as number, runs };
}

export function encodePackIndex(idx: PackIndex): Buffer {
  return gzipSync(JSON.stringify({ version: 1, pack: idx.pack, chunks: idx.chunks }));
}

export function decodePackIndex(data: Buffer, expectedPack: string): PackIndex {
  let raw: { version?: unknown; pack?: unknown; chunks?: unknown };
  try {
    raw = JSON.parse(gunzipSync(data).toString('utf8'));
  } catch (e) {
    throw badData(`pack index ${expectedPack.slice(0, 12)} is unreadable: ${(e as Error).message}`);
  }
  if (raw.version !== 1 || raw.pack !== expectedPack || !Array.isArray(raw.chunks)) throw badData(`pack index ${expectedPack.slice(0, 12)} has an unexpected shape`);
  const chunks = raw.chunks as unknown[];
  for (const c of chunks) {
    if (!Array.isArray(c) || c.length !== 3 || typeof c[0] !== 'string' || !isValidOid(c[0]) || !Number.isSafeInteger(c[1]) || !Number.isSafeInteger(c[2])) {
      throw badData(`pack index ${expectedPack.slice(0, 12)} has an invalid entry`);
    }
  }
  return { pack: expectedPack, chunks: chunks as [string, number, number][] };
}

function badData(message: string): GitmlError {
  return new GitmlError('E_OBJECT_CORRUPT', message, { hint: 'The store holds damaged gitml metadata; run `gitml fsck --store`.' });
}
