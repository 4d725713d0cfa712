import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';

/**
 * A pretend machine for the demo and the benchmarks: its own HOME and global git config, and the
 * gitml binaries of this checkout on PATH through shims (what `npm install -g` would put there).
 */
export interface Machine {
  name: string;
  root: string;
  env: NodeJS.ProcessEnv;
}

export const DIST = path.resolve(__dirname, '..');

export async function createMachine(parent: string, name: string): Promise<Machine> {
  const root = path.join(parent, name);
  const home = path.join(root, 'home');
  const bin = path.join(root, 'bin');
  await fsp.mkdir(home, { recursive: true });
  await fsp.mkdir(bin, { recursive: true });
  for (const [shim, target] of [
    ['gitml', 'bin/gitml.js'],
    ['git-gitml', 'bin/gitml.js'],
    ['git-remote-gitml', 'remote-helper/git-remote-gitml.js'],
  ] as const) {
    await fsp.writeFile(path.join(bin, shim), `#!/bin/sh\nexec "${process.execPath}" "${path.join(DIST, target)}" "$@"\n`, { mode: 0o755 });
  }
  const m: Machine = { name, root, env: { PATH: `${bin}:${process.env.PATH}`, HOME: home, GIT_CONFIG_NOSYSTEM: '1', LANG: 'C.UTF-8' } };
  await run(m, root, 'git', ['config', '--global', 'user.name', `Demo ${name}`]);
  await run(m, root, 'git', ['config', '--global', 'user.email', `${name}@example.com`]);
  await run(m, root, 'git', ['config', '--global', 'init.defaultBranch', 'main']);
  return m;
}

/** Runs a command; resolves to its stdout, rejects with everything it printed. */
export function run(m: Machine, cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...m.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} failed (${code}):\n${out}${err}`))));
  });
}

/** Files and bytes under a directory (0 when it does not exist). */
export async function dirBytes(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const entries = await fsp.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    files++;
    bytes += (await fsp.stat(path.join(e.parentPath, e.name))).size;
  }
  return { files, bytes };
}
