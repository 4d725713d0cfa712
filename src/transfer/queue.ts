import pLimit from 'p-limit';

export type Outcome<T, R> = { item: T; ok: true; value: R } | { item: T; ok: false; error: unknown };

/**
 * Runs `worker` over `items` with at most `concurrency` at once. One item failing does not stop the
 * others: every outcome is returned, in the order of `items`, so callers can report all failures.
 */
export async function runAll<T, R>(items: readonly T[], concurrency: number, worker: (item: T) => Promise<R>): Promise<Outcome<T, R>[]> {
  const limit = pLimit(Math.max(1, concurrency));
  return Promise.all(
    items.map((item) =>
      limit(async (): Promise<Outcome<T, R>> => {
        try {
          return { item, ok: true, value: await worker(item) };
        } catch (error) {
          return { item, ok: false, error };
        }
      }),
    ),
  );
}

/** Largest first: the long transfers start early, so the tail of a batch is short ones. */
export function largestFirst<T extends { size: number }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => b.size - a.size);
}
