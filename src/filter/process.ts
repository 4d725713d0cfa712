import fsp from 'node:fs/promises';
import path from 'node:path';
import { CONTROL_FILES } from '../git/check-attr';
import type { Readable, Writable } from 'node:stream';
import pLimit from 'p-limit';
import type { Gitml } from '../context';
import { describeError, GitmlError } from '../errors';
import { FLUSH, PktLineReader, PktLineWriter } from '../pktline';
import type { Pointer } from '../pointer';
import { stagingFileFor, worktreePath } from '../worktree';
import { loadWrittenFiles, unchangedSince, type WrittenFile } from '../written';
import { Cleaner } from './clean';
import { SMALL_OBJECT } from '../cache';
import { enforceCacheLimit } from '../cache-limit';
import { hooksPresent, installHooks } from '../install';
import { directCheckoutAllowed, DIRECT_MIN_SIZE, insideSequence, materializeDeferred, placeholder, type Deferred } from './direct';
import { classifySmudgeInput, ensureCached, readCachedSmall, smudgeFailure, streamCached } from './smudge';
import { Spool } from './spool';
import { CHUNKED_MIN_SIZE } from '../objects/layout';
import { detached } from '../util/detached';
import { DelayedFiles } from './delayed';

/**
 * git's long-running filter protocol, version 2 (gitattributes(5), "Long Running Filter Process"):
 * one process serves every file of a git command. Capabilities: clean, smudge and delay.
 *
 * Delay: when git may delay (checkout) and an object is not cached, the download starts in the
 * background and git hears "delayed"; git goes on with other files and later asks which ones are
 * ready. Downloads of a checkout thus run in parallel instead of one file at a time.
 */
export interface FilterServerOptions {
  input: Readable;
  output: Writable;
  gitml: Gitml;
  /** Where messages for the person go (stderr). */
  report: (message: string) => void;
  /** Pointer format for cleaned files (git-lfs's when gitml serves filter.lfs: `filter-process --lfs`). */
  pointerSpec?: string;
}

interface Request {
  command: string;
  pathname: string;
  treeish?: string;
  canDelay: boolean;
}

const CAPABILITIES = ['clean', 'smudge', 'delay'];
/** Small delayed objects fetched in one go at most (the store reads them a few MiB per request). */
const SMALL_BATCH = 1024;
/**
 * Batches fetched at once (each reads `concurrency` ranges at a time): the others wait as slot
 * numbers, so a store slower than git's requests holds no pointer, promise or closure per file.
 */
const BATCHES_IN_FLIGHT = 4;

export class FilterServer {
  private readonly reader: PktLineReader;
  private readonly writer: PktLineWriter;
  private readonly delayed = new DelayedFiles();
  /**
   * Delayed files (slots) whose download succeeded and that git has not been told of yet, in the
   * order they finished. A queue rather than a scan: git asks for the list many times in a checkout
   * of 20,000 files, and a scan (or a race over every pending download) each time costs time and
   * memory in proportion to the whole checkout.
   */
  private readonly ready: number[] = [];
  private pendingDelayed = 0;
  /** Wakes a list_available_blobs that waits for the next download to finish. */
  private wakeLister: (() => void) | null = null;
  private readonly byTreeish = new Map<string, Promise<Gitml>>();
  /** Small objects are read into this on their way to git (answers copy it into their packets). */
  private readonly scratch = Buffer.allocUnsafeSlow(SMALL_OBJECT + 1);
  private readonly downloads: ReturnType<typeof pLimit>;
  private capabilities = new Set<string>();
  private directAllowed: Promise<boolean> | null = null;
  private readonly deferred: Deferred[] = [];
  private written: Promise<Map<string, WrittenFile>> | null = null;
  /** Whether this process added or used cached objects (then gitml.cache.maxsize is checked at the end). */
  private grew = false;
  /** Small delayed objects (slots) waiting to be fetched together (many per store request), by settings. */
  private batch: { gitml: Gitml; slots: number[] }[] = [];
  private batchTimer: NodeJS.Timeout | null = null;
  /** Batches fetched at once: a few, whatever the checkout (the others wait as slot numbers). */
  private readonly batches = pLimit(BATCHES_IN_FLIGHT);

