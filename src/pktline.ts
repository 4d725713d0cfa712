import type { Readable, Writable } from 'node:stream';
import { GitmlError } from './errors';

/**
 * git's pkt-line framing (gitprotocol-common): four hex digits of length including the header, then
 * the payload; "0000" is a flush packet. At most 65520 bytes a packet, so 65516 of payload.
 */
export const MAX_PACKET_SIZE = 65520;
export const MAX_PAYLOAD = MAX_PACKET_SIZE - 4;

export const FLUSH: unique symbol = Symbol('flush');
export type Packet = Buffer | typeof FLUSH;

const FLUSH_BYTES = Buffer.from('0000', 'ascii');
const EMPTY = Buffer.alloc(0);
const SUCCESS_THEN_FLUSH = Buffer.concat([encodePacket('status=success\n'), FLUSH_BYTES]);
const TWO_FLUSHES = Buffer.concat([FLUSH_BYTES, FLUSH_BYTES]);

export function encodePacket(payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  if (body.length > MAX_PAYLOAD) throw new RangeError(`pkt-line payload of ${body.length} bytes exceeds ${MAX_PAYLOAD}`);
  if (body.length === 0) throw new RangeError('empty pkt-line payload (use a flush packet)');
  const header = Buffer.from((body.length + 4).toString(16).padStart(4, '0'), 'ascii');
  return Buffer.concat([header, body]);
}

export function encodeFlush(): Buffer {
  return FLUSH_BYTES;
}

/**
 * Frames a run of data as as many full packets as it needs, in one buffer (one write instead of one
 * per packet). Used for file content: the caller hands in up to a few MiB at a time.
 */
export function frameData(data: Buffer, before: Buffer = EMPTY, after: Buffer = EMPTY): Buffer {
  const packets = Math.ceil(data.length / MAX_PAYLOAD);
  const out = Buffer.allocUnsafe(before.length + data.length + packets * 4 + after.length);
  let at = before.copy(out, 0);
  for (let offset = 0; offset < data.length; offset += MAX_PAYLOAD) {
    const n = Math.min(MAX_PAYLOAD, data.length - offset);
    out.write((n + 4).toString(16).padStart(4, '0'), at, 'ascii');
    data.copy(out, at + 4, offset, offset + n);
    at += n + 4;
  }
  after.copy(out, at);
  return out;
}

/**
 * Reads packets from a stream. `read()` resolves to a payload, FLUSH, or null at a clean end of stream
 * (between packets); a stream that ends inside a packet is a protocol error.
 */
export class PktLineReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private readonly iterator: AsyncIterator<Buffer>;

  constructor(stream: Readable) {
    this.iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async read(): Promise<Packet | null> {
    if (!(await this.fill(4))) {
      if (this.buffered === 0) return null;
      throw new GitmlError('E_PROTOCOL', 'pkt-line: stream ended inside a packet header');
    }
    const header = this.take(4).toString('ascii');
    if (!/^[0-9a-f]{4}$/.test(header)) {
      throw new GitmlError('E_PROTOCOL', `pkt-line: invalid length header ${JSON.stringify(header)}`);
    }
    const length = parseInt(header, 16);
    if (length === 0) return FLUSH;
    if (length < 4 || length > MAX_PACKET_SIZE) {
      // 0001 (delim) and 0002 (response-end) belong to protocol v2 of the wire, never to filters.
      throw new GitmlError('E_PROTOCOL', `pkt-line: unexpected packet length ${length}`);
    }
    if (length === 4) return Buffer.alloc(0);
    if (!(await this.fill(length - 4))) {
      throw new GitmlError('E_PROTOCOL', 'pkt-line: stream ended inside a packet');
    }
    return this.take(length - 4);
  }

  /** A text packet without its trailing LF, or FLUSH/null. */
  async readText(): Promise<string | typeof FLUSH | null> {
    const packet = await this.read();
    if (packet === null || packet === FLUSH) return packet;
    const text = packet.toString('utf8');
    return text.endsWith('\n') ? text.slice(0, -1) : text;
  }

  /** Text packets up to the next flush. Null if the stream ended cleanly before any packet. */
  async readTextList(): Promise<string[] | null> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.readText();
      if (line === null) {
        if (lines.length === 0) return null;
        throw new GitmlError('E_PROTOCOL', 'pkt-line: stream ended before a flush packet');
      }
      if (line === FLUSH) return lines;
      lines.push(line);
    }
  }

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n) {
      if (this.ended) return false;
      const next = await this.iterator.next();
      if (next.done) {
        this.ended = true;
        return false;
      }
      const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
      if (chunk.length === 0) continue;
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    return true;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) {
      // Views, not copies: content packets are consumed before the chunk is reused.
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[0]!;
      const need = n - at;
      if (chunk.length <= need) {
        chunk.copy(out, at);
        at += chunk.length;
        this.chunks.shift();
      } else {
        chunk.copy(out, at, 0, need);
        this.chunks[0] = chunk.subarray(need);
        at += need;
      }
    }
    this.buffered -= n;
    return out;
  }
}

/** Writes packets with backpressure: every write resolves once the stream can take more. */
export class PktLineWriter {
  constructor(private readonly stream: Writable) {}

  async text(line: string): Promise<void> {
    await this.raw(encodePacket(`${line}\n`));
  }

  async texts(lines: readonly string[], flush = true): Promise<void> {
    const parts = lines.map((l) => encodePacket(`${l}\n`));
    if (flush) parts.push(FLUSH_BYTES);
    await this.raw(Buffer.concat(parts));
  }

  async flush(): Promise<void> {
    await this.raw(FLUSH_BYTES);
  }

  /**
   * A whole filter answer in one write: status=success, the content, and the empty list that keeps
   * the status. Four writes per file (and four wake-ups of git) cost a 20,000-file checkout or add
   * more than the bytes did.
   */
  async answer(content: Buffer): Promise<void> {
    await this.raw(frameData(content, SUCCESS_THEN_FLUSH, TWO_FLUSHES));
  }

  /** Content of any length, framed into as many packets as needed. */
  async data(data: Buffer): Promise<void> {
    if (data.length > 0) await this.raw(frameData(data));
  }

  raw(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.stream.once('error', onError);
      const ok = this.stream.write(bytes, (err) => {
        if (err) reject(err);
      });
      const done = () => {
        this.stream.off('error', onError);
        resolve();
      };
      if (ok) done();
      else this.stream.once('drain', done);
    });
  }
}
