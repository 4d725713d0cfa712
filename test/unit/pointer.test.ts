import { formatPointer, GITML_SPEC, LFS_SPEC, MAX_POINTER_SIZE, parsePointer } from '../../src/pointer';

const OID = 'a'.repeat(64);
const good = `version ${GITML_SPEC}\noid sha256:${OID}\nsize 12345\n`;

describe('pointer', () => {
  test('formats the canonical encoding and parses it back', () => {
    const text = formatPointer({ oid: OID, size: 12345 });
    expect(text).toBe(good);
    expect(Buffer.byteLength(text)).toBeLessThan(MAX_POINTER_SIZE);
    expect(parsePointer(text)).toEqual({ oid: OID, size: 12345, spec: GITML_SPEC });
    expect(parsePointer(Buffer.from(text))).toEqual({ oid: OID, size: 12345, spec: GITML_SPEC });
  });

  test('the largest safe size still fits under 200 bytes', () => {
    const text = formatPointer({ oid: 'f'.repeat(64), size: Number.MAX_SAFE_INTEGER });
    expect(Buffer.byteLength(text)).toBeLessThan(MAX_POINTER_SIZE);
    expect(parsePointer(text)?.size).toBe(Number.MAX_SAFE_INTEGER);
  });

  test('reads git-lfs v1 pointers', () => {
    const lfs = `version ${LFS_SPEC}\noid sha256:${OID}\nsize 0\n`;
    expect(parsePointer(lfs)).toEqual({ oid: OID, size: 0, spec: LFS_SPEC });
  });

  test('refuses to format invalid values', () => {
    expect(() => formatPointer({ oid: 'A'.repeat(64), size: 1 })).toThrow(RangeError);
    expect(() => formatPointer({ oid: OID, size: -1 })).toThrow(RangeError);
    expect(() => formatPointer({ oid: OID, size: 1.5 })).toThrow(RangeError);
  });

  const malformed: [string, string][] = [
    ['empty', ''],
    ['no final newline', good.slice(0, -1)],
    ['CRLF line ends', good.replace(/\n/g, '\r\n')],
    ['unknown version', good.replace(GITML_SPEC, 'https://example.com/spec/v9')],
    ['upper-case oid', good.replace(OID, 'A'.repeat(64))],
    ['short oid', good.replace(OID, 'a'.repeat(63))],
    ['long oid', good.replace(OID, 'a'.repeat(65))],
    ['other hash', good.replace('sha256:', 'sha1:')],
    ['negative size', good.replace('12345', '-1')],
    ['leading zero size', good.replace('12345', '012345')],
    ['hex size', good.replace('12345', '0x10')],
    ['unsafe size', good.replace('12345', '99999999999999999')],
    ['fractional size', good.replace('12345', '1.5')],
    ['keys out of order', `oid sha256:${OID}\nversion ${GITML_SPEC}\nsize 1\n`],
    ['extra key', `${good}ext-0-foo sha256:${OID}\n`],
    ['missing size', `version ${GITML_SPEC}\noid sha256:${OID}\n`],
    ['trailing garbage', `${good}x`],
    ['blank line', `${good}\n`],
    ['double space', good.replace('size 12345', 'size  12345')],
    ['leading space', ` ${good}`],
    ['over-long', `version ${GITML_SPEC}\noid sha256:${OID}\nsize ${'1'.repeat(15)}\n${' '.repeat(2000)}`],
  ];
  test.each(malformed)('rejects %s', (_name, text) => {
    expect(parsePointer(text)).toBeNull();
    expect(parsePointer(Buffer.from(text))).toBeNull();
  });

  test('rejects binary content and non-UTF-8 bytes', () => {
    expect(parsePointer(Buffer.from([0xff, 0xfe, 0x00, 0x0a]))).toBeNull();
  });
});
