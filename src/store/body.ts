import type { Readable } from 'node:stream';
import { errnoCode, GitmlError } from '../errors';

/**
 * HTTP SDKs pipe a request body into the socket, and a body stream that fails half-way (a read
 * error on the cache file) is not noticed: the request waits for bytes forever. A guard ties every
 * body it opens to an AbortController, so a failing body aborts its request, and the caller gets the
 * body's own error back, about the local disk it came from, instead of a hang or a store error.
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

  /** The error to report: what broke the body (a local read), if anything did, else `e`. */
  explain(e: unknown): unknown {
    const f = this.failure;
    if (f === null) return e;
    if (f instanceof GitmlError) return f;
    const code = errnoCode(f);
    return new GitmlError('E_CACHE_IO', `cannot read the local copy being uploaded: ${f instanceof Error ? f.message : String(f)}`, {
      hint: code === 'ENOENT' ? 'It was removed while the upload ran; add the file again.' : 'Check the disk holding the gitml cache (`gitml env` shows where it is).',
      cause: f,
    });
  }
}
