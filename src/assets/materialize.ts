import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';

import { errnoCode, GitmlError } from '../errors';
import { writeHashing } from '../hash';
import { checkRelativePath, confinedPath } from '../safe-path';
import { changedObjects, openSource, type SourceSettings } from './remote-data';
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
 * Brings data registered by reference into `<root>/<dataRel>`, verified and all at once: first the
 * source is listed and compared with what was recorded (size, ETag/version); any difference fails
 * naming the objects. Every object is then downloaded into a temp folder beside the data folder and
 * checked (size, and sha256 when it was recorded); only when all match does the temp folder replace
 * the data folder (a rename), so a failure leaves the previous data, or none, never a mix.
 * Object keys come from asset.yaml and the source: each is confined to the data folder.
 */
export async function materializeSource(doc: AssetDocument, root: string, dataRel: string, settings: SourceSettings): Promise<{ files: number; bytes: number }> {
  const spec = sourceOf(doc);
  const ref = `${doc.type}s/${doc.name}@${doc.version}`;
  if (!spec) throw new GitmlError('E_INTERNAL', `${ref} is not data by reference`);
  const origin = { what: 'object key', source: `${ref} (asset.yaml)` };
  for (const o of spec.objects) checkRelativePath(o.key, origin);
  const dataDir = await confinedPath(root, dataRel, { what: 'data folder', source: ref }, { mkdir: true });
  const source = openSource(spec.uri, settings);
  const staging = `${dataDir}.gitml-${randomBytes(4).toString('hex')}.tmp`;
  try {
    const changed = changedObjects(spec.objects, await source.list());
    if (changed.length > 0) {
      throw new GitmlError('E_OBJECT_CORRUPT', `the data behind ${ref} changed since it was registered: ${changed.slice(0, 10).join('; ')}${changed.length > 10 ? `; and ${changed.length - 10} more` : ''}`, {
        hint: 'Nothing was written. Register the current data as a new version (gitml register dataset ... --uri ...), or restore the source.',
      });
    }
    await fsp.mkdir(staging);
    let bytes = 0;
    for (const o of spec.objects) {
      const dest = await confinedPath(staging, o.key, origin, { mkdir: true });
      const { sha256: digest, size } = await writeHashing(await source.open(o.key), dest);
      if (size !== o.size || (o.sha256 && digest !== o.sha256)) {
        throw new GitmlError('E_OBJECT_CORRUPT', `${spec.uri} ${o.key}: got ${size} bytes hashing to ${digest.slice(0, 12)}, registered ${o.size} bytes${o.sha256 ? ` hashing to ${o.sha256.slice(0, 12)}` : ''}`, {
          hint: 'Nothing was written. The source changed since it was registered (or while it was read): register the current data as a new version, or restore the source.',
        });
      }
      bytes += size;
    }
    await replaceDir(dataDir, staging);
    return { files: spec.objects.length, bytes };
  } finally {
    source.close();
    await fsp.rm(staging, { recursive: true, force: true });
  }
}

/** Puts `fresh` where `target` is, in two renames: a reader sees the old folder or the new one. */
async function replaceDir(target: string, fresh: string): Promise<void> {
  const old = `${fresh}.old`;
  let moved = false;
  try {
    await fsp.rename(target, old);
    moved = true;
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
  await fsp.rename(fresh, target);
  if (moved) await fsp.rm(old, { recursive: true, force: true });
}
