import { spawn, type SpawnOptions } from 'node:child_process';
import path from 'node:path';
import { GitmlError } from '../errors';

export interface GitContext {
  /** Directory git runs in. */
  cwd: string;
  /** Environment for git; GIT_DIR and friends pass through from here. */
  env: NodeJS.ProcessEnv;
}

export interface GitRunOptions {
  input?: string | Buffer;
  /** Exit codes that are answers, not failures (for example 1 from `git config --get`). */
  okCodes?: readonly number[];
  /** Send git's stderr to ours (progress and messages a person should see). */
  inheritStderr?: boolean;
}

export interface GitResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export class GitCommandError extends GitmlError {
  constructor(
    readonly args: readonly string[],
    readonly gitExitCode: number,
    readonly stderr: string,
  ) {
    super('E_GIT', `git ${summarizeArgs(args)} failed (exit ${gitExitCode})${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
  }
}

function summarizeArgs(args: readonly string[]): string {
  const shown = args.slice(0, 4).join(' ');
  return args.length > 4 ? `${shown} ...` : shown;
}

export async function runGit(ctx: GitContext, args: readonly string[], options: GitRunOptions = {}): Promise<GitResult> {
  const spawnOptions: SpawnOptions = {
    cwd: ctx.cwd,
    env: ctx.env,
    stdio: ['pipe', 'pipe', options.inheritStderr ? 'inherit' : 'pipe'],
  };
  return new Promise((resolve, reject) => {
    const child = spawn('git', args as string[], spawnOptions);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) =>
      reject(new GitmlError('E_GIT', `cannot run git: ${e.message}`, { hint: 'Install git and make sure it is on PATH.', cause: e })),
    );
    child.on('close', (code, signal) => {
      const result: GitResult = {
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (result.code === 0 || options.okCodes?.includes(result.code)) resolve(result);
      else reject(new GitCommandError(args, result.code, result.stderr));
    });
    child.stdin!.on('error', () => {
      // git may exit before reading all input; its exit status tells what happened.
    });
    child.stdin!.end(options.input ?? '');
  });
}

/** stdout as text without the final newline. */
export async function gitText(ctx: GitContext, args: readonly string[], options: GitRunOptions = {}): Promise<string> {
  const r = await runGit(ctx, args, options);
  return r.stdout.toString('utf8').replace(/\n$/, '');
}

/** The repository's object directory, absolute (`git rev-parse --git-path objects`: honours GIT_OBJECT_DIRECTORY). */
export async function gitObjectsDirectory(ctx: GitContext): Promise<string> {
  return path.resolve(ctx.cwd, (await gitText(ctx, ['rev-parse', '--git-path', 'objects'])).trim());
}

/** stdout split on NUL (for -z output), empty entries dropped. */
export async function gitZ(ctx: GitContext, args: readonly string[], options: GitRunOptions = {}): Promise<string[]> {
  const r = await runGit(ctx, args, options);
  return r.stdout
    .toString('utf8')
    .split('\0')
    .filter((s) => s.length > 0);
}
