import { openGitml } from '../src/context';
import { describeError, exitCodeOf } from '../src/errors';
import { cleanOne } from '../src/filter/single';
import { createLogger } from '../src/log';
import { LFS_SPEC } from '../src/pointer';

/** `gitml clean -- <path>`: one file's bytes on stdin, its pointer on stdout. */
export async function main(args: string[]): Promise<number> {
  const log = createLogger(process.env, 'gitml-clean');
  const pathname = args[args.length - 1] ?? '';
  try {
    const gitml = await openGitml({ cwd: process.cwd(), env: process.env, log });
    await cleanOne(gitml, pathname, process.stdin, process.stdout, args.includes('--lfs') ? LFS_SPEC : undefined);
    return 0;
  } catch (e) {
    process.stderr.write(`gitml: cannot add '${pathname}': ${describeError(e)}\n`);
    return exitCodeOf(e);
  }
}
