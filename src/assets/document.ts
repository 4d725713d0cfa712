import { createHash } from 'node:crypto';
import YAML from 'yaml';
import { GitmlError } from '../errors';
import { AssetDoc, SPEC_SCHEMAS, type AssetDocument, type DigestEntry } from './schema';

export const ASSET_FILE = 'asset.yaml';

/** sha256 over the sorted "sha256 size path" lines: any change to a registered version changes it. Pure. */
export function digestValue(files: readonly DigestEntry[]): string {
  return createHash('sha256').update(fileLines(files).join('')).digest('hex');
}

function fileLines(files: readonly DigestEntry[]): string[] {
  return sortedFiles(files).map((f) => `${f.sha256} ${f.size} ${f.path}\n`);
}

/** What a version's digest covers of data by reference: each object as recorded (sha256 when hashed, else its ETag or version). */
export interface SourceDigestEntry {
  key: string;
  size: number;
  sha256?: string;
  etag?: string;
  version?: string;
}

/**
 * A version's digest: its files in git and, for data by reference, every object of the source as
 * recorded. Two by-reference datasets of different data never share a digest, and a run that
 * recorded one as its input recorded which data it read. Pure.
 */
export function assetDigest(files: readonly DigestEntry[], source?: { uri: string; objects: readonly SourceDigestEntry[] } | null): string {
  if (!source) return digestValue(files);
  const lines = fileLines(files);
  lines.push(`source ${source.uri}\n`);
  for (const o of [...source.objects].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    const identity = o.sha256 ? `sha256:${o.sha256}` : o.version ? `version:${o.version}` : `etag:${o.etag ?? ''}`;
    lines.push(`${identity} ${o.size} source:${o.key}\n`);
  }
  return createHash('sha256').update(lines.join('')).digest('hex');
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
