import { SMALL_OBJECT, type CacheWriter, type ObjectCache } from '../cache';
import { GitmlError } from '../errors';
import { formatPointer, GITML_SPEC, MAX_FOREIGN_POINTER_SIZE, parsePointer, type Pointer } from '../pointer';

/**
 * Turns a file's bytes into what git stores: a pointer, with the bytes in the cache.
 * - Empty content stays empty (an empty file needs no object).
 * - Content that already is a pointer is handed back unchanged, so cleaning is idempotent.
 * - Anything else is hashed and written to the cache: up to SMALL_OBJECT at once at the end, larger
 *   content as it streams in, so memory stays flat.
 */
export class Cleaner {
  private head: Buffer[] = [];
  private headBytes = 0;
  private writer: CacheWriter | null = null;
  private knownBytes = 0;
  /** Whether finish() put new bytes into the cache (not for an object it had, a pointer, or a file gitml wrote). */
  stored = false;

  /**
   * `known`: the content is a file gitml itself wrote from the cache as this object, verified, and
   * the file has not been touched since (src/written.ts: same inode, size and a back-dated mtime).
   * git sends it anyway; it is counted, neither hashed nor copied into the cache again.
   */
  constructor(
    private readonly cache: ObjectCache,
    private readonly known?: Pick<Pointer, 'oid' | 'size'>,
    /** The pointer format written: gitml's, or git-lfs's when gitml serves as the lfs filter (migrate). */
    private readonly spec: string = GITML_SPEC,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    if (this.known) {
      this.knownBytes += chunk.length;
      return;
    }
    if (this.writer) return this.writer.write(chunk);
    this.head.push(chunk);
    this.headBytes += chunk.length;
    // Small content is stored in one go at the end; past that, it streams to the cache.
    if (this.headBytes > SMALL_OBJECT) await this.startWriter();
  }

  /** The bytes to give git in place of the content. */
  async finish(): Promise<Buffer> {
    if (this.known) {
      if (this.knownBytes !== this.known.size || !(await this.cache.has(this.known.oid, this.known.size))) {
        // The file changed after gitml wrote it (or its object left the cache): these bytes are not
        // stored anywhere, so they must not get a pointer. git keeps the file as modified.
        throw new GitmlError('E_CHANGED', 'the file changed while gitml refreshed the index', { hint: 'Run `git add` on it again.' });
      }
      return Buffer.from(formatPointer({ ...this.known, spec: this.spec }), 'utf8');
    }
    if (!this.writer) {
      const content = Buffer.concat(this.head, this.headBytes);
      // Only content shorter than the pointer limit can be a pointer (cleaning is idempotent).
      if (content.length === 0 || (content.length < MAX_FOREIGN_POINTER_SIZE && parsePointer(content))) return content;
      const { oid, size, stored } = this.cache.putSmall(content);
      this.stored = stored;
      return Buffer.from(formatPointer({ oid, size, spec: this.spec }), 'utf8');
    }
    const { oid, size } = await this.writer!.commit();
    this.stored = true;
    return Buffer.from(formatPointer({ oid, size, spec: this.spec }), 'utf8');
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
