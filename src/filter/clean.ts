import type { CacheWriter, ObjectCache } from '../cache';
import { formatPointer, MAX_FOREIGN_POINTER_SIZE, parsePointer } from '../pointer';

/**
 * Turns a file's bytes into what git stores: a pointer, with the bytes in the cache.
 * - Empty content stays empty (an empty file needs no object).
 * - Content that already is a pointer is handed back unchanged, so cleaning is idempotent.
 * - Anything else is hashed and written to the cache as it streams in: memory stays flat.
 */
export class Cleaner {
  private head: Buffer[] = [];
  private headBytes = 0;
  private writer: CacheWriter | null = null;

  constructor(private readonly cache: ObjectCache) {}

  async write(chunk: Buffer): Promise<void> {
    if (this.writer) return this.writer.write(chunk);
    this.head.push(chunk);
    this.headBytes += chunk.length;
    // Only content shorter than the pointer limit can be a pointer: past it, stream to the cache.
    if (this.headBytes >= MAX_FOREIGN_POINTER_SIZE) await this.startWriter();
  }

  /** The bytes to give git in place of the content. */
  async finish(): Promise<Buffer> {
    if (!this.writer) {
      const content = Buffer.concat(this.head, this.headBytes);
      if (content.length === 0 || parsePointer(content)) return content;
      await this.startWriter();
    }
    const { oid, size } = await this.writer!.commit();
    return Buffer.from(formatPointer({ oid, size }), 'utf8');
  }

  async abort(): Promise<void> {
    await this.writer?.abort();
  }

  private async startWriter(): Promise<void> {
    this.writer = await this.cache.createWriter();
    const head = this.head;
    this.head = [];
    for (const chunk of head) await this.writer.write(chunk);
  }
}