  constructor(private readonly options: FilterServerOptions) {
    this.reader = new PktLineReader(options.input);
    this.writer = new PktLineWriter(options.output);
    this.downloads = pLimit(options.gitml.concurrency);
  }

  async run(): Promise<void> {
    await this.handshake();
    // Like git-lfs: the first time gitml's filter runs in a clone, the clone gets its hooks, so a plain
    // `git push` (a remote not written gitml::) uploads the bytes before the refs move.
    const hooks = this.ensureHooks();
    for (;;) {
      const headers = await this.reader.readTextList();
      if (headers === null) break;
      const request = parseRequest(headers);
      this.options.gitml.log.debug({ request }, 'filter request');
      switch (request.command) {
        case 'clean':
          await this.clean(request);
          break;
        case 'smudge':
          await this.smudge(request);
          break;
        case 'list_available_blobs':
          await this.listAvailable();
          break;
        default:
          throw new GitmlError('E_PROTOCOL', `filter protocol: unknown command ${JSON.stringify(request.command)}`);
      }
    }
    // git closed the pipe: its checkout is written. Now the large files' bytes (git waits for this).
    await materializeDeferred(this.deferred, this.options.report);
    // Copies made for files git never asked for again (it stopped early) are not left behind.
    for (const staged of this.delayed.leftoverStaged()) await fsp.rm(staged, { force: true }).catch(() => undefined);
    if (this.grew) await this.keepCacheUnderLimit();
    await hooks;
  }

  private async ensureHooks(): Promise<void> {
    const gitml = this.options.gitml;
    if (!gitml.repo.workTree) return;
    try {
      if (!(await hooksPresent(gitml.repo.git, gitml.repo.commonDir))) await installHooks(gitml.repo.git);
    } catch (e) {
      gitml.log.debug({ err: String(e) }, 'could not install hooks');
    }
  }

  /** gitml.cache.maxsize, after a command that added to the cache. A failure is only a warning. */
  private async keepCacheUnderLimit(): Promise<void> {
    try {
      const r = await enforceCacheLimit(this.options.gitml);
      if (r && r.stillOver > 0) this.options.report(`gitml: warning: the cache is ${r.stillOver} bytes over gitml.cache.maxsize; the rest is not in the store yet (push it)`);
    } catch (e) {
      this.options.report(`gitml: warning: could not keep the cache under gitml.cache.maxsize: ${describeError(e)}`);
    }
  }

  /** A delayed file's object was downloaded and verified by this process. */
  private downloaded(slot: number): void {
    this.delayed.markVerified(slot);
    this.grew = true;
  }

  /** The object a file holds if gitml wrote it and it has not been touched since (src/written.ts). */
  private async writtenByGitml(pathname: string): Promise<Pick<Pointer, 'oid' | 'size'> | undefined> {
    const gitml = this.options.gitml;
    if (!gitml.repo.workTree) return undefined;
    this.written ??= loadWrittenFiles(gitml.repo.gitDir).catch(() => new Map());
    const record = (await this.written).get(pathname);
    if (!record) return undefined;
    const st = await fsp.lstat(worktreePath(gitml.repo.workTree, pathname), { bigint: true }).catch(() => null);
    const unchanged = st !== null && unchangedSince(record, st);
    gitml.log.debug({ pathname, unchanged }, 'clean of a file gitml wrote');
    return unchanged ? { oid: record.oid, size: record.size } : undefined;
  }

  /** Direct checkout for this file? Only large files, in a checkout, where the repository allows it and no step of a sequence follows. */
  private async useDirect(request: Request, pointer: Pointer): Promise<boolean> {
    if (!request.canDelay || pointer.size < DIRECT_MIN_SIZE) return false;
    this.directAllowed ??= directCheckoutAllowed(this.options.gitml).catch(() => false);
    return (await this.directAllowed) && !insideSequence(this.options.gitml);
  }

