import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { GitmlError } from '../errors';
import { writeHashing } from '../hash';
import { changedObjects, openSource, safeRelativeKey, type SourceSettings } from './remote-data';
import type { AssetDocument, SourceObjectEntry } from './schema';

export interface SourceSpec {
  uri: string;
  objects: SourceObjectEntry[];
}

export function sourceOf(doc: AssetDocument): SourceSpec | null {
  const s = (doc.spec as { source?: SourceSpec }).source;
  return s && typeof s.uri === 'string' && Array.isArray(s.objects) ? s : null;
}

/**
 * Brings data registered by reference into `dataDir`, verified: first the source is listed and
 * compared with what was recorded (size, ETag/version); any difference fails naming the objects, and
 * nothing is written. Each object is then downloaded to a temp file, checked (size, and sha256 when it
 * was recorded) and renamed into place.
 */
export async function materializeSource(doc: AssetDocument, dataDir: string, settings: SourceSettings): Promise<{ files: number; bytes: number }> {
  const spec = sourceOf(doc);
  if (!spec) throw new GitmlError('E_INTERNAL', `${doc.type}s/${doc.name}@${doc.version} is not data by reference`);
  const source = openSource(spec.uri, settings);
  try {
    const changed = changedObjects(spec.objects, await source.list());
    if (changed.length > 0) {
      throw new GitmlError('E_OBJECT_CORRUPT', `the data behind ${doc.type}s/${doc.name}@${doc.version} changed since it was registered: ${changed.slice(0, 10).join('; ')}${changed.length > 10 ? `; and ${changed.length - 10} more` : ''}`, {
        hint: 'Nothing was written. Register the current data as a new version (gitml register dataset ... --uri ...), or restore the source.',
      });
    }
    let bytes = 0;
    for (const o of spec.objects) {
      const dest = path.join(dataDir, ...safeRelativeKey(o.key).split('/'));
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      const tmp = `${dest}.gitml-${randomBytes(4).toString('hex')}.tmp`;
      try {
        const { sha256: digest, size } = await writeHashing(await source.open(o.key), tmp);
        if (size !== o.size || (o.sha256 && digest !== o.sha256)) {
          throw new GitmlError('E_OBJECT_CORRUPT', `${spec.uri} ${o.key}: got ${size} bytes hashing to ${digest.slice(0, 12)}, registered ${o.size} bytes${o.sha256 ? ` hashing to ${o.sha256.slice(0, 12)}` : ''}`, {
            hint: 'The source changed while it was read. Register the current data as a new version, or restore the source.',
          });
        }
        await fsp.rename(tmp, dest);
        bytes += size;
      } catch (e) {
        await fsp.rm(tmp, { force: true });
        throw e;
      }
    }
    return { files: spec.objects.length, bytes };
  } finally {
    source.close();
  }
}
