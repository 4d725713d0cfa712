import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { GitmlError } from '../errors';
import { azureEndpoint, parseStoreUrl, s3ClientSettings, type StoreOptions } from '../store/open';
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
  switch (parsed.kind) {
    case 'directory':
      return directorySource(uri, parsed.root);
    case 's3':
      return s3Source(uri, parsed.bucket, parsed.prefix, settings);
    case 'azure':
      return azureSource(uri, parsed.account, parsed.container, parsed.prefix, settings);
  }
}

/** Objects whose recorded size/ETag/sha256 differ from `now` (or are gone). Pure. */
export function changedObjects(recorded: readonly SourceObjectEntry[], now: readonly SourceObjectEntry[]): string[] {
  const current = new Map(now.map((o) => [o.key, o]));
  const changed: string[] = [];
  for (const r of recorded) {
    const c = current.get(r.key);
    if (!c) changed.push(`${r.key} (gone)`);
    else if (c.size !== r.size) changed.push(`${r.key} (size ${r.size} → ${c.size})`);
    else if (r.etag && c.etag && r.etag !== c.etag) changed.push(`${r.key} (ETag ${r.etag} → ${c.etag})`);
    else if (r.version && c.version && r.version !== c.version) changed.push(`${r.key} (version ${r.version} → ${c.version})`);
  }
  return changed;
}

function directorySource(uri: string, root: string): DataSource {
  return {
    uri,
    async list() {
      const st = await fsp.stat(root).catch(() => null);
      if (!st) throw new GitmlError('E_STORE_IO', `${uri} does not exist`, { hint: 'Check the path (and that the share is mounted).' });
      if (st.isFile()) return [{ key: path.basename(root), size: st.size, etag: `${st.mtimeMs}-${st.ino}` }];
      const out: SourceObjectEntry[] = [];
      for (const e of await fsp.readdir(root, { withFileTypes: true, recursive: true })) {
        if (!e.isFile()) continue;
        const full = path.join(e.parentPath, e.name);
        const s = await fsp.stat(full);
        out.push({ key: path.relative(root, full).split(path.sep).join('/'), size: s.size, etag: `${s.mtimeMs}-${s.ino}` });
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

function s3Source(uri: string, bucket: string, prefix: string, settings: SourceSettings): DataSource {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createS3Client, s3Error } = require('../store/s3') as typeof import('../store/s3');
  const client = createS3Client(s3ClientSettings(settings));
  const base = prefix ? `${prefix}/` : '';
  // Set by list(): the prefix named one object (s3://bucket/file.csv) rather than a folder.
  let single = false;
  return {
    uri,
    async list() {
      const out: SourceObjectEntry[] = [];
      let token: string | undefined;
      try {
        // A prefix that names one object (s3://bucket/file.csv) is that object.
        if (prefix) {
          const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: prefix })).catch(() => null);
          single = Boolean(head);
          if (head) return [{ key: path.posix.basename(prefix), size: Number(head.ContentLength ?? 0), etag: head.ETag ?? undefined, version: head.VersionId ?? undefined }];
        }
        do {
          const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: base, ContinuationToken: token }));
          for (const o of page.Contents ?? []) {
            if (o.Key && !o.Key.endsWith('/')) out.push({ key: o.Key.slice(base.length), size: Number(o.Size ?? 0), etag: o.ETag ?? undefined });
          }
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
      } catch (e) {
        throw s3Error(uri, 'cannot list', e);
      }
      if (out.length === 0) throw new GitmlError('E_USAGE', `nothing found at ${uri}`, { hint: 'Check the bucket and prefix.' });
      return out;
    },
    async open(key) {
      try {
        const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: single ? prefix : base + key }));
        return r.Body as Readable;
      } catch (e) {
        throw s3Error(uri, `cannot read ${key}`, e);
      }
    },
    close() {
      client.destroy();
    },
  };
}

function azureSource(uri: string, account: string, container: string, prefix: string, settings: SourceSettings): DataSource {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { containerClient, azureError } = require('../store/azure') as typeof import('../store/azure');
  const client = containerClient({ account, container, endpoint: azureEndpoint(settings) }, settings.env);
  const base = prefix ? `${prefix}/` : '';
  return {
    uri,
    async list() {
      const out: SourceObjectEntry[] = [];
      try {
        for await (const b of client.listBlobsFlat({ prefix: base })) {
          out.push({ key: b.name.slice(base.length), size: Number(b.properties.contentLength ?? 0), etag: b.properties.etag, version: b.versionId });
        }
      } catch (e) {
        throw azureError(uri, 'cannot list', e);
      }
      if (out.length === 0) throw new GitmlError('E_USAGE', `nothing found at ${uri}`, { hint: 'Check the container and prefix.' });
      return out;
    },
    async open(key) {
      const r = await client.getBlobClient(base + key).download();
      return r.readableStreamBody as Readable;
    },
    close() {},
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
