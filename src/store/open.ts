import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GitmlError } from '../errors';
import { DirectoryStore } from './directory';
import type { Store } from './store';

export interface StoreLocation {
  /** The setting as written (a URL or a path). */
  url: string;
  /** Directory that a relative path is relative to. */
  baseDir: string;
}

export const STORE_URL_FORMS = [
  'file:///absolute/path (a local directory or a network mount such as NFS)',
  '/absolute/path or relative/path (relative to the repository root)',
];

const SCHEME_RE = /^([a-z][a-z0-9+.-]*):/i;

/** What kind of store a URL names, without opening it: pure, used for messages and `gitml env`. */
export function parseStoreUrl(location: StoreLocation): { kind: 'directory'; root: string } {
  const url = location.url.trim();
  if (url === '') throw badUrl(location.url, 'it is empty');
  const scheme = SCHEME_RE.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'file') {
    let root: string;
    try {
      root = fileURLToPath(url);
    } catch (e) {
      throw badUrl(url, (e as Error).message);
    }
    return { kind: 'directory', root: path.resolve(root) };
  }
  if (scheme && scheme.length > 1) {
    throw badUrl(url, `the scheme "${scheme}:" is not supported`);
  }
  return { kind: 'directory', root: path.resolve(location.baseDir, url) };
}

export function openStore(location: StoreLocation): Store {
  const parsed = parseStoreUrl(location);
  return new DirectoryStore(parsed.root);
}

function badUrl(url: string, why: string): GitmlError {
  return new GitmlError('E_STORE_URL', `invalid store URL ${JSON.stringify(url)}: ${why}`, {
    hint: `Set gitml.store to one of: ${STORE_URL_FORMS.join('; ')}.`,
  });
}
