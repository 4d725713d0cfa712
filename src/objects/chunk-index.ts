import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, isGitmlError } from '../errors';
import { makeDirs } from '../safe-path';
import { decodePackIndex, maxIndexBytes, type PackIndex } from './format';
import { packIndexKey, parseKey, PACKS_PREFIX } from './layout';
import type { Requests } from '../store/requests';

export interface ChunkLocation {
  pack: string;
  offset: number;
  length: number;
}

/**
 * Which chunks a store has: the union of its pack indexes. Indexes are immutable (named by their
 * pack's hash), so each is downloaded once and kept in a local directory; a push lists `packs/` once
 * and fetches only new indexes. Nothing shared is ever rewritten, which keeps the index right when two
 * clones push at once (at worst both store the same new chunk).
 *
 * An index counts only when its pack is listed beside it with at least the size the index implies:
 * a pack deleted behind gitml's back (a lifecycle rule, an operator) must not be deduplicated against,
 * or a push would publish manifests that point into nothing. Damaged indexes are skipped the same way
 * and reported, so their chunks are simply uploaded again.
 */
export class ChunkIndex {
  private readonly chunks = new Map<string, ChunkLocation>();
  private readonly packs = new Map<string, number>();
  /** Every pack the listing showed, with its size (whether or not its index is usable). */
  readonly listed = new Map<string, number>();
  /** Indexes not used, with why (pack gone or short, index damaged). */
  readonly skipped: { pack: string; why: string }[] = [];

  get size(): number {
    return this.chunks.size;
  }

  get(hash: string): ChunkLocation | undefined {
    return this.chunks.get(hash);
  }

  /** Size of a pack the index knows, or undefined. */
  packSize(pack: string): number | undefined {
    return this.packs.get(pack);
  }

  add(idx: PackIndex, packSize: number): void {
    this.packs.set(idx.pack, packSize);
    for (const [hash, offset, length] of idx.chunks) if (!this.chunks.has(hash)) this.chunks.set(hash, { pack: idx.pack, offset, length });
  }

  static async load(requests: Requests, localDir: string): Promise<ChunkIndex> {
    const index = new ChunkIndex();
    await makeDirs(localDir);
    const listing = await requests.list(PACKS_PREFIX);
    const packSizes = new Map<string, number>();
    const indexes: { pack: string; size: number }[] = [];
    for (const e of listing) {
      const k = parseKey(e.key);
      if (k.kind === 'pack') {
        packSizes.set(k.pack, e.size);
        index.listed.set(k.pack, e.size);
      }
      else if (k.kind === 'index') indexes.push({ pack: k.pack, size: e.size });
    }
    let fetched = 0;
    for (const { pack, size } of indexes) {
      const packSize = packSizes.get(pack);
      if (packSize === undefined) {
        index.skipped.push({ pack, why: 'its pack is not in the store' });
        continue;
      }
      if (size > maxIndexBytes(packSize)) {
        index.skipped.push({ pack, why: `its index (${size} bytes) is larger than a pack of ${packSize} bytes can need` });
        continue;
      }
      const local = path.join(localDir, `${pack}.idx`);
      try {
        let data: Buffer | null = await fsp.readFile(local).catch((e) => (errnoCode(e) === 'ENOENT' ? null : Promise.reject(e)));
        const fresh = data === null;
        data ??= await requests.readAll(packIndexKey(pack), maxIndexBytes(packSize), `pack index ${pack.slice(0, 12)}`);
        if (data === null) continue; // deleted since the listing
        const idx = decodePackIndex(data, pack, packSize, requests.url);
        if (fresh) {
          const tmp = `${local}.${process.pid}.tmp`;
          await fsp.writeFile(tmp, data);
          await fsp.rename(tmp, local);
          fetched++;
        }
        index.add(idx, packSize);
      } catch (e) {
        if (!isGitmlError(e, 'E_OBJECT_CORRUPT')) throw e;
        await fsp.rm(local, { force: true });
        index.skipped.push({ pack, why: e.message });
      }
    }
    // Indexes of packs gc removed from the store are dropped here too.
    for (const name of await fsp.readdir(localDir).catch(() => [] as string[])) {
      const pack = name.endsWith('.idx') ? name.slice(0, -4) : null;
      if (pack && !packSizes.has(pack)) await fsp.rm(path.join(localDir, name), { force: true });
    }
    requests.policy.log.debug({ packs: index.packs.size, chunks: index.size, fetched, skipped: index.skipped.length }, 'chunk index loaded');
    return index;
  }
}

/** Local directory for one store's pack indexes, inside the cache. */
export function indexDirFor(cacheRoot: string, storeUrl: string): string {
  return path.join(cacheRoot, 'chunk-index', createHash('sha256').update(storeUrl).digest('hex').slice(0, 16));
}
