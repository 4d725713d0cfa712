import type { Readable } from 'node:stream';
import type { Logger } from '../log';
import { GitmlError, isGitmlError } from '../errors';
import type { BodySource, ByteRange, PutOptions, PutResult, Store, StoreEntry } from './store';
import { deadlineSignal, idleGuard, idleLimited } from '../util/deadline';
import type { ReadBlocks } from '../util/read-blocks';
import { withRetry, type RetryPolicy } from '../util/retry';

/**
 * Every request gitml makes to a store goes through here (src/objects/, data by reference): one retry policy, one deadline per
 * attempt (a request that gets no answer within `timeoutMs` fails as a transient fault and is tried
 * again), an idle limit on every body read, and bounded reads of metadata. Damage is not retried.
 */
export interface RequestPolicy {
  retry: RetryPolicy;
  /** Longest wait for an answer, or for the next bytes of a body. */
  timeoutMs: number;
  log: Logger;
}

/** Slowest upload rate gitml waits for before it calls an upload stalled: 256 KiB/s. */
const SLOWEST_UPLOAD_BYTES_PER_MS = 256;

export class Requests {
  constructor(
    readonly store: Store,
    readonly policy: RequestPolicy,
  ) {}

  get url(): string {
    return this.store.url;
  }

  /** `fn` with a deadline per attempt and retries of transient failures. */
  call<T>(what: string, fn: (signal: AbortSignal) => Promise<T>, timeoutMs = this.policy.timeoutMs): Promise<T> {
    return withRetry(
      async () => {
        const signal = deadlineSignal(timeoutMs);
        try {
          return await fn(signal);
        } catch (e) {
          if (signal.aborted && (signal.reason as { name?: string } | undefined)?.name === 'TimeoutError') throw this.timedOut(what, timeoutMs, e);
          throw e;
        }
      },
      this.policy.retry,
      (err, attempt, delay) => this.policy.log.warn({ what, attempt, delay, err: String(err) }, 'store request failed, retrying'),
    );
  }

  stat(key: string): Promise<StoreEntry | null> {
    return this.call(`check ${key}`, (signal) => this.store.stat(key, { signal }));
  }

  /** One put attempt per try, with a deadline that grows with the body (a slow link is not a hang). */
  put(key: string, body: BodySource, options: PutOptions = {}): Promise<PutResult> {
    const ms = this.policy.timeoutMs + Math.ceil(body.size / SLOWEST_UPLOAD_BYTES_PER_MS);
    return this.call(`upload ${key}`, (signal) => this.store.put(key, body, { ...options, signal }), ms);
  }

  /**
   * A put under a content-derived key: something already there with the same size is the same bytes
   * ('exists'); another size is a damaged copy (half an upload a server kept), replaced by these
   * bytes, which the caller has verified.
   */
  async putNamed(key: string, body: BodySource, options: { checked?: boolean } = {}): Promise<PutResult> {
    const result = await this.put(key, body, { checked: options.checked });
    if (result === 'created') return result;
    const st = await this.stat(key);
    if (st && st.size === body.size) return 'exists';
    this.policy.log.warn({ key, stored: st?.size, expected: body.size }, 'replacing a stored copy of the wrong size');
    return this.put(key, body, { overwrite: true });
  }

  delete(key: string): Promise<void> {
    return this.call(`delete ${key}`, (signal) => this.store.delete(key, { signal }));
  }

  /** Every entry under `prefix`; the listing as a whole is retried. */
  list(prefix: string): Promise<StoreEntry[]> {
    return this.call(`list ${prefix}`, async (signal) => {
      const out: StoreEntry[] = [];
      for await (const e of this.store.list(prefix, { signal })) out.push(e);
      return out;
    }, this.policy.timeoutMs * 4);
  }

  /** Whether anything is stored under `prefix` (one listing page at most). */
  any(prefix: string): Promise<boolean> {
    return this.call(`list ${prefix}`, async (signal) => {
      for await (const _ of this.store.list(prefix, { signal })) return true;
      return false;
    });
  }

  /**
   * A body (or a range) as a stream that fails when the store stops sending for `timeoutMs`. The
   * answer itself has the same deadline. One attempt: callers that read it decide about retries.
   */
  async open(key: string, range?: ByteRange): Promise<Readable> {
    const { body, stop, idle } = await this.download(key, (signal) => this.store.get(key, { range, signal }));
    return idleGuard(body, this.policy.timeoutMs, () => {
      stop();
      return idle();
    });
  }

