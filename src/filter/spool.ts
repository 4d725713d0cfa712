import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeDirs } from '../safe-path';

/**
 * Holds content that must be read in full before it can be answered (git writes a whole file to the
 * filter before it reads the reply). Small content stays in memory; past `memoryLimit` it goes to a
 * temp file, so memory stays flat whatever the size.
 */
export class Spool {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private file: { path: string; handle: fsp.FileHandle } | null = null;

  constructor(
    private readonly tmpDir: string,
    private readonly memoryLimit = 1 << 20,
  ) {}

  get size(): number {
    return this.bytes;
  }

  /** The content when it is still in memory (small), else null. */
  inMemory(): Buffer | null {
    return this.file ? null : Buffer.concat(this.chunks, this.bytes);
  }

  async write(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    if (this.file) {
      await writeAll(this.file.handle, chunk);
      return;
    }
    this.chunks.push(chunk);
    if (this.bytes > this.memoryLimit) {
      await makeDirs(this.tmpDir);
      const file = path.join(this.tmpDir, `spool-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
      this.file = { path: file, handle: await fsp.open(file, 'wx', 0o600) };
      const held = Buffer.concat(this.chunks, this.bytes);
      this.chunks = [];
      await writeAll(this.file.handle, held);
    }
  }

  /** Replays the content in order. */
  async *read(): AsyncIterable<Buffer> {
    if (!this.file) {
      yield* this.chunks;
      return;
    }
    await this.file.handle.close();
    for await (const chunk of fs.createReadStream(this.file.path, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
  }

  async dispose(): Promise<void> {
    if (!this.file) return;
    await this.file.handle.close().catch(() => undefined);
    await fsp.rm(this.file.path, { force: true });
    this.file = null;
  }
}

async function writeAll(handle: fsp.FileHandle, data: Buffer): Promise<void> {
  for (let offset = 0; offset < data.length; ) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}
