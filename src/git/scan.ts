import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { GitmlError } from '../errors';
import { mayBePointer, parsePointer, type Pointer } from '../pointer';
import { CatFileBatch, type BlobContent } from './cat-file';
import { gitZ, type GitContext } from './exec';
import { detached } from '../util/detached';

/** A blob in git whose content is a pointer. */
export interface PointerBlob {
  /** git blob id. */
  blob: string;
  /** A path it was found at (the first one seen). */
  path: string;
  pointer: Pointer;
}

interface Candidate {
  blob: string;
  path: string;
}

const BATCH_CHECK_FORMAT = '--batch-check=%(objectname) %(objecttype) %(objectsize) %(rest)';

/**
 * Pointer blobs reachable from `include` but not from `exclude` (commit ids or ref names), like
 * `git rev-list --objects include --not exclude`, in rev-list's order. Only blobs small enough to be
 * pointers are read.
 */
export async function scanRangeForPointers(ctx: GitContext, include: readonly string[], exclude: readonly string[]): Promise<PointerBlob[]> {
  const found: PointerBlob[] = [];
  await forEachPointerInRange(ctx, include, exclude, (p) => found.push(p));
  return found;
}

/**
 * Reads of candidate blobs waiting on `git cat-file --batch` at most: enough to keep it busy, and a
 * bound on what waits in memory. Asked for all at once, 100,000 waiting reads held the push's helper
 * at 340 MiB (each a promise, its callbacks and the candidate).
 */
const POINTER_READS_IN_FLIGHT = 1024;

/**
 * Hands each pointer blob of a range (as scanRangeForPointers finds them, in the same order) to
 * `onPointer` as soon as it is read, so a push can upload while the scan goes on. Memory does not
 * grow with the range: rev-list streams into cat-file --batch-check, and the reads of candidates
 * wait for each other beyond POINTER_READS_IN_FLIGHT.
 */
export async function forEachPointerInRange(
  ctx: GitContext,
  include: readonly string[],
  exclude: readonly string[],
  onPointer: (found: PointerBlob) => void,
): Promise<void> {
  if (include.length === 0) return;
  const input = [...include, ...exclude.map((e) => `^${e}`)].join('\n') + '\n';
  // Each candidate's content is asked for as soon as batch-check names it, from a third git process
  // on the other core: right after a commit of many files their blobs are loose, and the two passes
  // over 20,000 loose objects took 1.5 s one after the other.
  let batch: CatFileBatch | null = null;
  let inFlight = 0;
  let failure: { error: unknown } | null = null;
  let drained: (() => void) | null = null;
  const candidates = pipeRevListToBatchCheck(ctx, input, (candidate) => {
    batch ??= new CatFileBatch(ctx);
    if (++inFlight >= POINTER_READS_IN_FLIGHT) candidates.pause();
    // cat-file answers in the order it was asked: pointers reach onPointer in rev-list's order.
    void batch
      .get(candidate.blob)
      .then((content) => {
        const pointer = pointerIn(content);
        if (pointer && !failure) onPointer({ ...candidate, pointer });
      })
      .catch((error: unknown) => (failure ??= { error }))
      .finally(() => {
        if (--inFlight === POINTER_READS_IN_FLIGHT / 2) candidates.resume();
        if (inFlight === 0) drained?.();
      });
  });
  try {
    await candidates.done;
    if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
  } catch (error) {
    // Reads still in flight end after this returns: none of them may reach onPointer then.
    failure ??= { error };
  } finally {
    (batch as CatFileBatch | null)?.close();
  }
  if (failure) throw (failure as { error: unknown }).error;
}

/**
 * Reads candidate blobs through one `git cat-file --batch` (started with the first) as they are
 * named, and attaches to each item the pointer its blob holds.
 */
class PointerReader {
  private batch: CatFileBatch | null = null;
  private readonly pointers = new Map<string, Promise<Pointer | null>>();

  constructor(private readonly ctx: GitContext) {}

  /** The pointer `blob` holds, null when it holds none; each blob is read once however often asked. */
  want(blob: string): Promise<Pointer | null> {
    let pointer = this.pointers.get(blob);
    if (!pointer) {
      this.batch ??= new CatFileBatch(this.ctx);
      pointer = this.batch.get(blob).then(pointerIn);
      pointer.catch(() => undefined); // awaited by attach(), unless the caller failed first
      this.pointers.set(blob, pointer);
    }
    return pointer;
  }

  /** The items whose blob (asked for with `want`) is a pointer, in order, each with its pointer. */
  async attach<T extends { blob: string }>(items: readonly T[]): Promise<(T & { pointer: Pointer })[]> {
    const pointers = new Map<string, Pointer>();
    for (const [blob, request] of this.pointers) {
      const pointer = await request;
      if (pointer) pointers.set(blob, pointer);
    }
    const out: (T & { pointer: Pointer })[] = [];
    for (const item of items) {
      const pointer = pointers.get(item.blob);
      if (pointer) out.push({ ...item, pointer });
    }
    return out;
  }

  close(): void {
    this.batch?.close();
  }
}

/** Pointer blobs in a tree (a commit, tree or ref), recursively. */
export async function scanTreeForPointers(ctx: GitContext, treeish: string, pathspecs: readonly string[] = []): Promise<PointerBlob[]> {
  const entries = await gitZ(ctx, ['ls-tree', '-r', '-z', '-l', '--full-tree', treeish, '--', ...pathspecs]);
  const candidates: Candidate[] = [];
  for (const entry of entries) {
    const tab = entry.indexOf('\t');
    const [mode, type, blob, sizeText] = entry.slice(0, tab).split(/ +/);
    if (type !== 'blob' || mode === '120000' || !blob) continue;
    if (mayBePointer(Number(sizeText))) candidates.push({ blob, path: entry.slice(tab + 1) });
  }
  return readPointers(ctx, candidates);
}