  /**
   * As open, in blocks from `blocks` where the store reads into memory it is given (Store.getInBlocks):
   * each chunk is valid only until the next is asked for. Null when the store has no such reads.
   */
  async openInBlocks(key: string, range: ByteRange | undefined, blocks: ReadBlocks): Promise<AsyncIterable<Buffer> | null> {
    const getInBlocks = this.store.getInBlocks?.bind(this.store);
    if (!getInBlocks) return null;
    const { body, stop, idle } = await this.download(key, (signal) => getInBlocks(key, { range, signal, blocks }));
    return idleLimited(body, this.policy.timeoutMs, idle, stop);
  }

  /**
   * The store's answer to a download within the answer deadline. From then on the clock is the idle
   * limit, not that deadline: `stop` ends the body's request, `idle` is the error a stalled body gets.
   */
  private async download<T>(key: string, get: (signal: AbortSignal) => Promise<T>): Promise<{ body: T; stop: () => void; idle: () => GitmlError }> {
    const answer = deadlineSignal(this.policy.timeoutMs);
    const controller = new AbortController();
    let body: T;
    try {
      body = await get(AbortSignal.any([answer, controller.signal]));
    } catch (e) {
      if (answer.aborted) throw this.timedOut(`download ${key}`, this.policy.timeoutMs, e);
      throw e;
    }
    return { body, stop: () => controller.abort(), idle: () => this.timedOut(`download ${key}`, this.policy.timeoutMs) };
  }

  /**
   * A whole small object (metadata) read into memory, at most `maxBytes`: anything longer is damage.
   * Null when the key is absent. Retried as a whole on transient failures.
   */
  readAll(key: string, maxBytes: number, what: string): Promise<Buffer | null> {
    return this.call(`read ${key}`, async () => {
      let stream: Readable;
      try {
        stream = await this.open(key);
      } catch (e) {
        if (isGitmlError(e, 'E_OBJECT_MISSING')) return null;
        throw e;
      }
      const parts: Buffer[] = [];
      let total = 0;
      try {
        for await (const c of stream) {
          total += (c as Buffer).length;
          if (total > maxBytes) throw damagedData(`${what} in ${this.url} (${key}) is larger than the ${maxBytes} bytes it can be`);
          parts.push(c as Buffer);
        }
      } catch (e) {
        stream.destroy();
        if (e instanceof GitmlError) throw e;
        throw new GitmlError('E_STORE_IO', `reading ${key} from ${this.url} broke off: ${(e as Error).message}`, { cause: e, retryable: true });
      }
      return Buffer.concat(parts, total);
    });
  }

  /**
   * Why a read of `range` from `key` came back short: the object is shorter than asked (damage, not
   * retried) or the connection broke (retried). Asks the store for the object's size once.
   */
  async shortRead(key: string, range: ByteRange, got: number, cause?: unknown): Promise<GitmlError> {
    const st = await this.stat(key).catch(() => undefined);
    if (st === null) return damagedData(`${key} is gone from ${this.url} (it was being read)`);
    if (st && st.size < range.end) return damagedData(`${key} in ${this.url} is ${st.size} bytes, but bytes up to ${range.end} were expected`);
    return new GitmlError('E_STORE_IO', `a read of ${key} from ${this.url} ended after ${got} of ${range.end - range.start} bytes`, { retryable: true, cause });
  }

  private timedOut(what: string, ms: number, cause?: unknown): GitmlError {
    return new GitmlError('E_STORE_IO', `${what} in ${this.url}: no answer within ${Math.round(ms / 1000)} s`, {
      retryable: true,
      cause,
      hint: 'The store accepted the connection but did not answer; gitml retried. Check the network, or raise gitml.timeout (seconds) on a very slow link.',
    });
  }
}

/** Stored data that cannot be what it should: damage, reported with what to run, never retried. */
export function damagedData(message: string): GitmlError {
  return new GitmlError('E_OBJECT_CORRUPT', message, {
    hint: 'The store holds damaged gitml data. Run `gitml fsck --store` to list it, then `gitml push --repair` from a clone that has the files.',
  });
}
