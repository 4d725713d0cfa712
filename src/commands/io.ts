import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { Argv, CommandModule } from 'yargs';
import { openGitml, type Gitml } from '../context';

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

export function progressFor(io: CliIO, quiet = false) {
  return { sink: { write: (t: string) => void io.stderr.write(t) }, enabled: !quiet && io.stderrIsTTY };
}

export function withJson<T>(y: Argv<T>) {
  return y.option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON on stdout' });
}
