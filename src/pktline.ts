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

/** The bytes `frameData` writes for `length` bytes of content between `before` and `after`. */
export function framedLength(length: number, before: Buffer = EMPTY, after: Buffer = EMPTY): number {
  return before.length + length + Math.ceil(length / MAX_PAYLOAD) * 4 + after.length;
}

/**
 * Frames a run of data as as many full packets as it needs, in one buffer (one write instead of one
 * per packet). Used for file content: the caller hands in up to a few MiB at a time. With `into`
 * (at least `framedLength` bytes), the framing is written there and a view of it returned.
 */
export function frameData(data: Buffer, before: Buffer = EMPTY, after: Buffer = EMPTY, into?: Buffer): Buffer {
  const length = framedLength(data.length, before, after);
  const out = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
  let at = before.copy(out, 0);
  for (let offset = 0; offset < data.length; offset += MAX_PAYLOAD) {
    const n = Math.min(MAX_PAYLOAD, data.length - offset);
    writeLengthHeader(out, at, n + 4);
    data.copy(out, at + 4, offset, offset + n);
    at += n + 4;
  }
  after.copy(out, at);
  return out;
}

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'ascii');

function writeLengthHeader(out: Buffer, at: number, length: number): void {
  out[at] = HEX_DIGITS[(length >> 12) & 15]!;
  out[at + 1] = HEX_DIGITS[(length >> 8) & 15]!;
  out[at + 2] = HEX_DIGITS[(length >> 4) & 15]!;
  out[at + 3] = HEX_DIGITS[length & 15]!;
}

/** A text packet's payload without its trailing LF. */
function textOf(packet: Buffer): string {
  // Decoded without the LF rather than sliced after: a slice keeps the whole decoded packet alive for
  // as long as any part of it is held (a delayed file's path, for the length of a checkout).
  return packet.toString('utf8', 0, packet[packet.length - 1] === 0x0a ? packet.length - 1 : packet.length);
}

/** The value of one lowercase hex digit, or -1 (pkt-line headers are lowercase hex). */
function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  return -1;
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
    for (;;) {
      const packet = this.poll();
      if (packet !== undefined) return packet;
      if (!(await this.more())) {
        if (this.buffered === 0) return null;
        throw new GitmlError('E_PROTOCOL', this.buffered < 4 ? 'pkt-line: stream ended inside a packet header' : 'pkt-line: stream ended inside a packet');
      }
    }
  }

  /** A text packet without its trailing LF, or FLUSH/null. */
  async readText(): Promise<string | typeof FLUSH | null> {
    const packet = this.poll() ?? (await this.read());
    return packet === null || packet === FLUSH ? packet : textOf(packet);
  }

  /** Text packets up to the next flush. Null if the stream ended cleanly before any packet. */
  async readTextList(): Promise<string[] | null> {
    const lines: string[] = [];
    for (;;) {
      // Packets already buffered are taken without a promise each: git sends a request's lines in
      // one write, and 40,000 requests of a checkout made a promise and a closure per line.
      const packet = this.poll() ?? (await this.read());
      if (packet === null) {
        if (lines.length === 0) return null;
        throw new GitmlError('E_PROTOCOL', 'pkt-line: stream ended before a flush packet');
      }
      if (packet === FLUSH) return lines;
      lines.push(textOf(packet));
    }
  }

  /**
   * The next packet if all of it is already buffered, else undefined (nothing is consumed): no
   * promise, for loops over many small packets (`poll() ?? await read()`).
   */
  poll(): Packet | undefined {
    if (this.buffered < 4) return undefined;
    let length = 0;
    for (let i = 0; i < 4; i++) {
      const digit = hexValue(this.byteAt(i));
      if (digit < 0) {
        const header = Buffer.from([0, 1, 2, 3].map((j) => this.byteAt(j))).toString('latin1');
        throw new GitmlError('E_PROTOCOL', `pkt-line: invalid length header ${JSON.stringify(header)}`);
      }
      length = length * 16 + digit;
    }
    if (length === 0) {
      this.take(4);
      return FLUSH;
    }
    if (length < 4 || length > MAX_PACKET_SIZE) {
      // 0001 (delim) and 0002 (response-end) belong to protocol v2 of the wire, never to filters.
      throw new GitmlError('E_PROTOCOL', `pkt-line: unexpected packet length ${length}`);
    }
    if (this.buffered < length) return undefined;
    this.take(4);
    return length === 4 ? EMPTY : this.take(length - 4);
  }

  /** The byte `i` places into what is buffered (i < buffered). */
  private byteAt(i: number): number {
    for (const chunk of this.chunks) {
      if (i < chunk.length) return chunk[i]!;
      i -= chunk.length;
    }
    return -1;
  }

  /** Reads one more chunk from the stream; false at its end. */
  private async more(): Promise<boolean> {
    for (;;) {
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
      return true;
    }
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

/** Answers with up to this much content are framed in a reused buffer (small files: most answers of a checkout). */
const ANSWER_FRAME_CONTENT = 1 << 20;
const ANSWER_FRAME = framedLength(ANSWER_FRAME_CONTENT, SUCCESS_THEN_FLUSH, TWO_FLUSHES);

/** Writes packets with backpressure: every write resolves once the stream can take more. */
export class PktLineWriter {
  /**
   * Buffers small answers are framed in, each back here once the stream has written it. A checkout of
   * 20,000 small files framed each answer in a buffer of its own: half a GiB of garbage outside the
   * JavaScript heap, which the collector frees late.
   */
  private readonly frames: Buffer[] = [];

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
    if (content.length > ANSWER_FRAME_CONTENT) {
      await this.raw(frameData(content, SUCCESS_THEN_FLUSH, TWO_FLUSHES));
      return;
    }
    const frame = this.frames.pop() ?? Buffer.allocUnsafeSlow(ANSWER_FRAME);
    await this.raw(frameData(content, SUCCESS_THEN_FLUSH, TWO_FLUSHES, frame), () => this.frames.push(frame));
  }

  /** Content of any length, framed into as many packets as needed. */
  async data(data: Buffer): Promise<void> {
    if (data.length > 0) await this.raw(frameData(data));
  }

  /** Writes; resolves once the stream can take more. `written`: called once the stream is done with `bytes`. */
  raw(bytes: Buffer, written?: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.stream.once('error', onError);
      const ok = this.stream.write(bytes, (err) => {
        if (err) reject(err);
        else written?.();
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