  private async handshake(): Promise<void> {
    const hello = await this.reader.readTextList();
    if (!hello || hello[0] !== 'git-filter-client' || !hello.includes('version=2')) {
      throw new GitmlError('E_PROTOCOL', `filter protocol: unexpected greeting ${JSON.stringify(hello)}`, {
        hint: 'gitml filter-process is started by git (filter.gitml.process); run `gitml install` to configure it.',
      });
    }
    await this.writer.texts(['git-filter-server', 'version=2']);
    const offered = (await this.reader.readTextList()) ?? [];
    const wanted = offered.filter((c) => c.startsWith('capability=')).map((c) => c.slice('capability='.length));
    this.capabilities = new Set(wanted.filter((c) => CAPABILITIES.includes(c)));
    await this.writer.texts([...this.capabilities].map((c) => `capability=${c}`));
  }

  /** Reads content packets up to the flush, handing each to `sink`. */
  private async readContent(sink: (chunk: Buffer) => Promise<void>): Promise<void> {
    for (;;) {
      const packet = this.reader.poll() ?? (await this.reader.read());
      if (packet === null) throw new GitmlError('E_PROTOCOL', 'filter protocol: git closed the pipe inside a file');
      if (packet === FLUSH) return;
      await sink(packet);
    }
  }

  private async clean(request: Request): Promise<void> {
    // git's and gitml's own files stay plain text whatever a .gitattributes pattern says: stored as a
    // pointer, every clone would read a pointer where it expects its settings.
    if (CONTROL_FILES.includes(path.posix.basename(request.pathname))) return this.echo();
    const cleaner = new Cleaner(this.options.gitml.cache, await this.writtenByGitml(request.pathname), this.options.pointerSpec);
    let failure: unknown = null;
    await this.readContent(async (chunk) => {
      if (failure) return;
      try {
        await cleaner.write(chunk);
      } catch (e) {
        failure = e;
        await cleaner.abort();
      }
    });
    let output: Buffer | null = null;
    if (!failure) {
      try {
        output = await cleaner.finish();
      } catch (e) {
        failure = e;
      }
    }
    if (failure || !output) {
      this.options.report(`gitml: cannot add '${request.pathname}': ${describeError(failure)}`);
      await this.writer.texts(['status=error']);
      return;
    }
    // A clean of bytes the cache had (git comparing racily clean files in `git status`) adds nothing,
    // so it does not send the filter through the cache's size limit, which lists the whole cache.
    if (cleaner.stored) this.grew = true;
    await this.writer.answer(output);
  }

  /** Answers with the content exactly as git sent it (spooled to disk past 1 MiB). */
  private async echo(): Promise<void> {
    const spool = new Spool(this.options.gitml.cache.tmpDir);
    try {
      await this.readContent((chunk) => spool.write(chunk));
      await this.writer.texts(['status=success']);
      for await (const chunk of spool.read()) await this.writer.data(chunk);
      await this.writer.flush();
      await this.writer.flush();
    } finally {
      await spool.dispose();
    }
  }

  private async smudge(request: Request): Promise<void> {
    const gitml = this.options.gitml;
    const spool = new Spool(gitml.cache.tmpDir);
    try {
      await this.readContent((chunk) => spool.write(chunk));
      // git asks again for a file it was told was delayed, with empty content.
      const earlier = spool.size === 0 ? this.delayed.take(request.pathname) : undefined;
      if (earlier) {
        if (earlier.error) return await this.writer.texts(['status=error']); // reported when it failed
        if (earlier.direct) return await this.sendPlaceholder(request, earlier.pointer, earlier.gitml, earlier.staged);
        return await this.sendObject(request, earlier.pointer, earlier.gitml, earlier.verified);
      }
      const small = spool.inMemory();
      const kind = small ? classifySmudgeInput(small, gitml.env) : ({ kind: 'passthrough' } as const);
      if (kind.kind === 'passthrough') {
        await this.writer.texts(['status=success']);
        for await (const chunk of spool.read()) await this.writer.data(chunk);
        await this.writer.texts([]);
        await this.writer.flush();
        return;
      }
      const pointer = kind.pointer;
      let target: Gitml;
      try {
        target = await this.gitmlFor(request);
      } catch (e) {
        return await this.smudgeFailed(request, pointer, gitml, e);
      }
      const direct = await this.useDirect(request, pointer);
      if (!(await target.cache.has(pointer.oid, pointer.size)) && request.canDelay && this.capabilities.has('delay')) {
        this.startDelayed(request.pathname, pointer, target, direct);
        await this.writer.texts(['status=delayed']);
        return;
      }
      let verified: boolean;
      try {
        verified = (await ensureCached(target, pointer, request.pathname)) === 'downloaded';
      } catch (e) {
        return await this.smudgeFailed(request, pointer, target, e);
      }
      if (direct) await this.sendPlaceholder(request, pointer, target);
      else await this.sendObject(request, pointer, target, verified);
    } finally {
      await spool.dispose();
    }
  }

