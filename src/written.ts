import { randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Gitml } from './context';
import { errnoCode } from './errors';
import { CatFileBatch } from './git/cat-file';
import { gitText, gitZ, runGit, type GitResult } from './git/exec';
import { recordStatData, type EntryStat } from './git/index-file';
import { parsePointer } from './pointer';
import { WRITTEN_MTIME_AGE_MS, worktreePath } from './worktree';
import { makeDirs } from './safe-path';

/**
 * Files gitml has just written from its cache (direct checkout, `gitml pull`). git's index still
 * holds the pointer file's stat data, so the index must be refreshed. gitml verified those bytes as it
 * wrote them (writeFromCache), so it records each file's stat data in the index itself where the
 * index allows (git/index-file.ts), and git reads none of them back.
 *
 * Where it cannot, `git update-index` refreshes them, and git then sends each file through the clean
 * filter again. With a record of what gitml wrote (the oid, and the file's inode, size and back-dated
 * mtime) the filter recognises a file nobody has touched since and answers with its pointer without
 * hashing or copying it again: for a 1 GiB file, no second hash and no 1 GiB write.
 *
 * Any later write changes the mtime (it was set a minute into the past, so even a write within the
 * same clock tick shows); such a file is neither recorded nor answered for, and is cleaned as usual.
 * The records live only for the duration of the refresh.
 */
export interface WrittenFile {
  path: string;
  oid: string;
  size: number;
  /** bigint stat fields as decimal strings (JSON has no bigint). */
  ino: string;
  mtimeNs: string;
}

export function writtenDir(gitDir: string): string {
  return path.join(gitDir, 'gitml', 'written');
}

/** Does the file on disk still look exactly as it did after gitml wrote it? Pure. */
export function unchangedSince(record: WrittenFile, st: { ino: bigint; size: bigint; mtimeNs: bigint; isFile(): boolean }): boolean {
  return st.isFile() && st.ino.toString() === record.ino && st.size === BigInt(record.size) && st.mtimeNs.toString() === record.mtimeNs;
}

/** Every record in the repository's written/ directory, by path (an absent directory is none). */
export async function loadWrittenFiles(gitDir: string): Promise<Map<string, WrittenFile>> {
  const dir = writtenDir(gitDir);
  const byPath = new Map<string, WrittenFile>();
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return byPath;
    throw e;
  }
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    try {
      const batch = JSON.parse(await fsp.readFile(path.join(dir, name), 'utf8')) as WrittenFile[];
      for (const record of batch) byPath.set(record.path, record);
    } catch {
      // A batch being written or removed right now: without it the filter simply copies.
    }
  }
  return byPath;
}

/**
 * Refreshes the index for files gitml wrote. Their stat data goes straight into the index where it
 * can (git/index-file.ts: then git reads none of them back); for the rest `git update-index` runs
 * on those paths, with a record the clean filter reads for the duration. `okCodes` as for runGit
 * (128: the index is locked).
 */
export async function refreshWrittenFiles(gitml: Gitml, written: readonly { path: string; oid: string; size: number }[], okCodes: number[] = []): Promise<GitResult | null> {
  // Only entries whose index pointer is the object just written: `update-index <path>` stores the
  // file's content, so for any other entry (git restore --source, stash pop of a worktree-only change)
  // it would stage a change git itself leaves unstaged. Those stay as git left them (modified).
  const files = await sameAsIndex(gitml, written);
  if (files.length === 0) return null;
  const workTree = gitml.repo.workTree!;
  const stats = new Map<string, BigIntStats>();
  for (const f of files) {
    const st = await fsp.lstat(worktreePath(workTree, f.path), { bigint: true }).catch(() => null);
    if (st && asGitmlWroteIt(st, f, Date.now())) stats.set(f.path, st);
  }
  const inIndex = new Set(await recordInIndex(gitml, files.filter((f) => stats.has(f.path)), stats));
  const rest = files.filter((f) => !inIndex.has(f.path));
  if (rest.length === 0) return null;
  const records: WrittenFile[] = [];
  for (const f of rest) {
    const st = stats.get(f.path);
    if (st) records.push({ path: f.path, oid: f.oid, size: f.size, ino: st.ino.toString(), mtimeNs: st.mtimeNs.toString() });
  }
  const dir = writtenDir(gitml.repo.gitDir);
  const batch = path.join(dir, `${process.pid}-${randomBytes(6).toString('hex')}.json`);
  try {
    await makeDirs(dir);
    await fsp.writeFile(`${batch}.tmp`, JSON.stringify(records));
    await fsp.rename(`${batch}.tmp`, batch);
  } catch {
    // Without the record the refresh still works; it only copies the bytes once more.
  }
  try {
    return await runGit(gitml.repo.git, ['update-index', '-q', '-z', '--stdin'], { input: rest.map((f) => f.path).join('\0') + '\0', okCodes });
  } finally {
    await fsp.rm(batch, { force: true }).catch(() => undefined);
    await fsp.rm(`${batch}.tmp`, { force: true }).catch(() => undefined);
  }
}

