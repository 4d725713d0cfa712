#!/usr/bin/env node
import { runMain, setupProcess } from '../src/process-setup';

/**
 * `gitml` and `git-gitml`. The filters go straight to their entry points: the CLI (its parser, every
 * command and what they import) is not even loaded, which was 166 of the 244 modules a filter
 * process loaded and 45% of its start (git starts one per command, or one per file for clean/smudge).
 * Everything else goes through the CLI.
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
    default: {
      const [{ runCli }, { createLogger }] = await Promise.all([import('../src/cli'), import('../src/log')]);
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
}

runMain(
  () => main(process.argv.slice(2)),
  (e) => `gitml: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n  Please report it with the output of \`GITML_LOG=debug gitml ...\`.\n`,
);
