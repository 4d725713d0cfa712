/**
 * Three-way merge of pointer files (merge.gitml.driver). Pointers cannot be merged line by line, so:
 * the same on both sides, or changed on one side only, resolves cleanly; changed on both is a conflict
 * that keeps "ours" and lets the person choose (git checkout --ours/--theirs). Pure.
 */
export type MergeOutcome = { result: 'ours' | 'theirs'; conflict: false } | { result: 'ours'; conflict: true };

export function mergePointers(base: Buffer, ours: Buffer, theirs: Buffer): MergeOutcome {
  if (ours.equals(theirs)) return { result: 'ours', conflict: false };
  if (base.equals(ours)) return { result: 'theirs', conflict: false };
  if (base.equals(theirs)) return { result: 'ours', conflict: false };
  return { result: 'ours', conflict: true };
}
