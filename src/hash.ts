import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** sha256 and byte count of a stream, read to its end. */
export async function sha256Of(stream: AsyncIterable<unknown>): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of stream) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/** Writes a stream to a new file (`wx`: never over an existing one), hashing it on the way. */
export async function writeHashing(source: Readable, dest: string, mode?: number): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  await pipeline(
    source,
    new Transform({
      transform(chunk: Buffer, _encoding, done) {
        h.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    }),
    fs.createWriteStream(dest, { flags: 'wx', ...(mode === undefined ? {} : { mode }) }),
  );
  return { sha256: h.digest('hex'), size };
}
