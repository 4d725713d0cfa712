import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { errnoCode, GitmlError } from '../errors';
import { withRetry, type RetryPolicy } from '../transfer/retry';
import type { Store } from '../store/store';
import { decodePackIndex, packIdOfIndexKey, packIndexKey, PACKS_PREFIX, type PackIndex } from './format';
import { makeDirs } from '../safe-path';

export interface ChunkLocation {
  pack: string;
  offset: number;
  length: number;
}

/**
 * Which chunks a store already has: the union of its pack indexes. Pack indexes are immutable (named
 * by their pack's hash), so each is downloaded once and kept in a local directory; a push lists the
 * store's indexes and fetches only the new ones. Nothing shared is ever rewritten, which keeps the
 * index correct when two clones push at once (at worst both store the same new chunk).
 */
export class ChunkIndex {
  private readonly chunks = new Map<string, ChunkLocation>();
  private readonly packs = new Set<string>();

  get size(): number {
    return this.chunks.size;
  }

  get(hash: string): ChunkLocation | undefined {
    return this.chunks.get(hash);
  }

  add(idx: PackIndex): void {
    this.packs.add(idx.pack);
    for (const [hash, offset, length] of idx.chunks) if (!this.chunks.has(hash)) this.chunks.set(hash, { pack: idx.pack, offset, length });
  }

  static async load(store: Store, localDir: string, log: Logger, retry: RetryPolicy): Promise<ChunkIndex> {
    const index = new ChunkIndex();
    await makeDirs(localDir);
    let fetched = 0;
    // The listing is retried as a whole (it is one or a few requests), each index file on its own.
    const keys = await withRetry(async () => {
      const found: string[] = [];
      for await (const entry of store.list(PACKS_PREFIX)) found.push(entry.key);
      return found;
    }, retry);
    for (const key of keys) {
      const pack = packIdOfIndexKey(key);
      if (!pack || index.packs.has(pack)) continue;
      const local = path.join(localDir, `${pack}.idx`);
      let data: Buffer;
      try {
        data = await fsp.readFile(local);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
        data = await withRetry(async () => {
          const parts: Buffer[] = [];
          try {
            for await (const c of await store.get(packIndexKey(pack))) parts.push(c as Buffer);
          } catch (e) {
            if (e instanceof GitmlError) throw e;
            throw new GitmlError('E_STORE_IO', `reading pack index ${pack.slice(0, 12)} broke off: ${(e as Error).message}`, { retryable: true, cause: e });
          }
          return Buffer.concat(parts);
        }, retry);
        const tmp = `${local}.${process.pid}.tmp`;
        await fsp.writeFile(tmp, data);
        await fsp.rename(tmp, local);
        fetched++;
      }
      index.add(decodePackIndex(data, pack));
    }
    log.debug({ packs: index.packs.size, chunks: index.size, fetched }, 'chunk index loaded');
    return index;
  }
}

/** Local directory for one store's pack indexes, inside the cache. */
export function indexDirFor(cacheRoot: string, storeUrl: string): string {
  return path.join(cacheRoot, 'chunk-index', createHash('sha256').update(storeUrl).digest('hex').slice(0, 16));
}
