import { createHash, type Hash } from 'node:crypto';

/**
 * The least a long-running clean filter can do (bench baseline): it hashes what git sends and answers
 * with a pointer, and stores nothing. `git add` through it measures git's own share of adding files
 * through any filter tool (a process start, the protocol, git writing each pointer as a loose object)
 * beside what gitml and git-lfs add to it (storing the bytes). Clean only; not a usable filter.
 */
const out: Buffer[] = [];
const packet = (text: string) => {
  const body = Buffer.from(text);
  out.push(Buffer.from((body.length + 4).toString(16).padStart(4, '0')), body);
};
const flush = () => out.push(Buffer.from('0000'));
const send = () => process.stdout.write(Buffer.concat(out.splice(0)));

let pending: Buffer = Buffer.alloc(0);
let flushes = 0;
let stage: 'handshake' | 'command' | 'content' = 'handshake';
let hash: Hash | null = null;
let size = 0;

function onPacket(payload: Buffer): void {
  if (stage === 'content') {
    hash!.update(payload);
    size += payload.length;
  }
}

function onFlush(): void {
  if (stage === 'handshake') {
    // git: welcome and versions, flush; then capabilities, flush.
    if (++flushes === 1) {
      packet('git-filter-server\n');
      packet('version=2\n');
    } else {
      packet('capability=clean\n');
      stage = 'command';
    }
    flush();
    send();
  } else if (stage === 'command') {
    stage = 'content';
    hash = createHash('sha256');
    size = 0;
  } else {
    packet('status=success\n');
    flush();
    packet(`version https://git-lfs.github.com/spec/v1\noid sha256:${hash!.digest('hex')}\nsize ${size}\n`);
    flush();
    flush();
    send();
    stage = 'command';
  }
}

process.stdin.on('data', (data: Buffer) => {
  pending = pending.length > 0 ? Buffer.concat([pending, data]) : data;
  let at = 0;
  while (pending.length - at >= 4) {
    const length = parseInt(pending.toString('latin1', at, at + 4), 16);
    if (length === 0) {
      at += 4;
      onFlush();
      continue;
    }
    if (pending.length - at < length) break;
    onPacket(pending.subarray(at + 4, at + length));
    at += length;
  }
  pending = pending.subarray(at);
});
