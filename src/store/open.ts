import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GitmlError } from '../errors';
import { DirectoryStore } from './directory';
import type { Store } from './store';
import { checkedEndpoint, type SettingsView } from './endpoint';
import { credentialsIn, redactUrl } from '../url-secrets';

export interface StoreLocation {
  /** The setting as written (a URL or a path). */
  url: string;
  /** Directory that a relative path is relative to. */
  baseDir: string;
}

export const STORE_URL_FORMS = [
  'file:///absolute/path (a local directory or a network mount such as NFS)',
  '/absolute/path or relative/path (relative to the repository root)',
  's3://bucket/prefix (AWS S3 or S3-compatible, with gitml.s3.endpoint)',
  'azure://account/container/prefix or https://account.blob.core.windows.net/container/prefix (Azure Blob)',
  'abfss://container@account.dfs.core.windows.net/prefix (ADLS Gen2)',
];

export type ParsedStoreUrl =
  | { kind: 'directory'; root: string }
  | { kind: 's3'; bucket: string; prefix: string }
  | { kind: 'azure'; account: string; container: string; prefix: string };

const SCHEME_RE = /^([a-z][a-z0-9+.-]*):/i;
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const ACCOUNT_RE = /^[a-z0-9]{3,24}$/;
const CONTAINER_RE = /^(\$root|[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9])$/;

