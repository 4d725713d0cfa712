import type { Readable } from 'node:stream';
import { GitmlError } from '../errors';

/** Half-open byte range [start, end). */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * What a store reads when it writes an object. `open` may be called more than once (a retry, or one
 * call per part of a multipart upload), so a body is a source of streams, never a single stream.
 */
export interface BodySource {
  size: number;
  open(range?: ByteRange): Readable;
}

export interface StoreEntry {
  key: string;
  size: number;
}

export interface PutOptions {
  signal?: AbortSignal;
  checked?: boolean;
  /**
   * Write even if something is stored under the key. Only for repairs: keys are content-addressed, so
   * a stored object of the wrong size is known to be damaged (a server that kept half an upload), and
   * the caller verifies the bytes it sends.
   */
  replace?: boolean;
}

/** 'exists': an object was already stored under the key (with the same size); nothing was written. */
export type PutResult = 'created' | 'exists';

/**
 * A place that keeps bytes under keys: a directory, a bucket, a container. Every backend implements
 * this one interface and passes the same contract tests (test/store/contract.ts). Keys are built by
 * gitml only (see keys.ts), never from user input.
 *
 * Errors: a missing key is E_OBJECT_MISSING; anything the backend cannot do is E_STORE_IO with
 * `retryable` set where a retry may help; a different object already under the key is E_STORE_CONFLICT.
 */
export interface Store {
  /** Where the store is, for messages. Never contains a credential. */
  readonly url: string;
  /** Size of the object under `key`, or null when there is none. */
  stat(key: string): Promise<{ size: number } | null>;
  /** Sizes of many keys at once (null: absent). Backends batch this as well as they can. */
  statMany(keys: readonly string[]): Promise<Map<string, number | null>>;
  /**
   * Writes an object unless one is already stored under the key; never overwrites a stored object
   * (conditional writes where the service has them) unless `replace` is set. `checked`: the caller has
   * just seen the key absent, so a backend may skip a check of its own.
   */
  put(key: string, body: BodySource, options?: PutOptions): Promise<PutResult>;
  /** The object's bytes (or a range of them) as a stream. */
  get(key: string, options?: { range?: ByteRange; signal?: AbortSignal }): Promise<Readable>;
  /** Every object whose key starts with `prefix`. */
  list(prefix: string): AsyncIterable<StoreEntry>;
  /** Removes the object; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Releases connections and handles. */
  close(): Promise<void>;
}

const KEY_RE = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/;

/** Keys are lower-case relative paths without `.`/`..` segments; anything else is a bug upstream. */
export function assertValidKey(key: string): void {
  if (!KEY_RE.test(key) || key.split('/').some((s) => s === '.' || s === '..') || key.length > 512) {
    throw new GitmlError('E_INTERNAL', `invalid store key: ${JSON.stringify(key)}`);
  }
}

export function missingObjectError(store: Store, key: string): GitmlError {
  return new GitmlError('E_OBJECT_MISSING', `${key} is not in the store ${store.url}`);
}

/** statMany for backends without a batch call: `stat` per key, `concurrency` at once. */
export async function statEach(keys: readonly string[], stat: (key: string) => Promise<{ size: number } | null>, concurrency = 32): Promise<Map<string, number | null>> {
  const out = new Map<string, number | null>();
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      const st = await stat(key);
      out.set(key, st ? st.size : null);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, keys.length) }, worker));
  return out;
}

/**
 * What a put answers when something is already under the key: the same size is the same object
 * (keys are content-derived); another size is a damaged copy, reported, never overwritten.
 */
export function existingResult(store: Store, key: string, stored: number, expected: number): PutResult {
  if (stored !== expected) {
    throw new GitmlError('E_STORE_CONFLICT', `${store.url} already holds ${key} with ${stored} bytes, expected ${expected}: the stored object is damaged`, {
      hint: 'Run `gitml fsck --store` to list damaged objects, then `gitml push --repair` from a clone that has good copies.',
    });
  }
  return 'exists';
}
