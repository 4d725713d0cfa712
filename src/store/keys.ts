import { GitmlError } from '../errors';
import { isValidOid } from '../pointer';

/**
 * Layout of gitml data in a store (docs/store.md):
 *   objects/<aa>/<bb>/<oid>     whole objects, named by the sha256 of their bytes
 * Later representations get their own top-level prefix (for example a chunk manifest per oid), so a
 * store can hold old and new forms side by side and readers can tell them apart by key alone.
 */
export const OBJECTS_PREFIX = 'objects/';

export function objectKey(oid: string): string {
  if (!isValidOid(oid)) throw new GitmlError('E_INTERNAL', `refusing to build a store key from an invalid oid: ${JSON.stringify(oid)}`);
  return `${OBJECTS_PREFIX}${oid.slice(0, 2)}/${oid.slice(2, 4)}/${oid}`;
}

/** The oid of an object key, or null for keys that are not whole objects. */
export function oidOfObjectKey(key: string): string | null {
  const m = /^objects\/([0-9a-f]{2})\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(key);
  if (!m || !m[3]!.startsWith(m[1]! + m[2]!)) return null;
  return m[3]!;
}