/**
 * Does the file still carry what gitml wrote: its size, and the mtime dated WRITTEN_MTIME_AGE_MS back
 * (any later write stamps the present)? Only then may its stat data stand for the object. Pure.
 */
export function asGitmlWroteIt(st: { size: bigint; mtimeMs: bigint; isFile(): boolean }, object: { size: number }, nowMs: number): boolean {
  return st.isFile() && st.size === BigInt(object.size) && Number(st.mtimeMs) <= nowMs - WRITTEN_MTIME_AGE_MS / 2;
}

/** Records the files' stat data in the index itself; returns the paths recorded (none when it cannot). */
async function recordInIndex(gitml: Gitml, files: readonly { path: string; blob: string }[], stats: Map<string, BigIntStats>): Promise<string[]> {
  if (files.length === 0) return [];
  try {
    const indexPath = path.resolve(gitml.repo.git.cwd, await gitText(gitml.repo.git, ['rev-parse', '--git-path', 'index']));
    const updates = files.map((f) => ({ path: f.path, blob: f.blob, stat: statOf(stats.get(f.path)!) }));
    const { recorded, smudged } = await recordStatData(indexPath, updates);
    gitml.log.debug({ files: files.length, recorded: recorded.length, smudged }, 'stat data recorded in the index');
    return recorded;
  } catch (e) {
    // git refreshes those entries itself (below).
    gitml.log.debug({ err: String(e) }, 'stat data not recorded in the index');
    return [];
  }
}

function statOf(st: BigIntStats): EntryStat {
  return {
    ctimeSec: st.ctimeNs / 1_000_000_000n,
    ctimeNsec: st.ctimeNs % 1_000_000_000n,
    mtimeSec: st.mtimeNs / 1_000_000_000n,
    mtimeNsec: st.mtimeNs % 1_000_000_000n,
    dev: st.dev,
    ino: st.ino,
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
  };
}

/** The files whose index entry (stage 0) is a pointer to the same object. */
async function sameAsIndex(gitml: Gitml, files: readonly { path: string; oid: string; size: number }[]): Promise<{ path: string; oid: string; size: number; blob: string }[]> {
  if (files.length === 0) return [];
  const wanted = new Map(files.map((f) => [f.path, f]));
  const blobs = new Map<string, string>();
  for (const entry of await gitZ(gitml.repo.git, ['ls-files', '-s', '-z'])) {
    const tab = entry.indexOf('\t');
    const p = entry.slice(tab + 1);
    const [, blob, stage] = entry.slice(0, tab).split(' ');
    if (stage === '0' && blob && wanted.has(p)) blobs.set(p, blob);
  }
  if (blobs.size === 0) return [];
  const batch = new CatFileBatch(gitml.repo.git);
  try {
    const out: { path: string; oid: string; size: number; blob: string }[] = [];
    for (const [p, blob] of blobs) {
      const content = await batch.get(blob);
      const pointer = content && content.size < 1024 ? parsePointer(content.content) : null;
      const f = wanted.get(p)!;
      if (pointer && pointer.oid === f.oid && pointer.size === f.size) out.push({ ...f, blob });
    }
    return out;
  } finally {
    batch.close();
  }
}