  private startDelayed(pathname: string, pointer: Pointer, gitml: Gitml, direct: boolean): void {
    const slot = this.delayed.add(pathname, pointer, gitml, direct);
    this.pendingDelayed++;
    if (pointer.size < CHUNKED_MIN_SIZE) {
      // Small objects are fetched in batches: a packed store answers hundreds per ranged read.
      let group = this.batch.find((b) => b.gitml === gitml);
      if (!group) this.batch.push((group = { gitml, slots: [] }));
      group.slots.push(slot);
      if (group.slots.length >= SMALL_BATCH) this.flushBatch();
      else this.batchTimer ??= setTimeout(() => this.flushBatch(), 20);
      return;
    }
    void this.downloads(async () => {
      try {
        // A file checked out directly gets its work-tree copy in the same pass as the cache's (when
        // the download makes one: placeStaged checks that it is there and whole).
        const staged = (direct && gitml.repo.workTree ? await stagingFileFor(gitml.cache, gitml.repo.workTree) : null) ?? undefined;
        this.delayed.setStaged(slot, staged);
        if ((await ensureCached(gitml, pointer, pathname, staged)) === 'downloaded') this.downloaded(slot);
      } catch (e) {
        await this.failed(slot, pathname, pointer, gitml, e);
      } finally {
        this.settle(slot);
      }
    });
  }

  /**
   * Said now, for every file that fails: git stops at the first failure it asks for, and would never
   * tell the person about the others.
   */
  private async failed(slot: number, pathname: string, pointer: Pointer, gitml: Gitml, error: unknown): Promise<void> {
    this.delayed.markFailed(slot, error);
    const storeUrl = await gitml.store().then((s) => s.url, () => null);
    this.options.report(smudgeFailure(pathname, pointer, storeUrl, error));
  }

  /**
   * A delayed download ended, well or not: a waiting list_available_blobs may answer now. Every
   * delayed file must get here, whatever fails, or git would wait for it forever.
   */
  private settle(slot: number): void {
    this.pendingDelayed--;
    if (!this.delayed.failed(slot)) this.ready.push(slot);
    const wake = this.wakeLister;
    this.wakeLister = null;
    wake?.();
  }

  /** Queues the small objects gathered so far (git asked for them, or enough have gathered). */
  private flushBatch(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    for (const group of this.batch) void this.batches(() => this.fetchBatch(group));
    this.batch = [];
  }

  /**
   * One batch of small objects, fetched many per ranged read; what that does not bring is tried on
   * its own, which also says what is wrong with it. Every slot settles, whatever fails.
   */
  private async fetchBatch({ gitml, slots }: { gitml: Gitml; slots: number[] }): Promise<void> {
    const refs = slots.map((slot) => ({ ...this.delayed.pointer(slot), path: this.delayed.pathname(slot) }));
    let fetched = new Set<string>();
    try {
      const packed = await (await gitml.objects()).downloadPacked(refs, gitml.cache, () => undefined, gitml.concurrency);
      fetched = new Set(packed.filter((o) => o.ok).map((o) => o.ref.oid));
    } catch {
      // Each object is tried on its own below.
    }
    await Promise.all(
      slots.map(async (slot, n) => {
        const ref = refs[n]!;
        if (fetched.has(ref.oid)) {
          this.downloaded(slot);
          return this.settle(slot);
        }
        await this.downloads(async () => {
          const pathname = ref.path ?? '';
          try {
            if ((await ensureCached(gitml, ref, pathname)) === 'downloaded') this.downloaded(slot);
          } catch (err) {
            await this.failed(slot, pathname, ref, gitml, err);
          } finally {
            this.settle(slot);
          }
        });
      }),
    );
  }

