import type { Gitml } from '../context';
import { scanRangeForPointers } from '../git/scan';
import type { ObjectRef } from '../objects/object-store';
import { runAll } from '../util/pool';
import { sha256Of } from '../hash';

export interface RepairReport {
  checked: number;
  repaired: ObjectRef[];
  /** Damaged or missing in the store, and not in this clone's cache either. */
  unrepairable: ObjectRef[];
}

/**
 * `gitml push --repair`: every object the given commits reach is read back from the store and hashed;
 * a missing or damaged one (a flipped byte, a truncated file, another object's bytes, a pack gone) is
 * stored again from this clone's cache as a whole object, replacing what is there, and its manifest
 * (if any) is removed so readers take the good copy. Cache copies are verified first.
 */
export async function repairStore(gitml: Gitml, commits: readonly string[]): Promise<RepairReport> {
  const pointers = await scanRangeForPointers(gitml.repo.git, commits, []);
  const refs = [...new Map(pointers.map((p) => [p.pointer.oid, { oid: p.pointer.oid, size: p.pointer.size, path: p.path }])).values()];
  const objects = await gitml.objects();
  const report: RepairReport = { checked: refs.length, repaired: [], unrepairable: [] };
  const outcomes = await runAll(refs, gitml.concurrency, async (ref) => {
    if ((await objects.verify(ref)).state === 'ok') return 'ok' as const;
    if (!(await gitml.cache.has(ref.oid, ref.size))) return 'unrepairable' as const;
    const cached = await sha256Of(gitml.cache.openRead(ref.oid, undefined, ref.size));
    if (cached.sha256 !== ref.oid || cached.size !== ref.size) return 'unrepairable' as const;
    await objects.replace(ref, gitml.cache);
    return (await objects.verify(ref)).state === 'ok' ? ('repaired' as const) : ('unrepairable' as const);
  });
  for (const o of outcomes) {
    if (!o.ok) throw o.error;
    if (o.value === 'repaired') report.repaired.push(o.item);
    if (o.value === 'unrepairable') report.unrepairable.push(o.item);
  }
  return report;
}
