import { GitmlError } from '../errors';

/** The six asset kinds, each with its folder at the repository root (docs/assets.md). */
export const ASSET_TYPES = ['dataset', 'environment', 'model', 'experiment', 'component', 'endpoint'] as const;
export type AssetType = (typeof ASSET_TYPES)[number];

export function folderOf(type: AssetType): string {
  return `${type}s`;
}

/** Where retirement records live: `<dir>/<type>s/<name>.yaml` (gitml deprecate). */
export const DEPRECATION_RECORDS_DIR = '.gitml/deprecated';

/**
 * Every path the registry's immutability rules look at: a commit that changes nothing under these
 * cannot change a registered version (the pre-commit hook skips its check for such commits).
 */
export const REGISTRY_PATHS: readonly string[] = [...ASSET_TYPES.map(folderOf), DEPRECATION_RECORDS_DIR];

/** "model", "models" → "model". */
export function parseAssetType(text: string): AssetType {
  const singular = text.endsWith('s') ? text.slice(0, -1) : text;
  if ((ASSET_TYPES as readonly string[]).includes(singular)) return singular as AssetType;
  throw new GitmlError('E_USAGE', `unknown asset type ${JSON.stringify(text)}`, { hint: `Use one of: ${ASSET_TYPES.join(', ')}.` });
}

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,127}$/;
/** Version strings that would collide with folders gitml keeps beside versions. */
const RESERVED_VERSIONS = new Set(['runs', 'latest']);

/** Asset names: lower-case letters, digits, `.`, `_`, `-`; not `..`; at most 128 characters. Pure. */
export function validateName(name: string): string {
  if (typeof name !== 'string') {
    throw new GitmlError('E_USAGE', 'invalid asset name: none was given', { hint: 'Give a name such as mnist (an argument starting with "-" is read as an option).' });
  }
  if (!NAME_RE.test(name) || name.includes('..')) {
    throw new GitmlError('E_USAGE', `invalid asset name ${JSON.stringify(name)}`, {
      hint: 'Names are 1-128 characters of a-z, 0-9, ".", "_" and "-", starting with a letter or digit (no "/", "..", spaces or upper case).',
    });
  }
  return name;
}

/** Versions: same alphabet as names; positive integers are the default scheme. Pure. */
export function validateVersion(version: string): string {
  if (typeof version !== 'string' || !NAME_RE.test(version) || version.includes('..') || RESERVED_VERSIONS.has(version)) {
    throw new GitmlError('E_USAGE', `invalid asset version ${JSON.stringify(version)}`, {
      hint: 'Use a positive integer (or --version auto for the next one), or 1-128 characters of a-z, 0-9, ".", "_", "-" other than "runs" and "latest".',
    });
  }
  if (/^[0-9]+$/.test(version) && (version === '0' || version.startsWith('0'))) {
    throw new GitmlError('E_USAGE', `invalid asset version ${JSON.stringify(version)}: numeric versions start at 1, without leading zeros`, {
      hint: 'Use --version auto for the next number.',
    });
  }
  return version;
}

/** The next integer version after the existing ones (1 when there are none). Pure. */
export function nextVersion(existing: readonly string[]): string {
  const numbers = existing.filter((v) => /^[1-9][0-9]*$/.test(v)).map(Number);
  return String(numbers.length ? Math.max(...numbers) + 1 : 1);
}

/** Latest version: the highest integer, else the last in natural order. Pure. */
export function latestVersion(existing: readonly string[]): string | null {
  if (existing.length === 0) return null;
  const numbers = existing.filter((v) => /^[1-9][0-9]*$/.test(v)).map(Number);
  if (numbers.length) return String(Math.max(...numbers));
  return [...existing].sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1)!;
}

/**
 * Asset references:
 *   models/mnist@3          a version
 *   models/mnist@latest     the highest version
 *   models/mnist@production a stage: the version promoted to that stage's branch
 *   models/mnist            same as @latest
 *   <repo-url>#models/mnist@3   in another repository
 */
export interface AssetRef {
  repo?: string;
  type: AssetType;
  name: string;
  /** A version, 'latest', or a stage name (resolved later). */
  selector: string;
}

export function parseRef(text: string): AssetRef {
  let repo: string | undefined;
  let rest = text.trim();
  const hash = rest.lastIndexOf('#');
  if (hash >= 0) {
    repo = rest.slice(0, hash);
    rest = rest.slice(hash + 1);
    if (!repo) throw badRef(text, 'nothing before "#"');
  }
  const at = rest.indexOf('@');
  const pathPart = at >= 0 ? rest.slice(0, at) : rest;
  const selector = at >= 0 ? rest.slice(at + 1) : 'latest';
  const [typeText, name, ...extra] = pathPart.split('/');
  if (!typeText || !name || extra.length > 0) throw badRef(text, 'expected <type>/<name>[@<version>|@latest|@<stage>]');
  if (!selector || !NAME_RE.test(selector)) throw badRef(text, `invalid version or stage ${JSON.stringify(selector)}`);
  return { repo, type: parseAssetType(typeText), name: validateName(name), selector };
}

export function formatRef(ref: { repo?: string; type: AssetType; name: string; selector: string }): string {
  return `${ref.repo ? `${ref.repo}#` : ''}${folderOf(ref.type)}/${ref.name}@${ref.selector}`;
}

function badRef(text: string, why: string): GitmlError {
  return new GitmlError('E_USAGE', `invalid asset reference ${JSON.stringify(text)}: ${why}`, {
    hint: 'Write references like models/mnist@3, models/mnist@latest, models/mnist@production or <repo-url>#datasets/mnist@2.',
  });
}
