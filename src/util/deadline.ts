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
 * `stream`'s chunks, failing with `onIdle()`'s error when the source gives nothing for `idleMs` while
 * it is being waited on. A slow consumer is not idleness: the clock runs only during the wait.
 */
export function idleGuard(stream: Readable, idleMs: number, onIdle: () => Error): Readable {
  async function* guarded(): AsyncGenerator<Buffer> {
    const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    try {
      for (;;) {
        let timer: NodeJS.Timeout | undefined;
        const idle = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(onIdle()), idleMs);
        });
        const next = iterator.next();
        // If the clock wins, this read is abandoned: its eventual failure must not go unhandled.
        next.catch(() => undefined);
        let r: IteratorResult<Buffer>;
        try {
          r = await Promise.race([next, idle]);
        } finally {
          clearTimeout(timer);
        }
        if (r.done) return;
        yield r.value;
      }
    } finally {
      stream.destroy();
    }
  }
  return Readable.from(guarded(), { objectMode: false });
}
