import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { CONTROL_FILES } from '../git/check-attr';
import type { Gitml } from '../context';
import { MAX_FOREIGN_POINTER_SIZE } from '../pointer';
import { Cleaner } from './clean';
import { classifySmudgeInput, ensureCached, smudgeFailure, streamCached } from './smudge';
import { GitmlError } from '../errors';

/**
 * One file per process (`filter.gitml.clean = gitml clean -- %f`), for git configurations that
 * predate filter.<driver>.process. Same results as the long-running filter, one process per file.
 */
export async function cleanOne(gitml: Gitml, pathname: string, input: Readable, output: Writable, spec?: string): Promise<void> {
  if (CONTROL_FILES.includes(path.posix.basename(pathname))) {
    // Never a pointer (see FilterServer.clean).
    for await (const chunk of input) await write(output, chunk as Buffer);
    return;
  }
  const cleaner = new Cleaner(gitml.cache, undefined, spec);
  try {
    for await (const chunk of input) await cleaner.write(chunk as Buffer);
    await write(output, await cleaner.finish());
  } catch (e) {
    await cleaner.abort();
    throw e;
  }
}

export async function smudgeOne(gitml: Gitml, pathname: string, input: Readable, output: Writable): Promise<void> {
  const head: Buffer[] = [];
  let headBytes = 0;
  const iterator = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  // Read just enough to know whether this can be a pointer; larger content passes straight through.
  while (headBytes < MAX_FOREIGN_POINTER_SIZE) {
    const next = await iterator.next();
    if (next.done) break;
    head.push(next.value);
    headBytes += next.value.length;
  }
  const content = Buffer.concat(head, headBytes);
  const kind = headBytes < MAX_FOREIGN_POINTER_SIZE ? classifySmudgeInput(content, gitml.env) : ({ kind: 'passthrough' } as const);
  if (kind.kind === 'passthrough') {
    await write(output, content);
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) await write(output, next.value);
    return;
  }
  try {
    await ensureCached(gitml, kind.pointer, pathname);
    await streamCached(gitml, kind.pointer, (chunk) => write(output, chunk), true);
  } catch (e) {
    const storeUrl = await gitml.store().then((s) => s.url, () => null);
    throw new GitmlError(e instanceof GitmlError ? e.code : 'E_STORE_IO', smudgeFailure(pathname, kind.pointer, storeUrl, e).replace(/^gitml: /, ''), { cause: e });
  }
}

function write(stream: Writable, data: Buffer): Promise<void> {
  if (data.length === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const ok = stream.write(data, (err) => (err ? reject(err) : undefined));
    if (ok) resolve();
    else stream.once('drain', resolve);
  });
}
