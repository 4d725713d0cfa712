import type { Readable } from 'node:stream';
import { GitmlError } from '../errors';
import { unsafeReason } from '../safe-path';
import type { ReadBlocks } from '../util/read-blocks';

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
  /**
   * A file on this machine that holds exactly these bytes and that nobody changes (a sealed pack): a
   * store on the same file system may hard-link it instead of copying the bytes.
   */
  localFile?: string;
}

/** One stored object as a listing or a stat sees it. */
export interface StoreEntry {
  key: string;
  size: number;
  /** When it was last written (gc's grace period). */
  modified?: Date;
  /** ETag (S3, Azure) or mtime-inode (directory): changes when the bytes are replaced. */
  etag?: string;
  /** Version id where the service keeps versions. */
  version?: string;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface PutOptions extends RequestOptions {
  /**
   * Replace whatever is stored under the key. Without it a put never overwrites: it answers
   * 'exists' when something is there (conditional writes where the service has them).
   */
  overwrite?: boolean;
  /** The caller has just seen the key absent: a backend may skip a check of its own. */
  checked?: boolean;
}

/** 'exists': something was already stored under the key; nothing was written. */
export type PutResult = 'created' | 'exists';

/**
 * A place that moves bytes under keys: a directory, a bucket, a container. Backends know nothing of
 * gitml's layout (src/objects/ owns that): they put, get (whole or a range), stat, list and delete,
 * and classify their failures (src/store/errors.ts). Every backend passes the same contract tests
 * (test/store/contract.ts). Retries and deadlines are the caller's: a backend makes one attempt and
 * honours the signal it is given.
 *
 * Errors: a missing key is E_OBJECT_MISSING; anything else the backend cannot do is E_STORE_IO with
 * `retryable` set where a retry may help, or E_OBJECT_CORRUPT where the stored data cannot be what
 * was asked for (a range past its end, a key that is a directory).
 */
export interface Store {
  /** Where the store is, for messages. Never contains a credential. */
  readonly url: string;
  stat(key: string, options?: RequestOptions): Promise<StoreEntry | null>;
  /** The object's bytes (or a range of them) as a stream. */
  get(key: string, options?: RequestOptions & { range?: ByteRange }): Promise<Readable>;
  /**
   * Optional, for stores that read into memory they are given (a directory): the bytes as get's, in
   * blocks from `blocks`, each chunk valid only until the next one is asked for. A download that writes
   * every chunk before it asks for the next reads this way without a fresh buffer per read.
   */
  getInBlocks?(key: string, options: RequestOptions & { range?: ByteRange; blocks: ReadBlocks }): Promise<AsyncIterable<Buffer>>;
  /**
   * The ranges of one large object are read fastest one after another (a file system, whose own
   * read-ahead keeps the disk busy), rather than several at once: a download then reads its parts in
   * order and hashes each as it arrives, with nothing to read back.
   */
  readonly readsInOrder?: boolean;
  /**
   * The local file that holds `key`, for a reader that can take the file itself (a hard link on the
   * same file system) instead of its bytes: only a store in a local directory has one. What it holds
   * is as untrusted as any read, and may not exist.
   */
  localFile?(key: string): string;
  put(key: string, body: BodySource, options?: PutOptions): Promise<PutResult>;
  /** Every object whose key starts with `prefix`, with its size (and date, ETag where known). */
  list(prefix: string, options?: RequestOptions): AsyncIterable<StoreEntry>;
  /** Removes the object; removing a missing key is not an error. */
  delete(key: string, options?: RequestOptions): Promise<void>;
  /** Releases connections and handles. */
  close(): Promise<void>;
}

/** Keys are plain relative paths (src/safe-path.ts rules), at most 1024 characters. */
export function assertValidKey(key: string, storeUrl: string): void {
  const why = key.length > 1024 ? 'it is longer than 1024 characters' : unsafeReason(key);
  if (why) throw new GitmlError('E_UNSAFE_PATH', `refusing store key ${JSON.stringify(key)} in ${storeUrl}: ${why}`);
}

export function missingObjectError(storeUrl: string, key: string): GitmlError {
  return new GitmlError('E_OBJECT_MISSING', `${key} is not in the store ${storeUrl}`);
}
