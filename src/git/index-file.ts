import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import { errnoCode } from '../errors';

/**
 * git's index file (Documentation/gitformat-index.txt), read only as far as gitml needs to record the
 * stat data of work-tree files it wrote itself. Without that record git would see a pointer file's
 * size and time in the index, and `git update-index` would then read every such file back and pipe
 * it through the clean filter (a 1 GiB model: 1 GiB read and piped for nothing).
 *
 * Only the ten 32-bit stat fields of named entries change, and the size of racily clean ones (below);
 * every other byte stays as git wrote it (entries, extensions), and the trailing checksum is computed
 * again. Anything this reader does not know for certain (another version, a split index, a checksum
 * that does not match) makes it decline, and the caller lets git refresh the entries instead.
 */

/** The stat fields git keeps per entry, as lstat gives them (bigint: inode and times need 64 bits). */
export interface EntryStat {
  ctimeSec: bigint;
  ctimeNsec: bigint;
  mtimeSec: bigint;
  mtimeNsec: bigint;
  dev: bigint;
  ino: bigint;
  mode: bigint;
  uid: bigint;
  gid: bigint;
  size: bigint;
}

/** One entry to record: its path, the blob its index entry must name (hex), and the file's stat now. */
export interface StatUpdate {
  path: string;
  blob: string;
  stat: EntryStat;
}

const SIGNATURE = 0x44495243; // "DIRC"
const HEADER_SIZE = 12;
const STAT_SIZE = 40;
const EXTENDED_FLAG = 0x4000;
const NAME_MASK = 0x0fff;
const STAGE_SHIFT = 12;
const STAGE_MASK = 0x3;
const REGULAR_FILE = 0o100000;
const GITLINK = 0o160000;
const EXECUTABLE = 0o100;
const MTIME_SEC_AT = 8;
const SIZE_AT = 36;

/**
 * A copy of `index` with the stat data of `updates` recorded, and the paths recorded; null when the
 * index is not one this reader knows for certain (then nothing may be written). An update is left out
 * (not in `recorded`) when no stage-0 entry of that path names `blob`, or when its entry is not a
 * regular file whose executable bit matches the file's.
 *
 * `racyFromSec`, when the copy will be written with a newer time than the old index had: the old
 * index file's mtime, in seconds. Every other entry that was racily clean against it (its mtime not
 * older: git could not tell a write in the same tick from none) gets size 0, as git's own write_index
 * smudges it, and git compares its content next time it looks. Without that, the newer index time
 * would make git trust such an entry's stat data. Seconds only: git built without nanosecond times
 * compares seconds, so this smudges at least what git would. Submodules (gitlinks) are never racy, as
 * in git. Pure.
 */
export function withStatData(
  index: Buffer,
  updates: readonly StatUpdate[],
  racyFromSec: bigint | null = null,
): { index: Buffer; recorded: string[]; smudged: number } | null {
  const hashSize = hashSizeOf(updates);
  if (hashSize === null || index.length < HEADER_SIZE + hashSize) return null;
  const body = index.subarray(0, index.length - hashSize);
  const trailer = index.subarray(index.length - hashSize);
  // index.skipHash (git 2.40) writes zeros in place of the checksum; otherwise it must match.
  const hashed = !trailer.every((b) => b === 0);
  if (hashed && !digest(body, hashSize).equals(trailer)) return null;
  const entries = entriesOf(body, hashSize);
  if (!entries) return null;

  const wanted = new Map(updates.map((u) => [u.path, u]));
  const out = Buffer.from(index);
  const recorded: string[] = [];
  let smudged = 0;
  for (const e of entries) {
    const mode = body.readUInt32BE(e.offset + 24);
    const u = e.stage === 0 ? wanted.get(e.path) : undefined;
    if (u && body.toString('hex', e.offset + STAT_SIZE, e.offset + STAT_SIZE + hashSize) === u.blob.toLowerCase()) {
      if ((mode & 0o170000) === REGULAR_FILE && (mode & EXECUTABLE) === (Number(u.stat.mode) & EXECUTABLE)) {
        writeStat(out, e.offset, u.stat, mode);
        recorded.push(e.path);
        wanted.delete(e.path);
        continue;
      }
    }
    if (racyFromSec !== null && (mode & 0o170000) !== GITLINK && BigInt(body.readUInt32BE(e.offset + MTIME_SEC_AT)) >= racyFromSec && body.readUInt32BE(e.offset + SIZE_AT) !== 0) {
      out.writeUInt32BE(0, e.offset + SIZE_AT);
      smudged++;
    }
  }
  if (hashed) digest(out.subarray(0, out.length - hashSize), hashSize).copy(out, out.length - hashSize);
  return { index: out, recorded, smudged };
}

