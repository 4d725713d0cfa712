import { Readable } from 'node:stream';

/**
 * Time limits for requests to a store. A request has a deadline for its answer; a body being read
 * has an idle limit (no byte for `idleMs` while gitml waits for one fails it), so a connection the
 * server accepted and never answers, or one that stalls half-way, fails within the retry policy
 * instead of holding a push or a checkout forever.
 */

/** A signal that fires after `ms`, or when `outer` fires, whichever is first. */
export function deadlineSignal(ms: number, outer?: AbortSignal): AbortSignal {
  const timer = AbortSignal.timeout(Math.max(1, Math.round(ms)));
  return outer ? AbortSignal.any([outer, timer]) : timer;
}

/**
 * `source`'s chunks, failing with `onIdle()`'s error when the source gives nothing for `idleMs` while
 * it is being waited on. A slow consumer is not idleness: the clock runs only during the wait. Pulls
 * one chunk at a time, only when asked (a source whose chunks are valid until the next is asked for
 * stays so). `stop` runs when the reading ends, however it ends.
 */
export async function* idleLimited<T>(source: AsyncIterable<T>, idleMs: number, onIdle: () => Error, stop: () => void = () => undefined): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let abandoned = false;
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(onIdle()), idleMs);
      });
      const next = iterator.next();
      // If the clock wins, this read is abandoned: its eventual failure must not go unhandled. (Set
      // before the race looks at `next`, so a failure of the source itself counts as settled.)
      let settled = false;
      next.then(
        () => (settled = true),
        () => (settled = true),
      );
      let r: IteratorResult<T>;
      try {
        r = await Promise.race([next, idle]);
      } catch (e) {
        abandoned = !settled;
        throw e;
      } finally {
        clearTimeout(timer);
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    // A read still in flight (the clock won) cannot be returned from (that would wait for it): the
    // source ends it after stop().
    if (!abandoned) await iterator.return?.();
    stop();
  }
}

/** idleLimited for a stream, as a stream; the stream is destroyed when the reading ends. */
export function idleGuard(stream: Readable, idleMs: number, onIdle: () => Error): Readable {
  return Readable.from(idleLimited(stream as AsyncIterable<Buffer>, idleMs, onIdle, () => stream.destroy()), { objectMode: false });
}
