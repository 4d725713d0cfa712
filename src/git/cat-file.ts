import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import Queue from 'yocto-queue';
import { GitmlError } from '../errors';
import type { GitContext } from './exec';

export interface BlobContent {
  oid: string;
  type: string;
  size: number;
  content: Buffer;
}

interface Pending {
  resolve: (value: BlobContent | null) => void;
  reject: (err: Error) => void;
}

/**
 * One long-lived `git cat-file --batch`, answering requests in order. Meant for small objects
 * (pointer candidates): each answer is held in memory whole.
 */
export class CatFileBatch {
  private readonly child: ChildProcessWithoutNullStreams;
  // A queue, not an array: Array#shift on 20,000 waiting requests (a push's pointer scan) copies the
  // rest each time, 0.2 s in all.
  private readonly pending = new Queue<Pending>();
  private buffer: Buffer = Buffer.alloc(0);
  private failure: Error | null = null;

  constructor(ctx: GitContext) {
    this.child = spawn('git', ['cat-file', '--batch'], { cwd: ctx.cwd, env: ctx.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    this.child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString('utf8');
    });
    this.child.stdout.on('data', (b: Buffer) => {
      this.buffer = this.buffer.length === 0 ? b : Buffer.concat([this.buffer, b]);
      this.drain();
    });
    const fail = (err: Error) => {
      this.failure = err;
      this.rejectAll(err);
    };
    this.child.on('error', (e) => fail(new GitmlError('E_GIT', `cannot run git cat-file: ${e.message}`)));
    this.child.on('close', (code) => {
      if (this.pending.size > 0) fail(new GitmlError('E_GIT', `git cat-file --batch exited (${code}): ${stderr.trim()}`));
    });
    this.child.stdin.on('error', () => undefined);
  }

  /** The object's content, or null when the repository does not have it. */
  get(oid: string): Promise<BlobContent | null> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.enqueue({ resolve, reject });
      this.child.stdin.write(`${oid}\n`);
    });
  }

  close(): void {
    this.child.stdin.end();
  }

  private rejectAll(err: Error): void {
    for (let p = this.pending.dequeue(); p; p = this.pending.dequeue()) p.reject(err);
  }

  private drain(): void {
    while (this.pending.size > 0) {
      const eol = this.buffer.indexOf(0x0a);
      if (eol < 0) return;
      const header = this.buffer.subarray(0, eol).toString('utf8');
      if (header.endsWith(' missing') || header.endsWith(' ambiguous')) {
        this.buffer = this.buffer.subarray(eol + 1);
        this.pending.dequeue()!.resolve(null);
        continue;
      }
      const [oid, type, sizeText] = header.split(' ');
      const size = Number(sizeText);
      if (!oid || !type || !Number.isSafeInteger(size)) {
        const err = new GitmlError('E_GIT', `unexpected git cat-file output: ${JSON.stringify(header)}`);
        this.failure = err;
        this.rejectAll(err);
        return;
      }
      // Content, then a newline.
      if (this.buffer.length < eol + 1 + size + 1) return;
      const content = Buffer.from(this.buffer.subarray(eol + 1, eol + 1 + size));
      this.buffer = this.buffer.subarray(eol + 1 + size + 1);
      this.pending.dequeue()!.resolve({ oid, type, size, content });
    }
  }
}
