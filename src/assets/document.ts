import { createHash } from 'node:crypto';
import YAML from 'yaml';
import { GitmlError } from '../errors';
import { AssetDoc, SPEC_SCHEMAS, type AssetDocument, type DigestEntry } from './schema';

export const ASSET_FILE = 'asset.yaml';

/** sha256 over the sorted "sha256 size path" lines: any change to a registered version changes it. Pure. */
export function digestValue(files: readonly DigestEntry[]): string {
  const lines = [...files]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((f) => `${f.sha256} ${f.size} ${f.path}\n`)
    .join('');
  return createHash('sha256').update(lines).digest('hex');
}

export function sortedFiles(files: readonly DigestEntry[]): DigestEntry[] {
  return [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Validates a document (and its type's spec) and returns it with defaults filled in. */
export function validateAsset(raw: unknown, where: string): AssetDocument {
  const parsed = AssetDoc.safeParse(raw);
  if (!parsed.success) throw invalid(where, parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; '));
  const doc = parsed.data;
  const spec = SPEC_SCHEMAS[doc.type].safeParse(doc.spec);
  if (!spec.success) throw invalid(where, spec.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; '));
  return { ...doc, spec: spec.data as Record<string, unknown> };
}

export function parseAssetYaml(text: string, where: string): AssetDocument {
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (e) {
    throw invalid(where, (e as Error).message);
  }
  return validateAsset(raw, where);
}

export function formatAssetYaml(doc: AssetDocument): string {
  return `# Registered with gitml: this version is immutable (docs/assets.md).\n${YAML.stringify(doc, { lineWidth: 0 })}`;
}

function invalid(where: string, why: string): GitmlError {
  return new GitmlError('E_CONFIG', `invalid ${where}: ${why}`, { hint: 'Fix the file (docs/assets.md describes every field), or register a new version.' });
}