/** An index entry whose staged blob is a pointer. */
export interface IndexPointer extends PointerBlob {
  mode: string;
}

/** Pointer blobs staged in the index (stage 0), limited by git pathspecs. */
export async function scanIndexForPointers(ctx: GitContext, pathspecs: readonly string[] = []): Promise<IndexPointer[]> {
  const entries = await gitZ(ctx, ['ls-files', '-s', '-z', '--', ...pathspecs]);
  const staged: { mode: string; blob: string; path: string }[] = [];
  for (const entry of entries) {
    const tab = entry.indexOf('\t');
    const [mode, blob, stage] = entry.slice(0, tab).split(' ');
    if (!mode || !blob || stage !== '0' || mode === '120000' || mode === '160000') continue;
    staged.push({ mode, blob, path: entry.slice(tab + 1) });
  }
  if (staged.length === 0) return [];
  const sizes = await batchCheckSizes(ctx, [...new Set(staged.map((s) => s.blob))]);
  return readPointers(ctx, staged.filter((s) => mayBePointer(sizes.get(s.blob) ?? -1)));
}

function pointerIn(content: BlobContent | null): Pointer | null {
  return content && content.type === 'blob' ? parsePointer(content.content) : null;
}

async function readPointers<T extends Candidate>(ctx: GitContext, candidates: readonly T[]): Promise<(T & { pointer: Pointer })[]> {
  const reader = new PointerReader(ctx);
  try {
    for (const c of candidates) reader.want(c.blob);
    return await reader.attach(candidates);
  } finally {
    reader.close();
  }
}

async function batchCheckSizes(ctx: GitContext, blobs: string[]): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  await streamLines(ctx, ['cat-file', BATCH_CHECK_FORMAT], blobs.join('\n') + '\n', (line) => {
    const [oid, type, size] = line.split(' ');
    if (oid && type === 'blob') sizes.set(oid, Number(size));
  });
  return sizes;
}

function streamLines(ctx: GitContext, args: string[], input: string, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd: ctx.cwd, env: ctx.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    readline.createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', onLine);
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new GitmlError('E_GIT', `git ${args[0]} failed (exit ${code}): ${stderr.trim()}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/**
 * Runs `git rev-list --objects` into `git cat-file --batch-check` and hands `onCandidate` each blob
 * small enough to be a pointer, as it is named. pause() stops reading batch-check (git waits on the
 * full pipe) until resume().
 */
function pipeRevListToBatchCheck(
  ctx: GitContext,
  input: string,
  onCandidate: (candidate: Candidate) => void,
): { done: Promise<void>; pause(): void; resume(): void } {
  const revList = spawn('git', ['rev-list', '--objects', '--ignore-missing', '--stdin'], {
    cwd: ctx.cwd,
    env: ctx.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const check = spawn('git', ['cat-file', BATCH_CHECK_FORMAT], { cwd: ctx.cwd, env: ctx.env, stdio: ['pipe', 'pipe', 'pipe'] });
  revList.stdout.pipe(check.stdin);
  const lines = readline.createInterface({ input: check.stdout, crlfDelay: Infinity });
  const done = new Promise<void>((resolve, reject) => {
    let stderr = '';
    revList.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    check.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    lines.on('line', (line) => {
      // "<oid> <type> <size> <path>"; paths may contain spaces, so split only the first three fields.
      const a = line.indexOf(' ');
      const b = line.indexOf(' ', a + 1);
      const c = line.indexOf(' ', b + 1);
      if (a < 0 || b < 0) return;
      if (line.slice(a + 1, b) !== 'blob') return;
      const size = Number(c < 0 ? line.slice(b + 1) : line.slice(b + 1, c));
      if (!mayBePointer(size)) return;
      // The path detached from the line: a push keeps one per object to name it in errors.
      onCandidate({ blob: line.slice(0, a), path: c < 0 ? '' : detached(line.slice(c + 1)) });
    });
    let pending = 2;
    let failed = false;
    const finish = (name: string) => (code: number | null) => {
      if (failed) return;
      if (code !== 0) {
        failed = true;
        reject(scanFailure(name, code, stderr));
        return;
      }
      if (--pending === 0) resolve();
    };
    revList.on('error', reject);
    check.on('error', reject);
    revList.on('close', finish('rev-list'));
    check.on('close', finish('cat-file --batch-check'));
    revList.stdin.on('error', () => undefined);
    revList.stdin.end(input);
  });
  return { done, pause: () => lines.pause(), resume: () => lines.resume() };
}

/** git's words for objects it cannot read: the repository is damaged, not the push. */
const DAMAGED_REPOSITORY = /bad (tree |commit |blob |tag )?object|missing (tree|blob|commit|tag)|is corrupt|unable to read|did not receive expected object/i;

function scanFailure(name: string, code: number | null, stderr: string): GitmlError {
  return new GitmlError('E_GIT', `git ${name} failed (exit ${code}): ${stderr.trim()}`, {
    hint: DAMAGED_REPOSITORY.test(stderr)
      ? 'This repository\'s git objects are damaged: `git fsck --full` names them; fetch them again from a clone that has them (nothing was pushed).'
      : undefined,
  });
}
