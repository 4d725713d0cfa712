import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { gitObjectsDirectory, type GitContext } from './exec';

/** What a loose object file says about an object, as far as a scan for small blobs cares. */
export type LooseRead =
  /** The whole object: its type and content (at most the limit asked for). */
  | { type: string; content: Buffer }
  /** An object larger than the limit, whatever its type: not a pointer. */
  | 'large'
  /** Not answered here (packed, in an alternate, missing, or not readable as expected): ask git. */
  | null;

/** "commit 1234567890\0": the longest header a loose object of a sane size has. */
const HEADER_MAX = 32;
/** zlib's stream header and checksum plus a stored block's framing: what deflate adds at worst to a small input. */
const DEFLATE_SLACK = 64;
/**
 * Misses in a row after which only one object in SAMPLE_EVERY is looked for: a packed repository
 * answers nothing. A hit looks at every object again (a range whose old commits are packed and whose
 * new files are loose: rev-list names the commits first).
 */
const MISSES_IN_A_ROW = 256;
const SAMPLE_EVERY = 32;

/**
 * Reads small objects straight from the repository's loose object files, for scans that look at many
 * small blobs right after they were committed (a push of 20,000 new files). `git cat-file --batch`
 * opens and maps each loose object three times, and `--batch-check` once more: 1.3 s of CPU for
 * 20,000 loose pointer blobs, where one open, one read and an inflate here take 0.18 s. Only what the
 * file answers plainly is answered; anything else (no such file, a header that does not parse, a
 * size that does not match) is left to git, which reads packs and alternates and reports damage in
 * its own words. After MISSES_IN_A_ROW misses in a row it looks for one object in SAMPLE_EVERY until
 * one is there, so a scan of a packed history costs a failed open for one object in 32.
 *
 * Synchronous on purpose: the file is a few hundred bytes, and a read through the thread pool costs
 * more than the read.
 */
export class LooseObjects {
  private readonly buffer: Buffer;
  private missesInARow = 0;
  private passed = 0;

  constructor(
    private readonly objectsDir: string,
    /** The largest object content answered whole. */
    private readonly limit: number,
  ) {
    this.buffer = Buffer.allocUnsafe(HEADER_MAX + limit + DEFLATE_SLACK);
  }

  /** A reader for the repository of `ctx`. */
  static async open(ctx: GitContext, limit: number): Promise<LooseObjects> {
    return new LooseObjects(await gitObjectsDirectory(ctx), limit);
  }

  /** Looking for one object in SAMPLE_EVERY only (after a run of misses: a packed repository). */
  get sampling(): boolean {
    return this.missesInARow >= MISSES_IN_A_ROW;
  }

  read(oid: string): LooseRead {
    if (!/^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(oid)) return null;
    if (this.sampling && ++this.passed % SAMPLE_EVERY !== 0) return null;
    const answer = this.readFile(path.join(this.objectsDir, oid.slice(0, 2), oid.slice(2)));
    this.missesInARow = answer === null ? this.missesInARow + 1 : 0;
    return answer;
  }

  private readFile(file: string): LooseRead {
    let length: number;
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return null;
    }
    try {
      length = fs.readSync(fd, this.buffer, 0, this.buffer.length, 0);
    } catch {
      return null;
    } finally {
      fs.closeSync(fd);
    }
    return parseLoose(this.buffer.subarray(0, length), this.limit);
  }
}

/**
 * The object in (the start of) a loose object file: `deflate("<type> <size>\0<content>")`. `data` may
 * stop short of the file's end; anything that does not add up is null (ask git). Pure.
 */
export function parseLoose(data: Buffer, limit: number): LooseRead {
  let inflated: Buffer;
  try {
    // Z_SYNC_FLUSH: the start of a longer stream inflates to what it holds instead of failing; the
    // output bound keeps a highly compressible large object from inflating far. An output buffer of
    // that bound rather than zlib's 16 KiB default: 20,000 of those held the push's helper 20 MiB
    // higher (malloc'd outside the heap, freed only when the collector finds each engine).
    const bound = HEADER_MAX + limit + 1;
    inflated = zlib.inflateSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: bound, chunkSize: Math.max(bound, zlib.constants.Z_MIN_CHUNK) });
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? 'large' : null;
  }
  const nul = inflated.indexOf(0);
  if (nul < 0 || nul > HEADER_MAX) return null;
  const header = /^(blob|tree|commit|tag) (0|[1-9][0-9]{0,15})$/.exec(inflated.subarray(0, nul).toString('latin1'));
  if (!header) return null;
  const size = Number(header[2]);
  if (size > limit) return 'large';
  const content = inflated.subarray(nul + 1);
  if (content.length !== size) return null;
  return { type: header[1]!, content };
}
