import type { Readable } from 'node:stream';

/**
 * HTTP SDKs pipe a request body into the socket, and a body stream that fails half-way (a read
 * error on the cache file) is not noticed: the request waits for bytes forever. A guard ties every
 * body it opens to an AbortController, so a failing body aborts its request, and the caller gets the
 * body's own error back instead of a hang.
 */
export class BodyGuard {
  private readonly controller = new AbortController();
  private failure: unknown = null;

  constructor(outer?: AbortSignal) {
    if (outer) {
      if (outer.aborted) this.controller.abort(outer.reason);
      else outer.addEventListener('abort', () => this.controller.abort(outer.reason), { once: true });
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  watch(stream: Readable): Readable {
    stream.once('error', (e) => {
      this.failure ??= e;
      this.controller.abort(e);
    });
    return stream;
  }

  /** The error to report: what broke the body, if anything did, else `e`. */
  explain(e: unknown): unknown {
    return this.failure ?? e;
  }
}
