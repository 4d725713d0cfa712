import type { Readable } from 'node:stream';
import { GitmlError } from '../errors';
import { runAll } from '../util/pool';
import { BodyGuard } from './body';
import { partsOf, type PartPlan } from './parts';
import type { BodySource, ByteRange, PutOptions, PutResult, RequestOptions, StoreEntry } from './store';

/**
 * The one put skeleton of the cloud backends: an existence check unless the caller just made one, a
 * single request below the multipart threshold, parts read by range straight from the body above it
 * (a bounded number in flight, each re-readable), the service's conditional write so nothing is ever
 * replaced by accident, a failed body reported as the local read error it is, and a lost race
 * (precondition failed) answered as 'exists'. A backend supplies only its requests.
 */
export interface PutDriver {
  readonly url: string;
  readonly multipartThreshold: number;
  readonly partSize: number;
  readonly partConcurrency: number;
  stat(key: string, options?: RequestOptions): Promise<StoreEntry | null>;
  /** One request with the whole body. `ifAbsent`: fail with a precondition error if the key exists. */
  putWhole(key: string, open: () => Readable, size: number, ifAbsent: boolean, signal: AbortSignal): Promise<void>;
  /** A multipart upload of `plan`, each part read with `open` (use uploadAllParts for the parts). */
  putParts(key: string, plan: PartPlan[], open: (range: ByteRange) => Readable, ifAbsent: boolean, signal: AbortSignal): Promise<void>;
  isPreconditionFailed(e: unknown): boolean;
  toError(what: string, e: unknown): GitmlError;
}

export async function conditionalPut(d: PutDriver, key: string, body: BodySource, options: PutOptions): Promise<PutResult> {
  const ifAbsent = !options.overwrite;
  // Servers that ignore If-None-Match (some S3-compatible ones) still never get a blind overwrite,
  // unless the caller checked just before (then only a concurrent writer of the same key can race).
  if (ifAbsent && !options.checked && (await d.stat(key, { signal: options.signal }))) return 'exists';
  const guard = new BodyGuard(options.signal);
  try {
    if (body.size < d.multipartThreshold) {
      await d.putWhole(key, () => guard.watch(body.open()), body.size, ifAbsent, guard.signal);
    } else {
      await d.putParts(key, partsOf(body.size, d.partSize), (range) => guard.watch(body.open(range)), ifAbsent, guard.signal);
    }
    return 'created';
  } catch (caught) {
    const e = guard.explain(caught);
    if (ifAbsent && d.isPreconditionFailed(e)) return 'exists';
    if (e instanceof GitmlError) throw e;
    throw d.toError(`cannot upload ${key}`, e);
  }
}

/** Runs every part, `concurrency` at once; the first failure aborts the rest (through `signal`). */
export async function uploadAllParts<R>(plan: PartPlan[], concurrency: number, signal: AbortSignal, part: (p: PartPlan, signal: AbortSignal) => Promise<R>): Promise<R[]> {
  const controller = new AbortController();
  const both = AbortSignal.any([signal, controller.signal]);
  const outcomes = await runAll(plan, concurrency, async (p) => {
    try {
      return await part(p, both);
    } catch (e) {
      controller.abort(e);
      throw e;
    }
  });
  const failed = outcomes.find((o) => !o.ok);
  if (failed && !failed.ok) throw failed.error;
  return outcomes.map((o) => (o as { value: R }).value);
}
