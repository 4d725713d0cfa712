import { spawn } from 'node:child_process';
import { storedAt } from './store-layout';
import { ObjectCache } from '../../src/cache';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DIST = path.join(ROOT, 'dist');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A throwaway world for one test: its own HOME and global git config (no system config), the gitml
 * binaries on PATH through small shims (as `npm install -g` would put them), `gitml install` done.
 */
export class Sandbox {
  readonly env: NodeJS.ProcessEnv;
  /** Process groups still running: cleanup() kills them, so a timed-out test leaves nothing behind. */
  private readonly running = new Set<number>();

  private constructor(readonly root: string) {
    const home = path.join(root, 'home');
    const bin = path.join(root, 'bin');
    this.env = {
      PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`,
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, '.config'),
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
      LANG: 'C.UTF-8',
      TMPDIR: os.tmpdir(),
    };
  }

  static async create(options: { install?: boolean } = {}): Promise<Sandbox> {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-test-'));
    const box = new Sandbox(root);
    await fsp.mkdir(path.join(root, 'home'), { recursive: true });
    await fsp.mkdir(path.join(root, 'bin'), { recursive: true });
    const shim = (target: string) => `#!/bin/sh\nexec "${process.execPath}" "${target}" "$@"\n`;
    for (const [name, target] of [
      ['gitml', 'bin/gitml.js'],
      ['git-gitml', 'bin/gitml.js'],
      ['git-remote-gitml', 'remote-helper/git-remote-gitml.js'],
    ] as const) {
      await fsp.writeFile(path.join(root, 'bin', name), shim(path.join(DIST, target)), { mode: 0o755 });
    }
    await box.git(root, ['config', '--global', 'user.name', 'Test User']);
    await box.git(root, ['config', '--global', 'user.email', 'test@example.com']);
    await box.git(root, ['config', '--global', 'init.defaultBranch', 'main']);
    await box.git(root, ['config', '--global', 'advice.detachedHead', 'false']);
    if (options.install !== false) await box.ok(root, 'gitml', ['install']);
    return box;
  }

  /** A path inside this sandbox. */
  path(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  run(cwd: string, command: string, args: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      // Its own process group: git, the helper, the filter and their children are killed together.
      const child = spawn(command, args, { cwd, env: { ...this.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      if (child.pid) this.running.add(child.pid);
      child.on('exit', () => child.pid && this.running.delete(child.pid));
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? 128, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input ?? '');
    });
  }

  /** Runs and expects exit 0; the error shows everything the command printed. */
  async ok(cwd: string, command: string, args: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
    const r = await this.run(cwd, command, args, options);
    if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r;
  }

  git(cwd: string, args: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
    return this.ok(cwd, 'git', args, options);
  }

  gitml(cwd: string, args: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
    return this.run(cwd, 'gitml', args, options);
  }

  /** Kills whatever this sandbox started that is still running (a test that timed out). */
  killAll(): void {
    for (const pid of this.running) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.running.clear();
  }

  async cleanup(): Promise<void> {
    this.killAll();
    await fsp.rm(this.root, { recursive: true, force: true });
  }
}

/**
 * A repository with `track` patterns tracked (*.pt and data/** unless told) and a directory store
 * named in .gitmlconfig, committed.
 */
export async function makeRepo(box: Sandbox, name = 'repo', store = box.path('store'), track: readonly string[] = ['*.pt', 'data/**']): Promise<string> {
  const dir = box.path(name);
  await fsp.mkdir(store, { recursive: true });
  await box.git(box.root, ['init', '-q', dir]);
  if (track.length > 0) {
    const r = await box.gitml(dir, ['track', ...track]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  await box.git(dir, ['config', '-f', '.gitmlconfig', 'gitml.store', `file://${store}`]);
  await box.git(dir, ['add', ...(track.length > 0 ? ['.gitattributes'] : []), '.gitmlconfig']);
  await box.git(dir, ['commit', '-q', '-m', track.length > 0 ? 'track large files' : 'init']);
  return dir;
}

/**
 * A repository for assets: a directory store and no tracking rules of its own (`gitml register` adds
 * them), with a bare `origin` through `gitml::`; nothing pushed yet.
 */
export async function makeAssetRepo(box: Sandbox): Promise<{ repo: string; remote: string }> {
  const repo = await makeRepo(box, 'repo', box.path('store'), []);
  const remote = box.path('remote.git');
  await box.git(box.root, ['init', '-q', '--bare', remote]);
  await box.git(repo, ['remote', 'add', 'origin', `gitml::${remote}`]);
  return { repo, remote };
}

/** makeRepo, plus a bare repository as its `origin` through `gitml::`, with main pushed. */
export async function makeRepoWithRemote(box: Sandbox): Promise<{ repo: string; remote: string }> {
  const repo = await makeRepo(box);
  const remote = box.path('remote.git');
  await box.git(box.root, ['init', '-q', '--bare', remote]);
  await box.git(repo, ['remote', 'add', 'origin', `gitml::${remote}`]);
  await box.git(repo, ['push', '-q', 'origin', 'main']);
  return { repo, remote };
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function randomBytesSeeded(size: number, seed: number): Buffer {
  const words = Math.ceil(size / 4);
  const out = Buffer.allocUnsafe(words * 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i * 4);
  }
  return out.subarray(0, size);
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Whether a directory store holds the object: whole, packed or chunked (test/helpers/store-layout.ts). */
/**
 * Commits `file` with `data` in `repo`, then removes its bytes from the repository's cache: a pointer
 * whose object is in neither the cache nor (yet) the store. Returns the object's oid.
 */
export async function commitWithLostBytes(box: Sandbox, repo: string, file: string, data: Buffer): Promise<string> {
  await fsp.writeFile(path.join(repo, file), data);
  await box.git(repo, ['add', file]);
  await box.git(repo, ['commit', '-q', '-m', `${file}, bytes lost`]);
  const oid = sha256(data);
  await fsp.rm(cachedObjectPath(repo, oid));
  return oid;
}

/** Where a repository's default cache (inside its git directory) keeps an object. */
export function cachedObjectPath(repo: string, oid: string): string {
  return new ObjectCache(path.join(repo, '.git', 'gitml')).pathOf(oid);
}

/** The folder under which the default cache of a git directory (`<repo>/.git`, or a bare one) keeps its objects. */
export function cachedObjectsDir(gitDir: string): string {
  return new ObjectCache(path.join(gitDir, 'gitml')).objectsDir;
}

export function storeHolds(store: string, oid: string): boolean {
  return storedAt(store, oid) !== null;
}

export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}
