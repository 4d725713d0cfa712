import fs from 'node:fs';
import path from 'node:path';
import { decodePackIndex } from '../../src/objects/format';
import { manifestKey, objectKey, packIndexKey, packKey, PACKS_PREFIX } from '../../src/objects/layout';

/**
 * Where a directory store keeps an object's bytes, read with gitml's own layout and decoders (so tests
 * that damage or look for stored bytes follow the layout instead of restating it).
 */
export type StoredAt = { kind: 'whole'; file: string; offset: 0; length: number } | { kind: 'packed'; file: string; offset: number; length: number } | { kind: 'chunked'; file: string };

/** Every pack of a directory store whose index reads, with its entries. */
export function* packsOf(store: string): Generator<{ packFile: string; chunks: [string, number, number][] }> {
  const packs = path.join(store, PACKS_PREFIX);
  for (const name of fs.existsSync(packs) ? fs.readdirSync(packs) : []) {
    if (!name.endsWith('.idx')) continue;
    const pack = name.slice(0, -4);
    const packFile = path.join(store, packKey(pack));
    if (!fs.existsSync(packFile)) continue;
    yield { packFile, chunks: decodePackIndex(fs.readFileSync(path.join(store, packIndexKey(pack))), pack, fs.statSync(packFile).size, store).chunks };
  }
}

export function storedAt(store: string, oid: string): StoredAt | null {
  const whole = path.join(store, objectKey(oid));
  if (fs.existsSync(whole)) return { kind: 'whole', file: whole, offset: 0, length: fs.statSync(whole).size };
  const manifest = path.join(store, manifestKey(oid));
  if (fs.existsSync(manifest)) return { kind: 'chunked', file: manifest };
  for (const { packFile, chunks } of packsOf(store)) {
    const entry = chunks.find(([hash]) => hash === oid);
    if (entry) return { kind: 'packed', file: packFile, offset: entry[1], length: entry[2] };
  }
  return null;
}

/** Flips one byte of a whole or packed object where the store keeps it (`at` bytes into the object). */
export function flipStoredByte(store: string, oid: string, at: number): void {
  const where = storedAt(store, oid);
  if (!where || where.kind === 'chunked') throw new Error(`sha256:${oid.slice(0, 12)} is not stored whole or packed in ${store}`);
  fs.chmodSync(where.file, 0o644);
  const fd = fs.openSync(where.file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, where.offset + at);
    b[0] = b[0]! ^ 0xff;
    fs.writeSync(fd, b, 0, 1, where.offset + at);
  } finally {
    fs.closeSync(fd);
  }
}

/** Objects stored whole, packed or chunked in a directory store (each oid once). */
export function storedOids(store: string): string[] {
  const out = new Set<string>();
  const walk = (d: string) => {
    for (const e of fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }) : []) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (/^[0-9a-f]{64}$/.test(e.name)) out.add(e.name);
    }
  };
  walk(path.join(store, 'objects'));
  walk(path.join(store, 'manifests'));
  for (const { chunks } of packsOf(store)) for (const [hash] of chunks) out.add(hash);
  return [...out];
}

/** A store seen through its own SDK (tests): keys under a prefix, and whole-key reads and writes. */
export interface RawStore {
  keys(prefix: string): Promise<{ key: string; size: number }[]>;
  readKey(key: string): Promise<Buffer>;
  writeKey(key: string, data: Buffer): Promise<void>;
}

/** Where a store keeps a whole or packed object, through gitml's layout and decoders. */
export async function locateIn(raw: RawStore, oid: string): Promise<{ key: string; offset: number; length: number } | null> {
  const whole = (await raw.keys(objectKey(oid))).find((e) => e.key === objectKey(oid));
  if (whole) return { key: whole.key, offset: 0, length: whole.size };
  const listing = await raw.keys(PACKS_PREFIX);
  for (const e of listing) {
    const m = /^packs\/([0-9a-f]{64})\.idx$/.exec(e.key);
    const pack = listing.find((p) => m && p.key === packKey(m[1]!));
    if (!m || !pack) continue;
    const entry = decodePackIndex(await raw.readKey(e.key), m[1]!, pack.size, 'test').chunks.find(([hash]) => hash === oid);
    if (entry) return { key: pack.key, offset: entry[1], length: entry[2] };
  }
  return null;
}

/** The stored bytes of a whole or packed object. */
export async function readStoredIn(raw: RawStore, oid: string): Promise<Buffer> {
  const at = await locateIn(raw, oid);
  if (!at) throw new Error(`sha256:${oid.slice(0, 12)} is not stored whole or packed`);
  return (await raw.readKey(at.key)).subarray(at.offset, at.offset + at.length);
}

/** Replaces a whole or packed object's bytes where they are stored (same length), behind gitml's back. */
export async function tamperIn(raw: RawStore, oid: string, bytes: Buffer): Promise<void> {
  const at = await locateIn(raw, oid);
  if (!at || at.length !== bytes.length) throw new Error(`cannot tamper with sha256:${oid.slice(0, 12)}`);
  const data = Buffer.from(await raw.readKey(at.key));
  bytes.copy(data, at.offset);
  await raw.writeKey(at.key, data);
}
