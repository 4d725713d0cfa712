import { GitmlError } from '../errors';
import { isValidOid } from '../pointer';

/**
 * How gitml keeps objects in a store (docs/store.md, docs/chunking.md). This module is the only place
 * that knows key names and which representation an object gets; everything else asks src/objects/.
 *
 *   packs/<packid>.pack          chunks' bytes, then a copy of the index; <packid> is the sha256 of the entries (chunk sha256, offset, length)
 *   packs/<packid>.idx           gzip JSON: the chunks in that pack (hash, offset, length)
 *   manifests/<aa>/<bb>/<oid>    a chunked object: gzip JSON runs of (pack, offset, length)
 *   objects/<aa>/<bb>/<oid>      a whole object, named by the sha256 of its bytes
 *
 * Representations (representationFor): a large object is *chunked* (content-defined chunks in packs,
 * and a manifest); a small one is *packed*: its bytes are one chunk in a pack, and since a chunk is
 * named by the sha256 of its bytes, the pack index entry named by the object's oid is the object (no
 * manifest, no request of its own: a thousand small files are a few pack uploads). With chunking off,
 * and in stores written by earlier versions, objects are *whole* under objects/.
 *   locks/<id>.json              who is writing (push) or collecting (gc) right now
 *   repos/<id>.json              the repositories that use this store (gc must consult them all)
 *
 * A pack and its index are written before any manifest that uses them; a manifest is what makes a
 * chunked object "stored", an index entry a packed one. Whole objects stay readable beside both.
 */
export const OBJECTS_PREFIX = 'objects/';
export const MANIFESTS_PREFIX = 'manifests/';
export const PACKS_PREFIX = 'packs/';
export const LOCKS_PREFIX = 'locks/';
export const REPOS_PREFIX = 'repos/';

/** Objects at least this large are stored as chunks (when chunking is on); smaller ones packed. */
export const CHUNKED_MIN_SIZE = 1024 * 1024;

export type Representation = 'chunked' | 'packed' | 'whole';

/** How a new object of `size` bytes is stored. Pure. */
export function representationFor(size: number, chunking: boolean): Representation {
  if (!chunking) return 'whole';
  return size >= CHUNKED_MIN_SIZE ? 'chunked' : 'packed';
}

function fanned(prefix: string, oid: string): string {
  if (!isValidOid(oid)) throw new GitmlError('E_INTERNAL', `refusing to build a store key from an invalid oid: ${JSON.stringify(oid)}`);
  return `${prefix}${oid.slice(0, 2)}/${oid.slice(2, 4)}/${oid}`;
}

export function objectKey(oid: string): string {
  return fanned(OBJECTS_PREFIX, oid);
}

export function manifestKey(oid: string): string {
  return fanned(MANIFESTS_PREFIX, oid);
}

export function packKey(packId: string): string {
  if (!isValidOid(packId)) throw new GitmlError('E_INTERNAL', `invalid pack id ${JSON.stringify(packId)}`);
  return `${PACKS_PREFIX}${packId}.pack`;
}

export function packIndexKey(packId: string): string {
  if (!isValidOid(packId)) throw new GitmlError('E_INTERNAL', `invalid pack id ${JSON.stringify(packId)}`);
  return `${PACKS_PREFIX}${packId}.idx`;
}

export type ParsedKey =
  | { kind: 'object'; oid: string }
  | { kind: 'manifest'; oid: string }
  | { kind: 'pack'; pack: string }
  | { kind: 'index'; pack: string }
  | { kind: 'lock'; id: string }
  | { kind: 'repo'; id: string }
  | { kind: 'other' };

/** What a store key is, by its name alone. Pure. */
export function parseKey(key: string): ParsedKey {
  let m = /^(objects|manifests)\/([0-9a-f]{2})\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(key);
  if (m && m[4]!.startsWith(m[2]! + m[3]!)) return { kind: m[1] === 'objects' ? 'object' : 'manifest', oid: m[4]! };
  m = /^packs\/([0-9a-f]{64})\.(pack|idx)$/.exec(key);
  if (m) return m[2] === 'pack' ? { kind: 'pack', pack: m[1]! } : { kind: 'index', pack: m[1]! };
  m = /^locks\/([a-z0-9-]{1,64})\.json$/.exec(key);
  if (m) return { kind: 'lock', id: m[1]! };
  m = /^repos\/([0-9a-f]{16,64})\.json$/.exec(key);
  if (m) return { kind: 'repo', id: m[1]! };
  return { kind: 'other' };
}
