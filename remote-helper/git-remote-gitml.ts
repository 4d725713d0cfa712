#!/usr/bin/env node
import { describeError, exitCodeOf } from '../src/errors';
import { createLogger } from '../src/log';
import { runMain, setupProcess } from '../src/process-setup';
import { RemoteHelper } from '../src/remote-helper/helper';

/** git runs `git-remote-gitml <remote> <url>` for remotes written gitml::<url>. */
async function main(argv: string[]): Promise<number> {
  setupProcess(process.env);
  const log = createLogger(process.env, 'git-remote-gitml');
  const [remoteName, url] = argv;
  if (!remoteName) {
    process.stderr.write('usage: git-remote-gitml <remote> [<url>] (git runs this for remotes written gitml::<url>)\n');
    return 1;
  }
  try {
    const helper = new RemoteHelper({
      remoteName,
      url: url ?? remoteName,
      input: process.stdin,
      output: process.stdout,
      env: { ...process.env, GITML_IN_REMOTE_HELPER: '1' },
      cwd: process.cwd(),
      log,
      stderr: { write: (t) => void process.stderr.write(t) },
    });
    await helper.run();
    return 0;
  } catch (e) {
    process.stderr.write(`gitml: ${describeError(e)}\n`);
    return exitCodeOf(e);
  }
}

// git waits for the helper to exit: every path out of main ends the process (src/process-setup.ts).
runMain(
  () => main(process.argv.slice(2)),
  (e) => `gitml: internal error in git-remote-gitml: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
);
