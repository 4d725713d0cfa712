import { Worker } from 'node:worker_threads';

/**
 * sha256 and size of a file, computed on another thread (the file is read there, from the page
 * cache when it was just read here too). A push of a large object cuts and hashes its chunks on the
 * main thread while the whole-object check runs beside it: two cores instead of one pass after the
 * other. The worker reads with its own buffers, so no bytes cross threads.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const hash = createHash('sha256');
let size = 0;
fs.createReadStream(workerData.file, { highWaterMark: 1 << 20 })
  .on('data', (b) => { hash.update(b); size += b.length; })
  .on('error', (e) => parentPort.postMessage({ error: { message: e.message, code: e.code } }))
  .on('end', () => parentPort.postMessage({ sha256: hash.digest('hex'), size }));
`;

export interface FileHash {
  sha256: string;
  size: number;
}

/** Rejects with the read error (its errno code kept) if the file cannot be read. */
export function hashFileOnWorker(file: string): Promise<FileHash> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file } });
    let settled = false;
    worker.once('message', (m: FileHash & { error?: { message: string; code?: string } }) => {
      settled = true;
      void worker.terminate();
      if (m.error) reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
      else resolve({ sha256: m.sha256, size: m.size });
    });
    worker.once('error', (e) => {
      settled = true;
      reject(e);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the hashing thread ended (exit ${code}) before it answered`));
    });
  });
}