interface EntryAt {
  offset: number;
  path: string;
  stage: number;
}

/** Every entry's offset, path and stage, or null if the body is not an index this reader knows. Pure. */
export function entriesOf(body: Buffer, hashSize: number): EntryAt[] | null {
  if (body.length < HEADER_SIZE || body.readUInt32BE(0) !== SIGNATURE) return null;
  const version = body.readUInt32BE(4);
  if (version < 2 || version > 4) return null;
  const count = body.readUInt32BE(8);
  const fixed = STAT_SIZE + hashSize + 2;
  const entries: EntryAt[] = [];
  let at = HEADER_SIZE;
  let previous = '';
  for (let i = 0; i < count; i++) {
    if (at + fixed > body.length) return null;
    const flags = body.readUInt16BE(at + STAT_SIZE + hashSize);
    const extended = (flags & EXTENDED_FLAG) !== 0;
    if (extended && version < 3) return null;
    let nameAt = at + fixed + (extended ? 2 : 0);
    let name: string;
    let next: number;
    if (version === 4) {
      const strip = readVarint(body, nameAt);
      if (!strip || strip.value > previous.length) return null;
      nameAt = strip.end;
      const nul = body.indexOf(0, nameAt);
      if (nul < 0) return null;
      // Paths are compared as bytes by git; latin1 keeps one char per byte for the prefix arithmetic.
      name = previous.slice(0, previous.length - strip.value) + body.toString('latin1', nameAt, nul);
      next = nul + 1;
    } else {
      const nul = body.indexOf(0, nameAt);
      if (nul < 0) return null;
      const length = flags & NAME_MASK;
      if (length !== NAME_MASK && length !== nul - nameAt) return null;
      name = body.toString('latin1', nameAt, nul);
      // Entries are padded with 1 to 8 NULs to a multiple of eight bytes.
      next = at + ((nameAt - at + (nul - nameAt) + 8) & ~7);
      if (next > body.length) return null;
    }
    entries.push({ offset: at, path: Buffer.from(name, 'latin1').toString('utf8'), stage: (flags >> STAGE_SHIFT) & STAGE_MASK });
    previous = name;
    at = next;
  }
  if (!extensionsKnown(body, at)) return null;
  return entries;
}

/**
 * The extensions after the entries: each a 4-byte signature and a 32-bit size. A split index ("link")
 * keeps entries in another file, so this one does not hold them all: declined.
 */
function extensionsKnown(body: Buffer, at: number): boolean {
  while (at < body.length) {
    if (at + 8 > body.length) return false;
    const signature = body.toString('latin1', at, at + 4);
    if (signature === 'link') return false;
    at += 8 + body.readUInt32BE(at + 4);
  }
  return at === body.length;
}

/** git's offset varint (varint.c): 7 bits a byte, each continuation adding one. Pure. */
function readVarint(buf: Buffer, at: number): { value: number; end: number } | null {
  if (at >= buf.length) return null;
  let c = buf[at++]!;
  let value = c & 127;
  while (c & 128) {
    if (at >= buf.length || value > 0xffffff) return null;
    c = buf[at++]!;
    value = (value + 1) * 128 + (c & 127);
  }
  return { value, end: at };
}

