import type { ByteRange } from './store';

export interface PartPlan {
  /** 1-based, as S3 numbers parts. */
  number: number;
  range: ByteRange;
}

/** Splits `size` bytes into parts of `partSize` (the last one shorter). S3 allows 10,000 parts: grows the part size to fit. Pure. */
export function partsOf(size: number, partSize: number): PartPlan[] {
  const maxParts = 10_000;
  const chosen = Math.max(partSize, Math.ceil(size / maxParts));
  const parts: PartPlan[] = [];
  for (let start = 0, n = 1; start < size || (size === 0 && n === 1); start += chosen, n++) {
    parts.push({ number: n, range: { start, end: Math.min(size, start + chosen) } });
    if (size === 0) break;
  }
  return parts;
}
