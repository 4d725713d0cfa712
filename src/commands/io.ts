import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../log';
import type { Argv, CommandModule } from 'yargs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openGitml, type Gitml } from '../context';
import { describeError, GitmlError, isGitmlError } from '../errors';
import { formatRef, parseRef } from '../assets/names';
import { enforceCacheLimit } from '../cache-limit';
import { runGit } from '../git/exec';
import { makeDirs } from '../safe-path';

/** What a command may touch: passed in, so commands run the same under tests and in the binary. */
export interface CliIO {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  log: Logger;
  /** Whether stderr is a terminal (progress is shown there). */
  stderrIsTTY: boolean;
}

export type Command = (io: CliIO) => CommandModule<object, any>;

export function out(io: CliIO, text = ''): void {
  io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function err(io: CliIO, text: string): void {
  io.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function json(io: CliIO, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function openHere(io: CliIO, options: { treeish?: string } = {}): Promise<Gitml> {
  return openGitml({ cwd: io.cwd, env: io.env, log: io.log, treeish: options.treeish });
}

/**
 * The repository here, or, outside any repository, a private bare one in the user's cache directory
 * (for commands that only read other repositories, like `gitml get <url>#<ref>`).
 */
export async function openHereOrHost(io: CliIO, refs: readonly string[]): Promise<Gitml> {
  // Malformed references are usage errors before anything is opened or created.
  const parsed = refs.map((r) => parseRef(r));
  try {
    return await openHere(io);
  } catch (e) {
    if (!isGitmlError(e, 'E_NOT_A_REPO')) throw e;
    const local = parsed.find((r) => !r.repo);
    if (local) {
      throw new GitmlError('E_NOT_A_REPO', `${formatRef(local)} names an asset of this repository, and ${io.cwd} is not in a git repository`, {
        hint: `Run it in the repository that holds the asset, or name the repository: <repo-url>#${formatRef(local)}`,
      });
    }
  }
  return openHost(io);
}

/** The repository here, or null outside any repository (commands that work either way). */
export async function openOptional(io: CliIO): Promise<Gitml | null> {
  try {
    return await openHere(io);
  } catch (e) {
    if (isGitmlError(e, 'E_NOT_A_REPO')) return null;
    throw e;
  }
}

/** A private bare repository in the user's cache directory, to read other repositories from anywhere. */
export async function openHost(io: CliIO): Promise<Gitml> {
  const cache = io.env.XDG_CACHE_HOME ?? path.join(io.env.HOME ?? os.tmpdir(), '.cache');
  const host = path.join(cache, 'gitml', 'host.git');
  if (!fs.existsSync(path.join(host, 'HEAD'))) {
    await makeDirs(path.dirname(host));
    await runGit({ cwd: path.dirname(host), env: io.env }, ['init', '-q', '--bare', host]);
  }
  return openGitml({ cwd: host, env: io.env, log: io.log, workTree: false });
}

export function progressFor(io: CliIO, quiet = false) {
  return { sink: { write: (t: string) => void io.stderr.write(t) }, enabled: !quiet && io.stderrIsTTY };
}

export function withJson<T>(y: Argv<T>) {
  return y.option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON on stdout' });
}

/** gitml.cache.maxsize after a command that filled the cache; problems are warnings, not failures. */
export async function warnOverCacheLimit(io: CliIO, gitml: Gitml): Promise<void> {
  try {
    const r = await enforceCacheLimit(gitml);
    if (r && r.stillOver > 0) err(io, `gitml: warning: the cache is ${r.stillOver} bytes over gitml.cache.maxsize; the rest is not in the store yet (push it)`);
  } catch (e) {
    err(io, `gitml: warning: could not keep the cache under gitml.cache.maxsize: ${describeError(e)}`);
  }
}
