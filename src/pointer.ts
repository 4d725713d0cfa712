/**
 * The pointer file git stores in place of a large file's bytes (docs/pointer.md).
 *
 *   version https://gitml.dev/spec/v1
 *   oid sha256:<64 lowercase hex>
 *   size <decimal bytes>
 *
 * One canonical encoding, parsed strictly: anything else is not a pointer and passes through untouched.
 * git-lfs v1 pointers (same three keys, their version URL) are read too, so objects of an LFS repo kept
 * in a gitml store can be smudged.
 */

export const GITML_SPEC = 'https://gitml.dev/spec/v1';
export const LFS_SPEC = 'https://git-lfs.github.com/spec/v1';

/** gitml pointers are under 200 bytes; scanners look at blobs below this size. */
export const MAX_POINTER_SIZE = 200;
/** git-lfs pointers may be longer (its limit); anything at or above this is never a pointer. */
export const MAX_FOREIGN_POINTER_SIZE = 1024;

export interface Pointer {
  /** sha256 of the content, 64 lowercase hex digits. */
  oid: string;
  /** Size of the content in bytes. */
  size: number;
  /** The spec the pointer was written under (GITML_SPEC or LFS_SPEC). */
  spec: string;
}

const OID_RE = /^[0-9a-f]{64}$/;
const SIZE_RE = /^(0|[1-9][0-9]{0,15})$/;
const KNOWN_SPECS = new Set([GITML_SPEC, LFS_SPEC]);

export function isValidOid(oid: string): boolean {
  return OID_RE.test(oid);
}

export function formatPointer(p: { oid: string; size: number; spec?: string }): string {
  if (!isValidOid(p.oid)) throw new RangeError(`not a sha256 oid: ${JSON.stringify(p.oid)}`);
  if (!Number.isSafeInteger(p.size) || p.size < 0) throw new RangeError(`not a valid size: ${p.size}`);
  return `version ${p.spec ?? GITML_SPEC}\noid sha256:${p.oid}\nsize ${p.size}\n`;
}

/**
 * Strict parse. Returns null for anything that is not exactly a canonical pointer: wrong or unknown
 * version, upper-case or short oid, other hash algorithms, negative, non-decimal or unsafe sizes, extra
 * keys, CRLF, missing final newline, trailing bytes, or over the size limit.
 */
export function parsePointer(data: Buffer | string): Pointer | null {
  const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (length === 0 || length >= MAX_FOREIGN_POINTER_SIZE) return null;
  const text = typeof data === 'string' ? data : data.toString('utf8');
  if (!text.endsWith('\n')) return null;
  const lines = text.slice(0, -1).split('\n');
  if (lines.length !== 3) return null;
  const [versionLine, oidLine, sizeLine] = lines as [string, string, string];
  if (!versionLine.startsWith('version ') || !oidLine.startsWith('oid sha256:') || !sizeLine.startsWith('size ')) {
    return null;
  }
  const spec = versionLine.slice('version '.length);
  const oid = oidLine.slice('oid sha256:'.length);
  const sizeText = sizeLine.slice('size '.length);
  if (!KNOWN_SPECS.has(spec) || !OID_RE.test(oid) || !SIZE_RE.test(sizeText)) return null;
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) return null;
  if (spec === GITML_SPEC && length >= MAX_POINTER_SIZE) return null;
  // A copy of the oid, not a slice of the pointer's text (which a slice would keep alive for as long as
  // the pointer is held: 20,000 of them through a checkout), and the spec as the known constant.
  return { oid: Buffer.from(oid, 'latin1').toString('latin1'), size, spec: spec === GITML_SPEC ? GITML_SPEC : LFS_SPEC };
}

/** Quick size test used by scanners before they read a blob. */
export function mayBePointer(size: number): boolean {
  return size > 0 && size < MAX_FOREIGN_POINTER_SIZE;
}

export function shortOid(oid: string): string {
  return oid.slice(0, 12);
}
