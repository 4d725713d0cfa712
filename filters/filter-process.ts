import { openGitml } from '../src/context';
import { describeError, exitCodeOf } from '../src/errors';
import { FilterServer } from '../src/filter/process';
import { createLogger } from '../src/log';
import { LFS_SPEC } from '../src/pointer';

/** `gitml filter-process`: git's long-running filter over stdin/stdout. Returns the exit code. */
export async function main(): Promise<number> {
  const log = createLogger(process.env, 'gitml-filter');
  try {
    const gitml = await openGitml({ cwd: process.cwd(), env: process.env, log });
    const server = new FilterServer({
      input: process.stdin,
      output: process.stdout,
      gitml,
      report: (message) => process.stderr.write(message.endsWith('\n') ? message : `${message}\n`),
      // `filter-process --lfs`: serving filter.lfs (a repository migrated from git-lfs, docs/migrate.md).
      ...(process.argv.includes('--lfs') ? { pointerSpec: LFS_SPEC } : {}),
    });
    await server.run();
    await gitml.close();
    return 0;
  } catch (e) {
    process.stderr.write(`gitml filter-process: ${describeError(e)}\n`);
    return exitCodeOf(e);
  }
}
