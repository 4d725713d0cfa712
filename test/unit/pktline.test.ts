import { PassThrough, Readable, Writable } from 'node:stream';
import { encodeFlush, encodePacket, FLUSH, frameData, MAX_PAYLOAD, PktLineReader, PktLineWriter } from '../../src/pktline';

function readerOf(...chunks: Buffer[]): PktLineReader {
  return new PktLineReader(Readable.from(chunks));
}

describe('pkt-line', () => {
  test('encodes the length including the 4-byte header', () => {
    expect(encodePacket('a\n').toString()).toBe('0006a\n');
    expect(encodeFlush().toString()).toBe('0000');
  });

  test('accepts a payload of exactly 65516 bytes and refuses one byte more', () => {
    const max = encodePacket(Buffer.alloc(MAX_PAYLOAD, 1));
    expect(max.length).toBe(65520);
    expect(max.subarray(0, 4).toString()).toBe('fff0');
    expect(() => encodePacket(Buffer.alloc(MAX_PAYLOAD + 1))).toThrow(RangeError);
    expect(() => encodePacket(Buffer.alloc(0))).toThrow(RangeError);
  });

  test('frames data into full packets at the boundary', () => {
    const data = Buffer.alloc(MAX_PAYLOAD * 2 + 1, 7);
    const framed = frameData(data);
    expect(framed.length).toBe(data.length + 3 * 4);
    expect(framed.subarray(0, 4).toString()).toBe('fff0');
    expect(framed.subarray(65520, 65524).toString()).toBe('fff0');
    expect(framed.subarray(131040, 131044).toString()).toBe('0005');
  });

  test('reads packets split across arbitrary chunk boundaries', async () => {
    const payload = Buffer.alloc(MAX_PAYLOAD, 3);
    const whole = Buffer.concat([encodePacket('command=clean\n'), encodeFlush(), frameData(payload), encodeFlush()]);
    const chunks: Buffer[] = [];
    for (let i = 0; i < whole.length; i += 1000 + (i % 7)) chunks.push(whole.subarray(i, Math.min(whole.length, i + 1000 + (i % 7))));
    const reader = readerOf(...chunks);
    expect(await reader.readTextList()).toEqual(['command=clean']);
    const packet = await reader.read();
    expect(Buffer.isBuffer(packet) && packet.equals(payload)).toBe(true);
    expect(await reader.read()).toBe(FLUSH);
    expect(await reader.read()).toBeNull();
  });

  test('a stream ending inside a packet is a protocol error', async () => {
    await expect(readerOf(Buffer.from('000aabc')).read()).rejects.toMatchObject({ code: 'E_PROTOCOL' });
    await expect(readerOf(Buffer.from('00')).read()).rejects.toMatchObject({ code: 'E_PROTOCOL' });
  });

  test('invalid headers and special packets are refused', async () => {
    await expect(readerOf(Buffer.from('zzzz')).read()).rejects.toMatchObject({ code: 'E_PROTOCOL' });
    await expect(readerOf(Buffer.from('0001')).read()).rejects.toMatchObject({ code: 'E_PROTOCOL' });
    await expect(readerOf(Buffer.from('fff1')).read()).rejects.toMatchObject({ code: 'E_PROTOCOL' });
  });

  test('the writer frames text and data and honours backpressure', async () => {
    const sink = new PassThrough({ highWaterMark: 16 });
    const writer = new PktLineWriter(sink);
    const received: Buffer[] = [];
    sink.on('data', (b: Buffer) => received.push(b));
    await writer.texts(['status=success']);
    await writer.data(Buffer.alloc(MAX_PAYLOAD + 10, 9));
    await writer.flush();
    const all = Buffer.concat(received);
    const reader = readerOf(all);
    expect(await reader.readTextList()).toEqual(['status=success']);
    expect(((await reader.read()) as Buffer).length).toBe(MAX_PAYLOAD);
    expect(((await reader.read()) as Buffer).length).toBe(10);
    expect(await reader.read()).toBe(FLUSH);
  });

  test('an answer is the status, the content in packets, and the two flushes, whatever its length', async () => {
    for (const size of [0, 10, MAX_PAYLOAD, MAX_PAYLOAD + 1, 3 * MAX_PAYLOAD + 17]) {
      const sink = new PassThrough({ highWaterMark: 16 });
      const received: Buffer[] = [];
      sink.on('data', (b: Buffer) => received.push(b));
      const content = Buffer.from(Array.from({ length: size }, (_, i) => (i * 31) & 0xff));
      await new PktLineWriter(sink).answer(content);
      const reader = readerOf(Buffer.concat(received));
      expect(await reader.readTextList()).toEqual(['status=success']);
      const packets: Buffer[] = [];
      for (let p = await reader.read(); p !== FLUSH; p = await reader.read()) packets.push(p as Buffer);
      expect(Buffer.concat(packets).equals(content)).toBe(true);
      expect(packets.every((p) => p.length <= MAX_PAYLOAD)).toBe(true);
      expect(await reader.readTextList()).toEqual([]);
      expect(await reader.read()).toBe(null);
    }
  });

  test('answers framed in reused buffers: none is overwritten before the stream is done with it, large or small', async () => {
    // The sink takes each chunk a turn of the event loop later and only then copies it (as the
    // kernel takes bytes when a write completes): a frame reused too early would show in the copy.
    const taken: Buffer[] = [];
    const sink = new Writable({
      highWaterMark: 16 << 10,
      write(chunk: Buffer, _encoding, done) {
        setImmediate(() => {
          taken.push(Buffer.from(chunk));
          done();
        });
      },
    });
    const writer = new PktLineWriter(sink);
    const contents = [10, 100, 5000, 64 << 10, 10, (1 << 20) + 1, 7, 2 * MAX_PAYLOAD].map((size, n) => Buffer.alloc(size, n + 1));
    for (const content of contents) await writer.answer(content);
    await new Promise<void>((resolve) => sink.end(resolve));
    const reader = readerOf(Buffer.concat(taken));
    for (const content of contents) {
      expect(await reader.readTextList()).toEqual(['status=success']);
      const packets: Buffer[] = [];
      for (let p = await reader.read(); p !== FLUSH; p = await reader.read()) packets.push(p as Buffer);
      expect(Buffer.concat(packets).equals(content)).toBe(true);
      expect(await reader.readTextList()).toEqual([]);
    }
    expect(await reader.read()).toBe(null);
  });

  test('poll hands out whole packets already read from the stream, and nothing of a packet still arriving', async () => {
    const a = encodePacket('command=smudge\n');
    const b = encodePacket('pathname=x.pt\n');
    const c = encodePacket(Buffer.alloc(100, 5));
    // a, b and the first half of c arrive together; the rest of c and a flush come later.
    const reader = readerOf(Buffer.concat([a, b, c.subarray(0, 50)]), Buffer.concat([c.subarray(50), encodeFlush()]));
    expect(reader.poll()).toBeUndefined(); // nothing read from the stream yet
    expect(((await reader.read()) as Buffer).toString()).toBe('command=smudge\n');
    expect((reader.poll() as Buffer).toString()).toBe('pathname=x.pt\n');
    expect(reader.poll()).toBeUndefined(); // half of c
    expect(((await reader.read()) as Buffer).equals(Buffer.alloc(100, 5))).toBe(true);
    expect(reader.poll()).toBe(FLUSH);
    expect(await reader.read()).toBeNull();
  });
});
