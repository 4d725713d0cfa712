import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { GitmlError } from '../errors';
import { openParsed, parseStoreUrl, type ParsedStoreUrl, type StoreOptions } from '../store/open';
import { Requests } from '../store/requests';
import { DEFAULT_RETRY } from '../util/retry';
import { silentLogger } from '../log';
import { redactUrl } from '../url-secrets';
import { confinedPath } from '../safe-path';
import type { SourceObjectEntry } from './schema';

/**
 * Data registered by reference: it stays where it is (a bucket, a container, a share, a URL) and the
 * asset records what was there (key, size, ETag or version, sha256 with --hash). Reads compare what is
 * there now with that record and refuse to use different data.
 */
/** The settings and environment a source needs (its endpoint follows the store's policy). */
export type SourceSettings = StoreOptions;

export interface DataSource {
  readonly uri: string;
  list(): Promise<SourceObjectEntry[]>;
  open(key: string): Promise<Readable>;
  close(): void;
}

export function openSource(uri: string, settings: SourceSettings): DataSource {
  if (/^https?:\/\//i.test(uri) && !/\.blob\.core\.windows\.net\//i.test(uri)) return httpSource(uri);
  const parsed = parseStoreUrl({ url: uri, baseDir: process.cwd() });
  return parsed.kind === 'directory' ? directorySource(uri, parsed.root) : bucketSource(uri, parsed, settings);
}

/** Objects whose recorded size/ETag/sha256 differ from `now` (or are gone). Pure. */
export function changedObjects(recorded: readonly SourceObjectEntry[], now: readonly SourceObjectEntry[]): string[] {
  const current = new Map(now.map((o) => [o.key, o]));
  const changed: string[] = [];
  for (const r of recorded) {
    const c = current.get(r.key);
    if (!c) changed.push(`${r.key} (gone)`);
    else if (c.size !== r.size) changed.push(`${r.key} (size ${r.size} → ${c.size})`);
    // With a recorded sha256 the download itself decides: a copied share or a re-uploaded
    // object with a new ETag but the same bytes is still the registered data.
    else if (r.sha256) continue;
    else if (r.etag && c.etag && r.etag !== c.etag) changed.push(`${r.key} (ETag ${r.etag} → ${c.etag})`);
    else if (r.version && c.version && r.version !== c.version) changed.push(`${r.key} (version ${r.version} → ${c.version})`);
  }
  return changed;
}

/**
 * A file's stand-in for an ETag: mtime and inode, and the ctime as its "version": a writer can set
 * the mtime back (touch -m, cp -p, rsync -t) but not the ctime, so an in-place rewrite with the old
 * size and mtime is still seen. Not a content guarantee: --hash is (docs/assets.md).
 */
function fileEntry(key: string, st: fs.Stats): SourceObjectEntry {
  return { key, size: st.size, etag: `${st.mtimeMs}-${st.ino}`, version: `ctime-${st.ctimeMs}` };
}

function directorySource(uri: string, root: string): DataSource {
  return {
    uri,
    async list() {
      const st = await fsp.stat(root).catch(() => null);
      if (!st) throw new GitmlError('E_STORE_IO', `${uri} does not exist`, { hint: 'Check the path (and that the share is mounted).' });
      if (st.isFile()) return [fileEntry(path.basename(root), st)];
      const out: SourceObjectEntry[] = [];
      for (const e of await fsp.readdir(root, { withFileTypes: true, recursive: true })) {
        if (!e.isFile()) continue;
        const full = path.join(e.parentPath, e.name);
        const s = await fsp.stat(full);
        out.push(fileEntry(path.relative(root, full).split(path.sep).join('/'), s));
      }
      return out.sort((a, b) => a.key.localeCompare(b.key));
    },
    async open(key) {
      const st = await fsp.stat(root);
      const file = st.isFile() ? root : await confinedPath(root, key, { what: 'object key', source: uri });
      return fs.createReadStream(file, { highWaterMark: 1 << 20 });
    },
    close() {},
  };
}

/**
 * A bucket or container (S3, Azure Blob, ADLS) through the same backends and request policy as the
 * stores: the backend is rooted at the parent of the URI's prefix, so a URI that names one object
 * (s3://bucket/file.csv) and one that names a folder are told apart by asking for the object.
 */
function bucketSource(uri: string, parsed: Exclude<ParsedStoreUrl, { kind: 'directory' }>, settings: SourceSettings): DataSource {
  const parent = parsed.prefix.includes('/') ? parsed.prefix.slice(0, parsed.prefix.lastIndexOf('/')) : '';
  const leaf = parsed.prefix.slice(parent ? parent.length + 1 : 0);
  const requests = new Requests(openParsed({ ...parsed, prefix: parent }, settings, redactUrl(uri)), { retry: DEFAULT_RETRY, timeoutMs: 60_000, log: silentLogger });
  // Set by list(): the URI named one object rather than a folder.
  let single = false;
  const keyOf = (key: string) => (single ? leaf : leaf ? `${leaf}/${key}` : key);
  return {
    uri,
    async list() {
      if (leaf) {
        const one = await requests.stat(leaf).catch(() => null);
        single = one !== null;
        if (one) return [{ key: leaf, size: one.size, etag: one.etag, version: one.version }];
      }
      const base = leaf ? `${leaf}/` : '';
      const out: SourceObjectEntry[] = (await requests.list(base)).map((e) => ({ key: e.key.slice(base.length), size: e.size, etag: e.etag, version: e.version }));
      if (out.length === 0) throw new GitmlError('E_USAGE', `nothing found at ${redactUrl(uri)}`, { hint: 'Check the bucket or container and the prefix.' });
      return out.sort((a, b) => a.key.localeCompare(b.key));
    },
    open: (key) => requests.open(keyOf(key)),
    close() {
      void requests.store.close();
    },
  };
}

function httpSource(uri: string): DataSource {
  const key = decodeURIComponent(new URL(uri).pathname.split('/').filter(Boolean).at(-1) ?? 'data');
  return {
    uri,
    async list() {
      const r = await fetch(uri, { method: 'HEAD' });
      if (!r.ok) throw new GitmlError('E_STORE_IO', `HEAD ${uri} answered ${r.status}`, { hint: 'Check the URL.' });
      return [{ key, size: Number(r.headers.get('content-length') ?? 0), etag: r.headers.get('etag') ?? r.headers.get('last-modified') ?? undefined }];
    },
    async open() {
      const r = await fetch(uri);
      if (!r.ok || !r.body) throw new GitmlError('E_STORE_IO', `GET ${uri} answered ${r.status}`, { hint: 'Check the URL.' });
      return Readable.fromWeb(r.body as import('node:stream/web').ReadableStream);
    },
    close() {},
  };
}
