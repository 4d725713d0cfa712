import { createHash } from 'node:crypto';
import type { Gitml } from '../context';
import { manifestKey } from '../chunk/format';
import { scanRangeForPointers } from '../git/scan';
import { objectKey } from '../store/keys';
import type { BodySource } from '../store/store';
import { readStoredObject, type ObjectRef } from '../transfer/objects';
import { runAll } from '../transfer/queue';
import { withRetry } from '../transfer/retry';

export interface RepairReport {
  checked: number;
  repaired: ObjectRef[];
  /** Damaged or missing in the store, and not in this clone's cache either. */
  unrepairable: ObjectRef[];
}

/**
 * `gitml push --repair`: every object the given commits reach is read back from the store and hashed;
 * a missing or damaged one (a flipped byte, a truncated file, another object's bytes, a pack gone) is
 * uploaded again from this clone's cache as a whole object, replacing what is there, and its manifest
 * (if any) is removed so readers take the good copy. Cache copies are verified on the way out.
 */
export async function repairStore(gitml: Gitml, commits: readonly string[]): Promise<RepairReport> {
  const pointers = await scanRangeForPointers(gitml.repo.git, commits, []);
  const refs = [...new Map(pointers.map((p) => [p.pointer.oid, { oid: p.pointer.oid, size: p.pointer.size, path: p.path }])).values()];
  const store = await gitml.store();
  const report: RepairReport = { checked: refs.length, repaired: [], unrepairable: [] };
  const outcomes = await runAll(refs, gitml.concurrency, async (ref) => {
    if (await intact(ref, gitml)) return 'ok' as const;
    if (!(await gitml.cache.has(ref.oid, ref.size))) return 'unrepairable' as const;
    const cached = createHash('sha256');
    let bytes = 0;
    for await (const c of gitml.cache.openRead(ref.oid, undefined, ref.size)) {
      cached.update(c as Buffer);
      bytes += (c as Buffer).length;
    }
    if (cached.digest('hex') !== ref.oid || bytes !== ref.size) return 'unrepairable' as const;
    const body: BodySource = { size: ref.size, open: (range) => gitml.cache.openRead(ref.oid, range, ref.size) };
    await withRetry(() => store.put(objectKey(ref.oid), body, { replace: true }), gitml.retry);
    await store.delete(manifestKey(ref.oid));
    if (!(await intact(ref, gitml))) return 'unrepairable' as const;
    return 'repaired' as const;
  });
  for (const o of outcomes) {
    if (!o.ok) throw o.error;
    if (o.value === 'repaired') report.repaired.push(o.item);
    if (o.value === 'unrepairable') report.unrepairable.push(o.item);
  }
  return report;
}

async function intact(ref: ObjectRef, gitml: Gitml): Promise<boolean> {
  const store = await gitml.store();
  try {
    const h = createHash('sha256');
    let size = 0;
    for await (const c of readStoredObject(store, ref)) {
      h.update(c);
      size += c.length;
    }
    return size === ref.size && h.digest('hex') === ref.oid;
  } catch {
    return false;
  }
}
