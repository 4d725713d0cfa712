import { Worker } from 'node:worker_threads';

/**
 * Many small files written on a thread of their own, each checked against the sha256 it must have,
 * written under a temp name and renamed into place. The thread makes plain blocking calls: a clone of
 * 20,000 small files spent 1.7 s of its event loop just dispatching 140,000 promise-based file
 * operations (stat, open, write, close, mkdir, rename) to the thread pool, time git waited for.
 * Nothing here knows what the files are; the caller names the temp file and the target.
 */
export interface FileJob {
  /** Where the bytes are in the batch's buffer. */
  offset: number;
  size: number;
  /** The sha256 (hex) the bytes must have; nothing is written when they do not. */
  sha256: string;
  tmp: string;
  target: string;
}

/** null: the target holds the bytes (written now or already there). */
export type FileJobResult = null | { mismatch: string } | { error: { message: string; code?: string } };

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
function store(data, job, fsync) {
  const bytes = data.subarray(job.offset, job.offset + job.size);
  const got = createHash('sha256').update(bytes).digest('hex');
  if (got !== job.sha256) return { mismatch: got };
  try {
    if (fs.statSync(job.target).size === job.size) return null;
  } catch {}
  try {
    const fd = fs.openSync(job.tmp, 'wx', 0o644);
    try {
      for (let at = 0; at < bytes.length; ) at += fs.writeSync(fd, bytes, at, bytes.length - at);
      if (fsync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.renameSync(job.tmp, job.target);
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
      fs.mkdirSync(path.dirname(job.target), { recursive: true });
      fs.renameSync(job.tmp, job.target);
    }
    return null;
  } catch (e) {
    try { fs.rmSync(job.tmp, { force: true }); } catch {}
    return { error: { message: e.message, code: e.code } };
  }
}
parentPort.on('message', (m) => {
  const data = new Uint8Array(m.slot, 0, m.length);
  parentPort.postMessage({ id: m.id, results: m.jobs.map((job) => store(data, job, m.fsync)) });
});
`;

/** Bytes of one shared slot; a batch larger than this gets a slot of its own. */
const SLOT_BYTES = 4 << 20;
/** Slots in use at once: the thread's memory is these, whatever the number of batches waiting. */
const SLOTS = 4;

/**
 * One long-lived thread for a process (started on first use). Bytes reach it through a few reused
 * shared buffers (copied in, never transferred: a transferred buffer is garbage in the thread until
 * its collector runs, and a clone of 20,000 files held ~90 MiB of them). It keeps the process alive
 * only while a batch is in flight; if it dies, every batch waiting on it fails with the reason.
 */
export class FileWriterThread {
  private worker: Worker | null = null;
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (r: FileJobResult[]) => void; reject: (e: Error) => void; slot: SharedArrayBuffer }>();
  private readonly free: SharedArrayBuffer[] = [];
  private slots = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly fsync: boolean) {}

  /**
   * Writes the jobs of `length` bytes that `fill` puts into the buffer it is given (a store's read
   * lands there directly: no copy of its own to collect later); one result per job, in order.
   */
  async write(length: number, fill: (into: Uint8Array) => Promise<void>, jobs: readonly FileJob[]): Promise<FileJobResult[]> {
    if (jobs.length === 0) return [];
    const slot = await this.acquire(length);
    try {
      await fill(new Uint8Array(slot, 0, length));
    } catch (e) {
      this.release(slot);
      throw e;
    }
    const worker = this.start();
    const id = this.next++;
    return new Promise<FileJobResult[]>((resolve, reject) => {
      if (this.waiting.size === 0) worker.ref();
      this.waiting.set(id, { resolve, reject, slot });
      worker.postMessage({ id, slot, length, jobs, fsync: this.fsync });
    });
  }

  /** Stops the thread (batches still waiting fail). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }

  private async acquire(bytes: number): Promise<SharedArrayBuffer> {
    if (bytes > SLOT_BYTES) return new SharedArrayBuffer(bytes);
    while (this.free.length === 0 && this.slots >= SLOTS) await new Promise<void>((resolve) => this.queue.push(resolve));
    const reused = this.free.pop();
    if (reused) return reused;
    this.slots++;
    return new SharedArrayBuffer(SLOT_BYTES);
  }

  private release(slot: SharedArrayBuffer): void {
    if (slot.byteLength !== SLOT_BYTES) return;
    this.free.push(slot);
    this.queue.shift()?.();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // The thread keeps nothing between batches: a small heap of its own (by default it could grow as
    // large as the main one, garbage included).
    const worker = new Worker(WORKER_SOURCE, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 48 } });
    worker.on('message', (m: { id: number; results: FileJobResult[] }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) worker.unref();
      if (!w) return;
      this.release(w.slot);
      w.resolve(m.results);
    });
    const fail = (why: Error) => {
      if (this.worker === worker) this.worker = null;
      for (const w of this.waiting.values()) {
        this.release(w.slot);
        w.reject(why);
      }
      this.waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the file-writing thread ended (exit ${code})`)));
    worker.unref();
    this.worker = worker;
    return worker;
  }
}