/** What a store URL names, without opening it. Pure; used for messages and `gitml env` too. */
export function parseStoreUrl(location: StoreLocation): ParsedStoreUrl {
  const url = location.url.trim();
  if (url === '') throw badUrl(location.url, 'it is empty');
  const secret = credentialsIn(url);
  if (secret) {
    throw new GitmlError('E_STORE_URL', `the store URL ${JSON.stringify(redactUrl(url))} is refused: ${secret}`, {
      hint: 'Take the credential out of gitml.store: S3 keys go in the AWS credential chain (environment, profile), an Azure SAS in AZURE_STORAGE_SAS_TOKEN.',
    });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\/[^?#]*[?#]/i.test(url)) throw badUrl(url, 'it has a query string or fragment; a store URL is a location only (scheme, account or bucket, container, prefix)');
  const scheme = SCHEME_RE.exec(url)?.[1]?.toLowerCase();
  if (!scheme || scheme.length === 1) return { kind: 'directory', root: path.resolve(location.baseDir, url) };
  switch (scheme) {
    case 'file': {
      try {
        return { kind: 'directory', root: path.resolve(fileURLToPath(url)) };
      } catch (e) {
        throw badUrl(url, (e as Error).message);
      }
    }
    case 's3': {
      const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(url);
      if (!m || !BUCKET_RE.test(m[1]!)) throw badUrl(url, 'expected s3://<bucket>/<prefix> with a valid bucket name');
      return { kind: 's3', bucket: m[1]!, prefix: cleanPrefix(url, m[2]!) };
    }
    case 'azure': {
      const m = /^azure:\/\/([^/]+)\/([^/]+)\/?(.*)$/i.exec(url);
      if (!m) throw badUrl(url, 'expected azure://<account>/<container>/<prefix>');
      return azure(url, m[1]!, m[2]!, m[3]!);
    }
    case 'https':
    case 'http': {
      const m = /^https?:\/\/([^./]+)\.blob\.core\.windows\.net\/([^/?]+)\/?([^?]*)$/i.exec(url);
      if (!m) throw badUrl(url, 'only Azure Blob URLs (https://<account>.blob.core.windows.net/<container>/<prefix>) are stores; other endpoints go in gitml.azure.endpoint or gitml.s3.endpoint');
      return azure(url, m[1]!, m[2]!, m[3]!);
    }
    case 'abfs':
    case 'abfss': {
      const m = /^abfss?:\/\/([^@/]+)@([^./]+)\.dfs\.core\.windows\.net\/?(.*)$/i.exec(url);
      if (!m) throw badUrl(url, 'expected abfss://<container>@<account>.dfs.core.windows.net/<prefix>');
      return azure(url, m[2]!, m[1]!, m[3]!);
    }
    default:
      throw badUrl(url, `the scheme "${scheme}:" is not supported`);
  }
}

function azure(url: string, account: string, container: string, prefix: string): ParsedStoreUrl {
  if (!ACCOUNT_RE.test(account)) throw badUrl(url, `"${account}" is not a storage account name (3-24 lower-case letters and digits)`);
  if (!CONTAINER_RE.test(container)) throw badUrl(url, `"${container}" is not a container name (3-63 lower-case letters, digits and single hyphens)`);
  return { kind: 'azure', account, container, prefix: cleanPrefix(url, prefix) };
}

/** A key prefix: no leading/trailing slashes, no empty, `.` or `..` segments. */
function cleanPrefix(url: string, prefix: string): string {
  const trimmed = decodeURIComponent(prefix).replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  const segments = trimmed.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) throw badUrl(url, 'the prefix has an empty, "." or ".." segment');
  return trimmed;
}

export interface StoreOptions {
  /** gitml.* settings, with where each came from (endpoints are checked: src/store/endpoint.ts). */
  settings: SettingsView;
  env: NodeJS.ProcessEnv;
}

/** Client settings for an S3 bucket, after the endpoint policy. Shared by the store and data sources. */
export function s3ClientSettings(options: StoreOptions): { endpoint?: string; region?: string; forcePathStyle?: boolean; profile?: string } {
  const value = (key: string) => options.settings.get(key)?.value;
  const pathStyle = value('gitml.s3.forcepathstyle');
  return {
    endpoint: checkedEndpoint('s3', 'gitml.s3.endpoint', options.settings),
    region: value('gitml.s3.region') ?? options.env.AWS_REGION ?? options.env.AWS_DEFAULT_REGION,
    forcePathStyle: pathStyle === undefined ? undefined : ['true', 'yes', 'on', '1'].includes(pathStyle.toLowerCase()),
    // A profile chooses which identity signs: only the person's own settings may name one.
    profile: options.settings.getAllFromUser('gitml.s3.profile').at(-1)?.value,
  };
}

/** The blob endpoint for an Azure account, after the endpoint policy (undefined: the cloud's default). */
export function azureEndpoint(options: StoreOptions): string | undefined {
  return checkedEndpoint('azure', 'gitml.azure.endpoint', options.settings);
}

export function openStore(location: StoreLocation, options: StoreOptions): Store {
  return openParsed(parseStoreUrl(location), options, redactUrl(location.url));
}

/** A backend for a parsed location (a store, or a bucket or container holding data by reference). */
export function openParsed(parsed: ParsedStoreUrl, options: StoreOptions, display: string): Store {
  switch (parsed.kind) {
    case 'directory':
      return new DirectoryStore(parsed.root);
    case 's3': {
      // Loaded only for S3 stores: the SDK is large, and the filters start often.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { S3Store } = require('./s3') as typeof import('./s3');
      return new S3Store({ bucket: parsed.bucket, prefix: parsed.prefix, ...s3ClientSettings(options) });
    }
    case 'azure': {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { AzureStore } = require('./azure') as typeof import('./azure');
      return new AzureStore({ account: parsed.account, container: parsed.container, prefix: parsed.prefix, endpoint: azureEndpoint(options), display }, options.env);
    }
  }
}

function badUrl(url: string, why: string): GitmlError {
  return new GitmlError('E_STORE_URL', `invalid store URL ${JSON.stringify(redactUrl(url))}: ${why}`, {
    hint: `Set gitml.store to one of: ${STORE_URL_FORMS.join('; ')}.`,
  });
}

/** One line saying what a parsed URL names, for `gitml env`. */
export function describeParsed(p: ParsedStoreUrl): string {
  switch (p.kind) {
    case 'directory':
      return `directory ${p.root}`;
    case 's3':
      return `S3 bucket ${p.bucket}${p.prefix ? `, prefix ${p.prefix}/` : ''}`;
    case 'azure':
      return `Azure account ${p.account}, container ${p.container}${p.prefix ? `, prefix ${p.prefix}/` : ''}`;
  }
}
