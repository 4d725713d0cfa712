import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { GitmlError } from '../errors';
import { MAX_FOREIGN_POINTER_SIZE, mayBePointer, parsePointer, type Pointer } from '../pointer';
import { CatFileBatch, type BlobContent } from './cat-file';
import { gitZ, type GitContext } from './exec';
import { LooseObjects } from './loose-objects';
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
 * `git rev-list --objects include --not exclude`, in no set order (loose objects are answered first).
 * Only blobs small enough to be pointers are read.
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
 * Hands each pointer blob of a range (as scanRangeForPointers finds them) to `onPointer` as soon as it
 * is read, so a push can upload while the scan goes on. Objects with a loose file are read from it
 * here (git/loose-objects.ts: right after a commit of many files, all of its blobs); the others go
 * through cat-file. Memory does not grow with the range: rev-list streams into cat-file
 * --batch-check, whose output waits while POINTER_READS_IN_FLIGHT reads of candidates do.
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
  const loose = await LooseObjects.open(ctx, MAX_FOREIGN_POINTER_SIZE - 1);
  const reads = new PointerReads<Candidate>(ctx, (item, pointer) => onPointer({ blob: item.blob, path: item.path, pointer }), {
    pause: () => candidates.pause(),
    resume: () => candidates.resume(),
  });
  const candidates = pipeRevListToBatchCheck(ctx, input, loose, {
    candidate: (candidate) => reads.read(candidate),
    read: (candidate, content) => reads.take(candidate, content),
  });
  try {
    await candidates.done;
  } catch (error) {
    reads.stop(error);
  }
  await reads.settled();
}

/**
 * Reads candidates' blobs through one `git cat-file --batch` (started with the first) and hands each
 * item whose blob is a pointer to `onPointer`, in the order they were read (cat-file answers in
 * order); take() hands on one read elsewhere (a loose file). Beyond POINTER_READS_IN_FLIGHT waiting
 * reads the source is paused, and resumed at half.
 */
class PointerReads<T extends Candidate> {
  private batch: CatFileBatch | null = null;
  private inFlight = 0;
  private failure: { error: unknown } | null = null;
  private drained: (() => void) | null = null;
  private wakeSource: (() => void) | null = null;

  /** `source`: a stream to pause when the bound is reached (a list waits on room() instead). */
  constructor(
    private readonly ctx: GitContext,
    private readonly onPointer: (item: T, pointer: Pointer) => void,
    private readonly source?: { pause(): void; resume(): void },
  ) {}

  get full(): boolean {
    return this.inFlight >= POINTER_READS_IN_FLIGHT;
  }

  /** Resolves once the reads in flight are down to half the bound. */
  room(): Promise<void> {
    return this.full ? new Promise<void>((resolve) => (this.wakeSource = resolve)) : Promise.resolve();
  }

  read(item: T): void {
    if (this.failure) return;
    this.batch ??= new CatFileBatch(this.ctx);
    if (++this.inFlight >= POINTER_READS_IN_FLIGHT) this.source?.pause();
    void this.batch
      .get(item.blob)
      .then((content) => {
        const pointer = pointerIn(content);
        if (pointer && !this.failure) this.onPointer(item, pointer);
      })
      .catch((error: unknown) => this.stop(error))
      .finally(() => {
        if (--this.inFlight === POINTER_READS_IN_FLIGHT / 2) {
          this.source?.resume();
          this.wakeSource?.();
          this.wakeSource = null;
        }
        if (this.inFlight === 0) this.drained?.();
      });
  }

  /** Hands on an item whose object was read elsewhere (its loose file), if it is a pointer. */
  take(item: T, object: { type: string; content: Buffer }): void {
    const pointer = pointerIn(object);
    if (pointer && !this.failure) this.onPointer(item, pointer);
  }

  /** Nothing more is read or handed on; settled() throws `error` (or an earlier failure). */
  stop(error: unknown): void {
    this.failure ??= { error };
  }

  /** Waits for the reads in flight, ends cat-file, and throws the first failure. */
  async settled(): Promise<void> {
    try {
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    } finally {
      this.batch?.close();
    }
    if (this.failure) throw this.failure.error;
  }
}

/** Pointer blobs in a tree (a commit, tree or ref), recursively. */
export async function scanTreeForPointers(ctx: GitContext, treeish: string, pathspecs: readonly string[] = []): Promise<PointerBlob[]> {
  // Without `-l`: the sizes come from pointersAmong, which asks git only for blobs with no loose file
  // (`ls-tree -l` opens every loose blob once more to print its size).
  const entries = await gitZ(ctx, ['ls-tree', '-r', '-z', '--full-tree', treeish, '--', ...pathspecs]);
  const blobs: Candidate[] = [];
  for (const entry of entries) {
    const tab = entry.indexOf('\t');
    const [mode, type, blob] = entry.slice(0, tab).split(' ');
    if (type !== 'blob' || mode === '120000' || !blob) continue;
    blobs.push({ blob, path: entry.slice(tab + 1) });
  }
  return pointersAmong(ctx, blobs);
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
  return pointersAmong(ctx, staged);
}

