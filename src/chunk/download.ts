import type { Readable } from 'node:stream';
import { GitmlError, isGitmlError } from '../errors';
import type { RangedCacheWriter } from '../cache';
import type { Store } from '../store/store';
import { decodeManifest, manifestKey, packKey, type Manifest } from './format';

/** The object's manifest, or null when the store keeps it whole (or not at all). */
export async function fetchManifest(store: Store, oid: string): Promise<Manifest | null> {
  let stream: Readable;
  try {
    stream = await store.get(manifestKey(oid));
  } catch (e) {
    if (isGitmlError(e, 'E_OBJECT_MISSING')) return null;
    throw e;
  }
  const parts: Buffer[] = [];
  try {
    for await (const c of stream) parts.push(c as Buffer);
  } catch (e) {
    throw new GitmlError('E_STORE_IO', `reading the manifest of sha256:${oid.slice(0, 12)} from ${store.url} broke off: ${(e as Error).message}`, { retryable: true, cause: e });
  }
  return decodeManifest(Buffer.concat(parts), oid);
}

/** One ranged read: `length` bytes of `pack` from `offset`, landing at `at` in the object. */
export interface ReadPlan {
  pack: string;
  offset: number;
  length: number;
  at: number;
}

/** Splits a manifest into ranged reads of at most `maxRead` bytes, with their place in the object. Pure. */
export function planReads(manifest: Manifest, maxRead: number): ReadPlan[] {
  const out: ReadPlan[] = [];
  let at = 0;
  for (const run of manifest.runs) {
    for (let done = 0; done < run.length; ) {
      const length = Math.min(maxRead, run.length - done);
      out.push({ pack: run.pack, offset: run.offset + done, length, at: at + done });
      done += length;
    }
    at += run.length;
  }
  return out;
}

/** Reads one planned range into a ranged cache writer. */
export async function readPlanned(store: Store, plan: ReadPlan, writer: RangedCacheWriter, onBytes: (n: number) => void, signal?: AbortSignal): Promise<void> {
  const stream = await store.get(packKey(plan.pack), { range: { start: plan.offset, end: plan.offset + plan.length }, signal });
  try {
    await writer.writePart({ start: plan.at, end: plan.at + plan.length }, counting(stream, onBytes));
  } catch (e) {
    stream.destroy();
    if (e instanceof GitmlError) throw e;
    throw new GitmlError('E_STORE_IO', `reading pack ${plan.pack.slice(0, 12)} from ${store.url} broke off: ${(e as Error).message}`, { cause: e, retryable: true });
  }
}

/** The object's bytes in order, straight from the packs (fsck, bundles). */
export async function* readChunked(store: Store, manifest: Manifest): AsyncIterable<Buffer> {
  for (const run of manifest.runs) {
    for await (const c of await store.get(packKey(run.pack), { range: { start: run.offset, end: run.offset + run.length } })) yield c as Buffer;
  }
}

async function* counting(stream: Readable, onBytes: (n: number) => void): AsyncIterable<Buffer> {
  for await (const chunk of stream) {
    onBytes((chunk as Buffer).length);
    yield chunk as Buffer;
  }
}
