import { openGitml } from '../src/context';
import { describeError, exitCodeOf } from '../src/errors';
import { smudgeOne } from '../src/filter/single';
import { createLogger } from '../src/log';

/** `gitml smudge -- <path>`: a pointer on stdin, the verified bytes on stdout. */
export async function main(args: string[]): Promise<number> {
  const log = createLogger(process.env, 'gitml-smudge');
  const pathname = args[args.length - 1] ?? '';
  try {
    const gitml = await openGitml({ cwd: process.cwd(), env: process.env, log });
    await smudgeOne(gitml, pathname, process.stdin, process.stdout);
    await gitml.close();
    return 0;
  } catch (e) {
    process.stderr.write(`gitml: ${describeError(e)}\n`);
    return exitCodeOf(e);
  }
}
