import { createHash } from 'node:crypto';
import { SMALL_OBJECT } from '../cache';
import type { Gitml } from '../context';
import { skipSmudge } from '../config';
import { describeError, GitmlError } from '../errors';
import { parsePointer, shortOid, type Pointer } from '../pointer';
import { formatBytes } from '../progress';



/** What smudge does with content git hands it. Pure. */
export function classifySmudgeInput(content: Buffer, env: NodeJS.ProcessEnv): { kind: 'pointer'; pointer: Pointer } | { kind: 'passthrough' } {
  const pointer = parsePointer(content);
  if (!pointer || skipSmudge(env)) return { kind: 'passthrough' };
  return { kind: 'pointer', pointer };
}

/**
 * Makes sure the object is in the cache, downloading and verifying it when it is not. `copyTo`: a new
 * file that may also receive the bytes in the same pass (ObjectStore.download says when it does).
 */
export async function ensureCached(gitml: Gitml, pointer: Pointer, path: string, copyTo?: string): Promise<'cached' | 'downloaded'> {
  if (await gitml.cache.has(pointer.oid, pointer.size)) return 'cached';
  await (await gitml.objects()).download({ oid: pointer.oid, size: pointer.size, path }, gitml.cache, { copyTo });
  return 'downloaded';
}

/**
 * Streams a cached object to `out`. With `verify`, the bytes are hashed on the way: a damaged cache
 * file is detected at its end, removed, and reported as E_OBJECT_CORRUPT, so the caller can tell git
 * to discard what it received.
 */
export async function streamCached(gitml: Gitml, pointer: Pointer, out: (chunk: Buffer) => Promise<void>, verify: boolean): Promise<void> {
  if (pointer.size <= SMALL_OBJECT) return out(await readCachedSmall(gitml, pointer, verify));
  const hash = verify ? createHash('sha256') : null;
  let size = 0;
  for await (const chunk of gitml.cache.openRead(pointer.oid, undefined, pointer.size)) {
    hash?.update(chunk as Buffer);
    size += (chunk as Buffer).length;
    await out(chunk as Buffer);
  }
  await checkCached(gitml, pointer, size, hash?.digest('hex'), verify);
}

/**
 * A small cached object's bytes (SMALL_OBJECT), checked before anything is sent: git can be answered
 * in one write, and a damaged copy is refused before any of it went out (E_OBJECT_CORRUPT). With
 * `scratch`, a view of it (ObjectCache.readSmall): the caller copies what it keeps.
 */
export async function readCachedSmall(gitml: Gitml, pointer: Pointer, verify: boolean, scratch?: Buffer): Promise<Buffer> {
  const data = gitml.cache.readSmall(pointer.oid, pointer.size, scratch);
  await checkCached(gitml, pointer, data.length, verify ? createHash('sha256').update(data).digest('hex') : undefined, verify);
  return data;
}

async function checkCached(gitml: Gitml, pointer: Pointer, size: number, digest: string | undefined, verify: boolean): Promise<void> {
  // An object this process just downloaded (not verified again) was just written: its clock is fresh.
  if (verify) gitml.cache.touch(pointer.oid);
  if (size !== pointer.size || (digest !== undefined && digest !== pointer.oid)) {
    await gitml.cache.remove(pointer.oid);
    throw new GitmlError('E_OBJECT_CORRUPT', `the cached copy of sha256:${shortOid(pointer.oid)} is damaged; it was removed from the cache`, {
      hint: 'Run the checkout again: the object will be downloaded from the store.',
    });
  }
}

/** One message that names the file, the object, the store and the cause, and what to run next. */
export function smudgeFailure(path: string, pointer: Pointer, storeUrl: string | null, error: unknown): string {
  const what = `gitml: cannot check out '${path}' (sha256:${shortOid(pointer.oid)}, ${formatBytes(pointer.size)})`;
  const where = storeUrl ? ` from ${storeUrl}` : '';
  const hint = error instanceof GitmlError && error.hint ? error.hint : 'Run `gitml env` to see which store and cache are used.';
  const cause = error instanceof GitmlError ? error.message : describeError(error);
  return `${what}${where}: ${cause}\n  hint: ${hint}\n  To check out pointers now and fetch the bytes later: GITML_SKIP_SMUDGE=1 git checkout ..., then \`gitml pull\`.`;
}