  /**
   * Files whose download finished. Successes first, failures only once nothing else is left: git
   * gives up the rest of a checkout at the first file that fails, so every good file is written
   * before a damaged or missing one stops it (as when their bytes were already cached).
   */
  private async listAvailable(): Promise<void> {
    // git waits for answers now: what is queued goes out.
    if (this.batch.length > 0) this.flushBatch();
    const listed: string[] = [];
    do {
      while (this.ready.length === 0 && this.pendingDelayed > 0) await new Promise<void>((wake) => (this.wakeLister = wake));
      for (const slot of this.ready.splice(0)) {
        const pathname = this.delayed.pathname(slot);
        if (pathname !== undefined) listed.push(pathname);
      }
    } while (listed.length === 0 && this.pendingDelayed > 0);
    // Nothing succeeded and nothing is pending: what is left (failures) is listed, so git asks for
    // each and hears status=error.
    if (listed.length === 0) listed.push(...this.delayed.pathnames());
    await this.writer.texts(listed.map((p) => `pathname=${p}`));
    await this.writer.texts(['status=success']);
  }

  /** `verified`: this process downloaded and checked the bytes just now (they are not hashed again). */
  private async sendObject(request: Request, pointer: Pointer, gitml: Gitml, verified: boolean): Promise<void> {
    this.grew = true;
    if (pointer.size <= SMALL_OBJECT) {
      let data: Buffer;
      try {
        data = await readCachedSmall(gitml, pointer, !verified, this.scratch);
      } catch (e) {
        this.options.report(smudgeFailure(request.pathname, pointer, null, e));
        await this.writer.texts(['status=error']);
        return;
      }
      return this.writer.answer(data);
    }
    await this.writer.texts(['status=success']);
    try {
      await streamCached(gitml, pointer, (chunk) => this.writer.data(chunk), !verified);
    } catch (e) {
      // Content already went out: an error status after it makes git discard the file.
      await this.writer.flush();
      this.options.report(smudgeFailure(request.pathname, pointer, null, e));
      await this.writer.texts(['status=error']);
      return;
    }
    await this.writer.flush();
    await this.writer.flush();
  }

  /** git writes the pointer for now; the bytes follow when git closes the filter (direct.ts). */
  private async sendPlaceholder(request: Request, pointer: Pointer, gitml: Gitml, staged?: string): Promise<void> {
    this.grew = true;
    this.deferred.push({ pathname: request.pathname, pointer, gitml, staged });
    await this.writer.answer(placeholder(pointer));
  }

  private async smudgeFailed(request: Request, pointer: Pointer, gitml: Gitml, error: unknown): Promise<void> {
    const storeUrl = await gitml.store().then((s) => s.url, () => null);
    this.options.report(smudgeFailure(request.pathname, pointer, storeUrl, error));
    await this.writer.texts(['status=error']);
  }

  /** Settings as of the commit being checked out, so a clone finds the store its .gitmlconfig names. */
  private gitmlFor(request: Request): Promise<Gitml> {
    const base = this.options.gitml;
    if (!request.treeish) return Promise.resolve(base);
    let found = this.byTreeish.get(request.treeish);
    if (!found) {
      found = base.atTreeish(request.treeish);
      this.byTreeish.set(request.treeish, found);
    }
    return found;
  }
}

function parseRequest(headers: string[]): Request {
  const fields = new Map<string, string>();
  for (const line of headers) {
    const eq = line.indexOf('=');
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return {
    command: fields.get('command') ?? '',
    // Detached from its line: a delayed file's path is kept until git takes it.
    pathname: detached(fields.get('pathname') ?? ''),
    treeish: fields.get('treeish') || undefined,
    canDelay: fields.get('can-delay') === '1',
  };
}
