import type { Gitml } from './context';
import { isStored } from './objects/object-store';
import { cacheMaxSizeOf } from './config';

export interface Eviction {
  /** Bytes in the cache before. */
  total: number;
  limit: number;
  evicted: number;
  bytes: number;
  /** Bytes over the limit that could not be freed (objects the store does not have yet). */
  stillOver: number;
}

/**
 * Keeps the cache under `gitml.cache.maxsize` (git-lfs users' "files stored twice", #2147): objects
 * the store already has are removed, least recently used first, until the cache fits. An object the
 * store lacks (work not pushed yet) is never removed. Null when no limit is set or the cache fits.
 */
export async function enforceCacheLimit(gitml: Gitml, limit: number | null = cacheMaxSizeOf(gitml.settings)): Promise<Eviction | null> {
  if (limit === null) return null;
  const all: { oid: string; size: number; used: number }[] = [];
  let total = 0;
  for await (const o of gitml.cache.list()) {
    all.push({ oid: o.oid, size: o.size, used: o.used });
    total += o.size;
  }
  if (total <= limit) return null;
  all.sort((a, b) => a.used - b.used);
  const objects = await gitml.objects();
  const result: Eviction = { total, limit, evicted: 0, bytes: 0, stillOver: 0 };
  // Oldest first, in batches, until enough is freed: the store is asked only about candidates.
  for (let at = 0; at < all.length && total - result.bytes > limit; at += 256) {
    const batch = all.slice(at, at + 256);
    const presence = await objects.presence(batch, Math.max(gitml.concurrency, 16));
    for (const o of batch) {
      if (total - result.bytes <= limit) break;
      const p = presence.get(o.oid);
      if (!isStored(p)) continue;
      await gitml.cache.remove(o.oid);
      result.evicted++;
      result.bytes += o.size;
    }
  }
  result.stillOver = Math.max(0, total - result.bytes - limit);
  gitml.log.debug({ ...result }, 'cache limit enforced');
  return result;
}
