import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ObjectCache } from '../../src/cache';
import { openGitml } from '../../src/context';
import { scanRangeForPointers } from '../../src/git/scan';
import { gitText } from '../../src/git/exec';
import { silentLogger } from '../../src/log';
import { downloadObjects } from '../../src/transfer/transfer';
import { ROOT } from '../helpers/sandbox';

/** Heavier variants: `npm run test:soak` sets GITML_SOAK=1. */
export const SOAK = process.env.GITML_SOAK === '1';

/** mulberry32: a small seeded PRNG, so every fault schedule can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ClassResult {
  fault: string;
  cases: number;
  passed: number;
  bytesLost: number;
  danglingPointers: number;
  secretsLeaked: number;
  notes?: string;
}

/** Appends a result line for docs/reliability.md (test-results/reliability.jsonl). */
export function report(result: ClassResult): void {
  const dir = path.join(ROOT, 'test-results');
  fs.mkdirSync(dir, { recursive: true });
  fs.appendFileSync(path.join(dir, 'reliability.jsonl'), `${JSON.stringify({ ...result, soak: SOAK, at: new Date().toISOString() })}\n`);
}

export interface RemoteCheck {
  refs: number;
  objects: number;
  /** Pointers reachable from the remote's refs whose bytes the store cannot give back intact. */
  dangling: string[];
}

/**
 * The promise gitml makes: every pointer reachable from any ref of the remote can be downloaded from
 * the store with bytes that hash to it. Checked by downloading everything into a fresh cache (which
 * verifies each object) with the production code path.
 */
export async function checkRemote(bare: string, storeUrl: string, env: NodeJS.ProcessEnv): Promise<RemoteCheck> {
  const ctxEnv = { ...env, GITML_STORE: storeUrl };
  const git = { cwd: bare, env: { ...ctxEnv, GIT_DIR: bare } };
  const refs = (await gitText(git, ['for-each-ref', '--format=%(objectname)'])).split('\n').filter(Boolean);
  if (refs.length === 0) return { refs: 0, objects: 0, dangling: [] };
  const pointers = await scanRangeForPointers(git, refs, []);
  const objects = [...new Map(pointers.map((p) => [p.pointer.oid, { oid: p.pointer.oid, size: p.pointer.size, path: p.path }])).values()];
  const gitml = await openGitml({ cwd: bare, env: git.env, log: silentLogger, workTree: false });
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-check-'));
  try {
    const options = { ...(await gitml.transferOptions()), cache: new ObjectCache(tmp) };
    const r = await downloadObjects(objects, options);
    return { refs: refs.length, objects: objects.length, dangling: r.failed.map((f) => `${f.ref.path} ${f.ref.oid.slice(0, 12)}: ${f.error.message}`) };
  } finally {
    await gitml.close();
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

/** SIGKILL a process and every process in its group (git, the helper, their children). */
export function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * SIGKILL one process. It may have exited since it was found (a push that ends on its own between the
 * scan of /proc and the kill): that is the race the caller runs, not an error.
 */
export function killProcess(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

/** Pids whose command line contains `needle` and whose process group is `pgid`. */
export function findInGroup(pgid: number, needle: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(needle)) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}
