#!/usr/bin/env node
import { runCli } from '../src/cli';
import { createLogger } from '../src/log';
import { runMain, setupProcess } from '../src/process-setup';

/**
 * `gitml` and `git-gitml`. The filters go straight to their entry points (no CLI parser to load: git
 * may start one clean/smudge process per file); everything else goes through the CLI.
 */
async function main(args: string[]): Promise<number> {
  setupProcess(process.env);
  switch (args[0]) {
    case 'filter-process':
      return (await import('../filters/filter-process')).main();
    case 'clean':
      return (await import('../filters/clean')).main(args.slice(1));
    case 'smudge':
      return (await import('../filters/smudge')).main(args.slice(1));
    default:
      return runCli(args, {
        env: process.env,
        cwd: process.cwd(),
        stdin: process.stdin,
        stdout: process.stdout,
        stderr: process.stderr,
        log: createLogger(process.env),
        stderrIsTTY: Boolean(process.stderr.isTTY),
      });
  }
}

runMain(
  () => main(process.argv.slice(2)),
  (e) => `gitml: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n  Please report it with the output of \`GITML_LOG=debug gitml ...\`.\n`,
);
