import yargs from 'yargs';
import { asUserFacing, describeError, exitCodeOf, GitmlError } from './errors';
import { silentLogger } from './log';
import { allowEndpointCommand } from './commands/allow-endpoint';
import { envCommand } from './commands/env';
import { fetchCommand } from './commands/fetch';
import { fsckCommand } from './commands/fsck';
import { installCommand } from './commands/install';
import { err, type CliIO, type Command } from './commands/io';
import { lsFilesCommand } from './commands/ls-files';
import { mergeDriverCommand, preCommitCommand, prePushCommand, versionCommand } from './commands/plumbing';
import { registerCommand } from './commands/register';
import { assetsCommand, diffCommand } from './commands/assets';
import { lineageCommand } from './commands/lineage';
import { getCommand } from './commands/get';
import { promoteCommand } from './commands/promote';
import { runCommand } from './commands/run';
import { runsCommand } from './commands/runs';
import { migrateCommand } from './commands/migrate';
import { uiCommand } from './commands/ui';
import { pruneCommand } from './commands/prune';
import { gcCommand } from './commands/gc';
import { verifyCommand } from './commands/verify';
import { deprecateCommand } from './commands/deprecate';
import { pullCommand } from './commands/pull';
import { pushCommand } from './commands/push';
import { statusCommand } from './commands/status';
import { trackCommand, untrackCommand } from './commands/track';
import { uninstallCommand } from './commands/uninstall';
import { VERSION } from './version';

const COMMANDS: Command[] = [
  installCommand,
  uninstallCommand,
  trackCommand,
  untrackCommand,
  lsFilesCommand,
  statusCommand,
  envCommand,
  allowEndpointCommand,
  pullCommand,
  pushCommand,
  fetchCommand,
  fsckCommand,
  pruneCommand,
  gcCommand,
  registerCommand,
  assetsCommand,
  diffCommand,
  getCommand,
  promoteCommand,
  deprecateCommand,
  verifyCommand,
  lineageCommand,
  runCommand,
  runsCommand,
  migrateCommand,
  uiCommand,
  versionCommand,
  prePushCommand,
  preCommitCommand,
  mergeDriverCommand,
];

/** Names handled by filters/ entry points (protocol on stdout): listed here for help text only. */
const FILTER_HELP: [string, string][] = [
  ['filter-process', 'the long-running git filter (filter.gitml.process); started by git'],
  ['clean [-- path]', 'one-file clean filter: stdin bytes -> pointer on stdout'],
  ['smudge [-- path]', 'one-file smudge filter: stdin pointer -> bytes on stdout'],
];

/** Runs the CLI and returns the exit code: 0 ok, 1 user error, 2 environment or store error. */
export async function runCli(args: string[], io: CliIO): Promise<number> {
  // `--version` belongs to `gitml register` (the asset version); the program's version is asked for
  // with `gitml --version` alone, or `gitml version`.
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
    io.stdout.write(`gitml ${VERSION}\n`);
    return 0;
  }
  const parser = yargs(args)
    .scriptName('gitml')
    .usage('gitml <command> [options]\n\nGit for machine learning: large files in plain git, their bytes in your own store.')
    .strict()
    // Options are read by their written names (--dry-run); camelCase aliases would double every message.
    .parserConfiguration({ 'camel-case-expansion': false })
    .demandCommand(1, 'Name a command (gitml --help lists them).')
    .recommendCommands()
    .version(false)
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .epilogue('Exit codes: 0 ok, 1 bad usage or input, 2 environment, git or store error. Docs: docs/cli.md')
    // A usage error stops here, before any command runs: throwing ends the parse.
    .fail((message, error) => {
      if (error) throw error;
      // At this point the parser holds the failing command's options: they are what a typo meant.
      const known = Object.keys((parser as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key);
      const name = args.find((a) => !a.startsWith('-'));
      const usage = COMMANDS.map((make) => String(make(io).command)).find((c) => c.split(' ')[0] === name);
      throw new GitmlError('E_USAGE', explainUsage(message, known, args, usage), { hint: 'Run `gitml --help` (or `gitml <command> --help`) for usage.' });
    });
  for (const c of FILTER_HELP) parser.command(c[0], c[1], () => undefined, () => undefined);
  for (const make of COMMANDS) parser.command(make(io));
  try {
    await parser.parseAsync();
  } catch (caught) {
    const e = asUserFacing(caught);
    if (e instanceof GitmlError) {
      err(io, `gitml: ${describeError(e)}`);
    } else {
      io.log.error({ err: e }, 'unexpected error');
      err(io, `gitml: internal error: ${describeError(e)}\n  Please report it with the output of \`GITML_LOG=debug gitml ...\`.`);
    }
    return exitCodeOf(e);
  }
  return 0;
}