function writeStat(out: Buffer, offset: number, st: EntryStat, mode: number): void {
  // As git's fill_stat_data: every field kept as its low 32 bits.
  const fields = [st.ctimeSec, st.ctimeNsec, st.mtimeSec, st.mtimeNsec, st.dev, st.ino, BigInt(mode), st.uid, st.gid, st.size];
  fields.forEach((v, i) => out.writeUInt32BE(Number(BigInt.asUintN(32, v)), offset + i * 4));
}

function hashSizeOf(updates: readonly StatUpdate[]): number | null {
  const lengths = new Set(updates.map((u) => u.blob.length));
  if (lengths.size !== 1) return null;
  const hex = [...lengths][0];
  return hex === 40 ? 20 : hex === 64 ? 32 : null;
}

function digest(data: Buffer, hashSize: number): Buffer {
  return createHash(hashSize === 20 ? 'sha1' : 'sha256').update(data).digest();
}

/**
 * The youngest file whose stat data may be recorded: this long before the index is written. git takes
 * an entry as clean by its stat data only when its mtime is older than the index file's (seconds, in
 * a git built without nanosecond times); gitml dates what it writes WRITTEN_MTIME_AGE_MS back anyway.
 */
const SETTLED_MS = 2000;

/**
 * Records the stat data of `updates` in the index file at `indexPath`, as git would: under
 * `index.lock` (taken with O_EXCL, as git takes it), renamed over the index. Returns the paths
 * recorded and how many other entries were smudged; none recorded when the lock is held or the index
 * is not one withStatData knows for certain. A file written less than SETTLED_MS ago is left out.
 *
 * git's racy-clean check compares each entry's mtime with the index file's. When every file is older
 * than the index (a checkout that just wrote it), the new index keeps the old mtime, two microseconds
 * earlier, so it can only grow the racy set: git's check stays exactly as it was, and nothing else in
 * the index changes. When a file is newer (`gitml pull` on an index written a while ago), the index
 * must be newer still, as when git writes it: then the entries racily clean against the old time are
 * smudged (withStatData), as git's own write does.
 */
export async function recordStatData(indexPath: string, updates: readonly StatUpdate[], nowMs: number = Date.now()): Promise<{ recorded: string[]; smudged: number }> {
  const none = { recorded: [], smudged: 0 };
  const mtimeNs = (u: StatUpdate) => u.stat.mtimeSec * 1_000_000_000n + u.stat.mtimeNsec;
  const settled = updates.filter((u) => mtimeNs(u) < BigInt(Math.floor(nowMs - SETTLED_MS)) * 1_000_000n);
  if (settled.length === 0) return none;
  const lockPath = `${indexPath}.lock`;
  let lock: fsp.FileHandle;
  try {
    lock = await fsp.open(lockPath, 'wx', 0o666);
  } catch (e) {
    if (errnoCode(e) === 'EEXIST' || errnoCode(e) === 'ENOENT') return none;
    throw e;
  }
  let renamed = false;
  try {
    const before = await fsp.stat(indexPath, { bigint: true }).catch(() => null);
    if (!before) return none;
    const keepTime = settled.every((u) => mtimeNs(u) < before.mtimeNs);
    const patched = withStatData(await fsp.readFile(indexPath), settled, keepTime ? null : before.mtimeNs / 1_000_000_000n);
    if (!patched || patched.recorded.length === 0) return none;
    await lock.writeFile(patched.index);
    await lock.chmod(Number(before.mode & 0o7777n));
    await lock.close();
    if (keepTime) {
      // Seconds as a double are exact to about a quarter of a microsecond: two microseconds earlier
      // is certainly not later than the old time.
      await fsp.utimes(lockPath, Number(before.atimeNs) / 1e9, Number(before.mtimeNs - 2000n) / 1e9);
    }
    await fsp.rename(lockPath, indexPath);
    renamed = true;
    return { recorded: patched.recorded, smudged: patched.smudged };
  } finally {
    if (!renamed) {
      await lock.close().catch(() => undefined);
      await fsp.rm(lockPath, { force: true }).catch(() => undefined);
    }
  }
}
