import yargs from 'yargs';
import { describeError, exitCodeOf, GitmlError } from './errors';
import { envCommand } from './commands/env';
import { fetchCommand } from './commands/fetch';
import { fsckCommand } from './commands/fsck';
import { installCommand } from './commands/install';
import { err, type CliIO, type Command } from './commands/io';
import { lsFilesCommand } from './commands/ls-files';
import { mergeDriverCommand, preCommitCommand, prePushCommand, versionCommand } from './commands/plumbing';
import { registerCommand } from './commands/register';
import { assetsCommand } from './commands/assets';
import { lineageCommand } from './commands/lineage';
import { getCommand } from './commands/get';
import { promoteCommand } from './commands/promote';
import { runCommand, runsCommand } from './commands/run';
import { pruneCommand } from './commands/prune';
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
  pullCommand,
  pushCommand,
  fetchCommand,
  fsckCommand,
  pruneCommand,
  registerCommand,
  assetsCommand,
  getCommand,
  promoteCommand,
  lineageCommand,
  runCommand,
  runsCommand,
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
  let usageError: string | null = null;
  const parser = yargs(args)
    .scriptName('gitml')
    .usage('gitml <command> [options]\n\nGit for machine learning: large files in plain git, their bytes in your own store.')
    .strict()
    .demandCommand(1, 'Name a command (gitml --help lists them).')
    .recommendCommands()
    .version(false)
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .epilogue('Exit codes: 0 ok, 1 bad usage or input, 2 environment, git or store error. Docs: docs/cli.md')
    .fail((message, error) => {
      if (error) throw error;
      usageError = message;
    });
  for (const c of FILTER_HELP) parser.command(c[0], c[1], () => undefined, () => undefined);
  for (const make of COMMANDS) parser.command(make(io));
  try {
    await parser.parseAsync();
  } catch (e) {
    if (e instanceof GitmlError) {
      err(io, `gitml: ${describeError(e)}`);
    } else {
      io.log.error({ err: e }, 'unexpected error');
      err(io, `gitml: internal error: ${describeError(e)}\n  Please report it with the output of \`GITML_LOG=debug gitml ...\`.`);
    }
    return exitCodeOf(e);
  }
  if (usageError !== null) {
    err(io, `gitml: ${usageError}\n  Run \`gitml --help\` for usage.`);
    return 1;
  }
  return 0;
}