/** What a command accepts, read from its own definition (tests cover every command through this). */
export interface CommandSpec {
  name: string;
  usage: string;
  required: string[];
  optional: string[];
  /** Allowed values of positionals that have a fixed set (assets <action>). */
  positionalChoices: Record<string, readonly string[]>;
  options: { name: string; type: 'boolean' | 'string' | 'number' | 'count'; choices?: readonly string[]; required: boolean }[];
}

export function describeCommands(): CommandSpec[] {
  const io = { env: {}, cwd: '/', stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, log: silentLogger, stderrIsTTY: false } as CliIO;
  return COMMANDS.map((make) => {
    const module = make(io);
    const usage = String(module.command);
    const [name, ...params] = usage.split(' ');
    const y = yargs([]).version(false);
    if (typeof module.builder === 'function') module.builder(y);
    const o = (y as unknown as { getOptions(): { key: Record<string, unknown>; boolean: string[]; number: string[]; count: string[]; choices: Record<string, string[]>; demandedOptions: Record<string, unknown> } }).getOptions();
    const positional = new Set(params.map((p) => p.replace(/[<>[\].]/g, '')));
    const options = Object.keys(o.key)
      .filter((k) => !['help', 'version', 'h'].includes(k) && !positional.has(k))
      .map((k) => ({
        name: k,
        type: o.boolean.includes(k) ? ('boolean' as const) : o.number.includes(k) ? ('number' as const) : o.count.includes(k) ? ('count' as const) : ('string' as const),
        ...(o.choices[k] ? { choices: o.choices[k] } : {}),
        required: k in o.demandedOptions,
      }));
    return {
      name: name!,
      usage,
      required: params.filter((p) => p.startsWith('<')).map((p) => p.replace(/[<>.]/g, '')),
      optional: params.filter((p) => p.startsWith('[')).map((p) => p.replace(/[[\].]/g, '')),
      positionalChoices: Object.fromEntries(Object.entries(o.choices).filter(([k]) => positional.has(k))),
      options,
    };
  });
}

/** yargs' "Unknown arguments: dry-rnu" as "unknown option --dry-rnu (did you mean --dry-run?)". Pure. */
export function explainUsage(message: string, knownOptions: readonly string[], args: readonly string[], usage?: string): string {
  if (/^Not enough non-option arguments/.test(message) && usage) {
    const [name, ...params] = usage.split(' ');
    const required = params.filter((p) => p.startsWith('<'));
    const dash = args.some((a) => /^-[^-]/.test(a) || (a.startsWith('--') && a.length > 2 && !knownOptions.includes(a.slice(2).split('=')[0]!)));
    return `${name} needs ${required.join(' ')}: usage: gitml ${usage}${dash ? ' (an argument that starts with "-" is read as an option: write -- before it)' : ''}`;
  }
  if (/^Missing required arguments?: /.test(message)) {
    return message.replace(/^Missing required arguments?: (.*)$/, (_w, names: string) => `missing required option${names.includes(',') ? 's' : ''} ${names.split(', ').map((n) => `--${n}`).join(', ')}${usage ? `: usage: gitml ${usage} ...` : ''}`);
  }
  const suggestion = /^Did you mean (.+)\?$/.exec(message);
  if (suggestion) {
    const typed = args.find((a) => !a.startsWith('-') && a !== suggestion[1] && nearest(a, [suggestion[1]!]) !== null);
    return `unknown command ${typed ? JSON.stringify(typed) : ''} (did you mean ${suggestion[1]}?)`.replace('  ', ' ');
  }
  const m = /^Unknown arguments?: (.*)$/.exec(message);
  if (!m) return message;
  const isLong = (name: string) => args.some((a) => a === `--${name}` || a.startsWith(`--${name}=`) || a === `--no-${name}`);
  const isShort = (name: string) => name.length === 1 && args.some((a) => /^-[^-]/.test(a) && a.includes(name));
  const options: string[] = [];
  const extra: string[] = [];
  let unexplained = false;
  for (const name of m[1]!.split(', ')) {
    if (isLong(name)) {
      const negated = !args.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
      const close = nearest(name, knownOptions.filter((k) => k.length > 1));
      options.push(`--${negated ? 'no-' : ''}${name}${close ? ` (did you mean --${negated ? 'no-' : ''}${close}?)` : ''}`);
      unexplained ||= !close;
    } else if (isShort(name)) {
      options.push(`-${name}`);
      unexplained = true;
    }
    else extra.push(JSON.stringify(name));
  }
  const parts: string[] = [];
  if (options.length) parts.push(`unknown option${options.length > 1 ? 's' : ''} ${options.join(', ')}${unexplained ? ' (a value that starts with "-" is read as an option: write -- before it)' : ''}`);
  if (extra.length) parts.push(`unexpected argument${extra.length > 1 ? 's' : ''} ${extra.join(', ')}`);
  return parts.join('; ');
}

/** The known name within two edits of `name`, if there is one. Pure. */
function nearest(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
