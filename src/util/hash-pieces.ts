import { Worker } from 'node:worker_threads';

/**
 * The sha256 of a whole file and of consecutive pieces of it, computed on another thread. A push of a
 * large object cuts it into chunks on the main thread; naming every chunk (a sha256 each) and checking
 * the whole object (one more) were two thirds of that thread's work while the second core waited.
 * Here the main thread says where pieces end, as it finds the cuts, and takes the pieces' hashes back
 * in order; the thread reads the bytes itself (the page cache has them, just read) through the same
 * file descriptor, so both threads read the same file even if the path is replaced meanwhile, and no
 * bytes cross threads.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const fd = workerData.fd;
const named = workerData.pieces;
const buffer = Buffer.allocUnsafe(1 << 20);
const whole = workerData.whole ? createHash('sha256') : null;
const ends = [];
let finished = false;
let at = 0;          // bytes read and hashed so far
let piece = createHash('sha256');
let waking = null;

parentPort.on('message', (m) => {
  if (m.ends) for (const e of m.ends) ends.push(e);
  if (m.finish) finished = true;
  if (waking) { const w = waking; waking = null; w(); }
});

function readAt(position, length) {
  let n = 0;
  while (n < length) {
    const r = fs.readSync(fd, buffer, n, length - n, position + n);
    if (r === 0) break;
    n += r;
  }
  return n;
}

async function run() {
  for (;;) {
    if (ends.length === 0 && !finished) await new Promise((r) => { waking = r; });
    const out = [];
    // Hash up to each known end, one read at most per MiB; answer once per batch of ends.
    while (ends.length > 0) {
      const end = ends[0];
      if (end < at) throw Object.assign(new Error('piece ends must increase'), { code: 'E_INTERNAL' });
      const n = readAt(at, Math.min(buffer.length, end - at));
      if (n === 0 && end > at) {
        parentPort.postMessage({ hashes: out, short: { at, end } });
        return;
      }
      const view = buffer.subarray(0, n);
      if (whole) whole.update(view);
      if (named) piece.update(view);
      at += n;
      if (at === end) {
        if (named) {
          out.push(piece.digest('hex'));
          piece = createHash('sha256');
        }
        ends.shift();
      }
    }
    if (out.length > 0) parentPort.postMessage({ hashes: out });
    if (finished && ends.length === 0) {
      // The rest of the file, past the last piece: a file longer than its pieces shows in its size.
      for (let n = whole ? readAt(at, buffer.length) : 0; n > 0; n = readAt(at, buffer.length)) {
        whole.update(buffer.subarray(0, n));
        at += n;
      }
      parentPort.postMessage({ done: { sha256: whole ? whole.digest('hex') : null, size: at } });
      return;
    }
  }
}
run().catch((e) => parentPort.postMessage({ error: { message: e.message, code: e.code } }));
`;

export interface FileHash {
  sha256: string;
  size: number;
}

type Reply =
  | { hashes: string[]; short?: { at: number; end: number } }
  | { done: { sha256: string | null; size: number } }
  | { error: { message: string; code?: string } };

/**
 * Hashes the file open at `fd` (which must stay open until `finish` settles or `close` is called) in
 * pieces: `cut` the ends of the next pieces (offsets from the start of the file, increasing), take
 * their sha256s with `next` in the same order, then `finish` for the whole file's sha256 and size.
 * With `{ pieces: false }` only the whole file is hashed: `cut` then only says how far the file may be
 * read yet (a file still being written), and no piece is hashed or answered. With `{ whole: false }`
 * only the pieces are: the caller hashes the whole file itself (`finishPieces`), so the thread does
 * one sha256 per byte instead of two.
 */
export class PieceHasher {
  private readonly worker: Worker;
  private readonly hashes: string[] = [];
  private readonly waiters: { resolve: (hash: string) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | null = null;
  private result: { sha256: string | null; size: number } | null = null;
  private finishing: { resolve: (r: { sha256: string | null; size: number }) => void; reject: (e: Error) => void } | null = null;
  private closed = false;

  constructor(fd: number, options: { pieces: boolean; whole?: boolean } = { pieces: true }) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { fd, pieces: options.pieces, whole: options.whole ?? true } });
    this.worker.on('message', (m: Reply) => this.receive(m));
    this.worker.once('error', (e) => this.fail(e));
    this.worker.once('exit', (code) => {
      if (!this.closed && !this.result) this.fail(new Error(`the hashing thread ended (exit ${code}) before it answered`));
    });
  }

  /** Pieces end at these offsets (after the previous piece's end). */
  cut(ends: readonly number[]): void {
    if (ends.length > 0) this.worker.postMessage({ ends });
  }

  /** How many pieces' hashes have arrived and not been taken. */
  get ready(): number {
    return this.hashes.length;
  }

  /** The next piece's sha256 (hex), in the order the pieces were cut. */
  next(): Promise<string> {
    const hash = this.hashes.shift();
    if (hash !== undefined) return Promise.resolve(hash);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** No more pieces: the whole file's sha256 and size (read to its end). Ends the thread. */
  async finish(): Promise<FileHash> {
    const { sha256, size } = await this.end();
    if (sha256 === null) throw new Error('this hasher was made without the whole file hash: call finishPieces');
    return { sha256, size };
  }

  /** No more pieces (a hasher made with `whole: false`): resolves to the bytes the pieces covered once every hash is answered. Ends the thread. */
  async finishPieces(): Promise<number> {
    return (await this.end()).size;
  }

  private end(): Promise<{ sha256: string | null; size: number }> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.result) return Promise.resolve(this.result);
    this.worker.postMessage({ finish: true });
    return new Promise((resolve, reject) => {
      this.finishing = { resolve, reject };
    });
  }

  /** Stops the thread (after a failure elsewhere); answers still awaited are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new Error('the hashing thread was stopped'));
    await this.worker.terminate();
  }

  private receive(m: Reply): void {
    if ('error' in m) return this.fail(Object.assign(new Error(m.error.message), { code: m.error.code }));
    if ('done' in m) {
      this.result = m.done;
      this.closed = true;
      void this.worker.terminate();
      this.finishing?.resolve(m.done);
      return;
    }
    for (const hash of m.hashes) {
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(hash);
      else this.hashes.push(hash);
    }
    // The file ended before a piece did: it is shorter than what was cut from it.
    if (m.short) this.fail(Object.assign(new Error(`the file ended at byte ${m.short.at}, before a piece ending at ${m.short.end}`), { code: 'E_SHORT_READ' }));
  }

  private fail(e: Error): void {
    if (this.failure || this.result) return;
    this.failure = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
    this.finishing?.reject(e);
  }
}