/** The pointer an object holds, read by cat-file or from its loose file: only a blob can hold one. */
function pointerIn(object: Pick<BlobContent, 'type' | 'content'> | null): Pointer | null {
  return object && object.type === 'blob' ? parsePointer(object.content) : null;
}

/**
 * The items whose blob is a pointer, in their order, each with its pointer. Loose files answer first
 * (git/loose-objects.ts); git is asked for the sizes of the other blobs (`cat-file --batch-check`)
 * and reads those small enough to be pointers (`cat-file --batch`, reads bounded as above).
 */
async function pointersAmong<T extends Candidate>(ctx: GitContext, items: readonly T[]): Promise<(T & { pointer: Pointer })[]> {
  if (items.length === 0) return [];
  const loose = await LooseObjects.open(ctx, MAX_FOREIGN_POINTER_SIZE - 1);
  const slots: ((T & { pointer: Pointer }) | undefined)[] = new Array(items.length);
  const rest: number[] = [];
  for (const [i, item] of items.entries()) {
    const object = loose.read(item.blob);
    if (object === null) rest.push(i);
    else if (object !== 'large') {
      const pointer = pointerIn(object);
      if (pointer) slots[i] = { ...item, pointer };
    }
  }
  if (rest.length > 0) {
    const sizes = await batchCheckSizes(ctx, [...new Set(rest.map((i) => items[i]!.blob))]);
    // cat-file answers after the loose files did: each answer goes to its item's place.
    const place = new Map<T, number>();
    const reads = new PointerReads<T>(ctx, (item, pointer) => (slots[place.get(item)!] = { ...item, pointer }));
    for (const i of rest) {
      const item = items[i]!;
      if (!mayBePointer(sizes.get(item.blob) ?? -1)) continue;
      if (reads.full) await reads.room();
      place.set(item, i);
      reads.read(item);
    }
    await reads.settled();
  }
  return slots.filter((p): p is T & { pointer: Pointer } => p !== undefined);
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
 * Runs `git rev-list --objects` and reads each object it names from its loose file when there is one
 * (`loose`: `read` gets the blobs small enough to be pointers); the rest go on to `git cat-file
 * --batch-check`, and `candidate` gets each blob it names that is small enough to be a pointer.
 * pause() stops reading batch-check (git waits on the full pipe) until resume(); rev-list waits in
 * turn while batch-check's input is full.
 */
function pipeRevListToBatchCheck(
  ctx: GitContext,
  input: string,
  loose: LooseObjects,
  to: { candidate(candidate: Candidate): void; read(candidate: Candidate, object: { type: string; content: Buffer }): void },
): { done: Promise<void>; pause(): void; resume(): void } {
  const revList = spawn('git', ['rev-list', '--objects', '--ignore-missing', '--stdin'], {
    cwd: ctx.cwd,
    env: ctx.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const check = spawn('git', ['cat-file', BATCH_CHECK_FORMAT], { cwd: ctx.cwd, env: ctx.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const listed = readline.createInterface({ input: revList.stdout, crlfDelay: Infinity });
  let checkFull = false;
  listed.on('line', (line) => {
    // "<oid>" for a commit, "<oid> <path>" for a tree or blob (the path may hold spaces).
    const space = line.indexOf(' ');
    const oid = space < 0 ? line : line.slice(0, space);
    const object = loose.read(oid);
    if (object === 'large') return;
    if (object) {
      if (object.type === 'blob' && mayBePointer(object.content.length)) to.read({ blob: oid, path: space < 0 ? '' : detached(line.slice(space + 1)) }, object);
      return;
    }
    if (!check.stdin.write(`${line}\n`) && !checkFull) {
      checkFull = true;
      listed.pause();
      check.stdin.once('drain', () => {
        checkFull = false;
        listed.resume();
      });
    }
  });
  listed.on('close', () => check.stdin.end());
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
      to.candidate({ blob: line.slice(0, a), path: c < 0 ? '' : detached(line.slice(c + 1)) });
    });
    let pending = 2;
    let failed = false;
    const finish = (name: string) => (code: number | null) => {
      if (failed) return;
      if (code !== 0) {
        failed = true;
        // The other one may be blocked on a pipe nobody reads any more (rev-list on its output while
        // batch-check's input is full): it ends now, not when this process does.
        revList.kill();
        check.kill();
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
    check.stdin.on('error', () => undefined);
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
