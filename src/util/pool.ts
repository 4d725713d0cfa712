/**
 * Bounded concurrency over a list or a lazy sequence. At most `concurrency` items are in flight and
 * only they are held: no promise per item is made up front, so a plan of millions of entries (or an
 * endless one from a hostile manifest) costs memory for `concurrency` items, not for the plan.
 */
export type Outcome<T, R> = { item: T; ok: true; value: R } | { item: T; ok: false; error: unknown };

/**
 * Runs `worker` over `items` with at most `concurrency` at once. One item failing does not stop the
 * others: every outcome is returned, in the order of `items`, so callers can report all failures.
 */
export async function runAll<T, R>(items: readonly T[], concurrency: number, worker: (item: T) => Promise<R>): Promise<Outcome<T, R>[]> {
  const out: Outcome<T, R>[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      const item = items[i]!;
      try {
        out[i] = { item, ok: true, value: await worker(item) };
      } catch (error) {
        out[i] = { item, ok: false, error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, lane));
  return out;
}

/**
 * Runs `worker` over `items`, `concurrency` at once, and hands each result to `use` in the items'
 * order, one group of `concurrency` items after another: no more than a group's results are ever
 * held, whatever the number of items. A failure is thrown once its group has ended; later groups do
 * not start.
 */
export async function runInOrder<T, R>(items: readonly T[], concurrency: number, worker: (item: T) => Promise<R>, use: (item: T, value: R) => void): Promise<void> {
  const size = Math.max(1, concurrency);
  for (let at = 0; at < items.length; at += size) {
    const outcomes = await runAll(items.slice(at, at + size), size, worker);
    const failed = outcomes.find((o) => !o.ok);
    if (failed && !failed.ok) throw failed.error;
    for (const o of outcomes) if (o.ok) use(o.item, o.value);
  }
}

/**
 * Runs `worker` over a sequence pulled lazily, at most `concurrency` at once. The first failure stops
 * taking new items; the ones in flight finish, then that failure is thrown.
 */
export async function forEachBounded<T>(items: Iterable<T> | AsyncIterable<T>, concurrency: number, worker: (item: T) => Promise<void>): Promise<void> {
  const iterator = Symbol.asyncIterator in items ? (items as AsyncIterable<T>)[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]();
  let failure: { error: unknown } | null = null;
  let pulling: Promise<unknown> = Promise.resolve();
  const take = async (): Promise<IteratorResult<T>> => {
    // One pull at a time: iterators are not re-entrant.
    const result = pulling.then(() => iterator.next());
    pulling = result.catch(() => undefined);
    return result;
  };
  const lane = async () => {
    while (!failure) {
      const r = await take();
      if (r.done) return;
      try {
        await worker(r.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
  if (failure) throw (failure as { error: unknown }).error;
}

/** Largest first: the long transfers start early, so the tail of a batch is short ones. Pure. */
export function largestFirst<T extends { size: number }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => b.size - a.size);
}
