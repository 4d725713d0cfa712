import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AnonymousCredential,
  BlobServiceClient,
  StorageSharedKeyCredential,
  type ContainerClient,
} from '@azure/storage-blob';
import pLimit from 'p-limit';
import { GitmlError } from '../errors';
import { BodyGuard } from './body';
import { partsOf } from './parts';
import { assertValidKey, missingObjectError, type BodySource, type ByteRange, statEach, existingResult, type PutOptions, type PutResult, type Store, type StoreEntry } from './store';

export interface AzureSettings {
  account: string;
  container: string;
  prefix: string;
  /** Blob service endpoint; default https://<account>.blob.core.windows.net (gitml.azure.endpoint). */
  endpoint?: string;
  /** The URL as the user wrote it, for messages. */
  display: string;
  multipartThreshold?: number;
  partSize?: number;
  partConcurrency?: number;
}

const DEFAULT_BLOCK = 16 * 1024 * 1024;

/**
 * Azure Blob Storage and ADLS Gen2 (hierarchical-namespace accounts serve the blob endpoint too).
 *
 * Credentials, first found wins: AZURE_STORAGE_CONNECTION_STRING; AZURE_STORAGE_SAS_TOKEN;
 * AZURE_STORAGE_KEY (account key); else DefaultAzureCredential from @azure/identity (managed identity,
 * workload identity, az login, environment service principal). Never from the repository.
 * Large objects are staged as blocks read by range from the cache file, in parallel, and committed
 * only if no blob exists under the name (ifNoneMatch: *).
 */
export class AzureStore implements Store {
  readonly url: string;
  private readonly container: ContainerClient;

  constructor(
    private readonly settings: AzureSettings,
    env: NodeJS.ProcessEnv,
  ) {
    this.url = settings.display;
    this.container = containerClient(settings, env);
  }

  private nameOf(key: string): string {
    assertValidKey(key);
    return this.settings.prefix ? `${this.settings.prefix}/${key}` : key;
  }

  async stat(key: string): Promise<{ size: number } | null> {
    try {
      const p = await this.container.getBlockBlobClient(this.nameOf(key)).getProperties();
      return { size: Number(p.contentLength ?? 0) };
    } catch (e) {
      if (statusOf(e) === 404 && errorCodeOf(e) !== 'ContainerNotFound') return null;
      throw this.error(`cannot check ${key}`, e);
    }
  }

  statMany(keys: readonly string[]): Promise<Map<string, number | null>> {
    return statEach(keys, (key) => this.stat(key));
  }

  async put(key: string, body: BodySource, options: PutOptions = {}): Promise<PutResult> {
    // Servers that ignore If-None-Match (some S3-compatible ones) still never get a blind overwrite,
    // unless the caller checked just before (then only a concurrent writer of the same oid can race).
    const existing = options.checked || options.replace ? null : await this.stat(key);
    if (existing) return existingResult(this, key, existing.size, body.size);
    const blob = this.container.getBlockBlobClient(this.nameOf(key));
    const conditions = options.replace ? {} : { ifNoneMatch: '*' };
    const guard = new BodyGuard(options.signal);
    const abortSignal = guard.signal;
    try {
      if (body.size < (this.settings.multipartThreshold ?? DEFAULT_BLOCK * 2)) {
        // A function body can be re-opened by the SDK's own transport if it must resend.
        await blob.upload(() => guard.watch(body.open()), body.size, { conditions, abortSignal });
      } else {
        const plan = partsOf(body.size, this.settings.partSize ?? DEFAULT_BLOCK);
        // Block ids: same length for every block of a blob (a service rule), unique per attempt.
        const attempt = randomBytes(6).toString('hex');
        const ids = plan.map((p) => Buffer.from(`${attempt}-${String(p.number).padStart(6, '0')}`).toString('base64'));
        const limit = pLimit(this.settings.partConcurrency ?? 4);
        await Promise.all(
          plan.map((p, i) =>
            limit(() => blob.stageBlock(ids[i]!, () => guard.watch(body.open(p.range)), p.range.end - p.range.start, { abortSignal })),
          ),
        );
        await blob.commitBlockList(ids, { conditions, abortSignal });
      }
      return 'created';
    } catch (caught) {
      const e = guard.explain(caught);
      const code = errorCodeOf(e);
      if (statusOf(e) === 412 || code === 'BlobAlreadyExists' || code === 'ConditionNotMet') {
        const now = await this.stat(key);
        if (now) return existingResult(this, key, now.size, body.size);
      }
      if (e instanceof GitmlError) throw e;
      // Uncommitted blocks expire on their own (7 days) and are never visible as a blob.
      throw this.error(`cannot upload ${key}`, e);
    }
  }

  async get(key: string, options: { range?: ByteRange; signal?: AbortSignal } = {}): Promise<Readable> {
    const range = options.range;
    try {
      const r = await this.container
        .getBlockBlobClient(this.nameOf(key))
        .download(range ? range.start : 0, range ? range.end - range.start : undefined, { abortSignal: options.signal });
      return r.readableStreamBody as Readable;
    } catch (e) {
      if (statusOf(e) === 404 && errorCodeOf(e) !== 'ContainerNotFound') throw missingObjectError(this, key);
      throw this.error(`cannot download ${key}`, e);
    }
  }

  async *list(prefix: string): AsyncIterable<StoreEntry> {
    const base = this.settings.prefix ? `${this.settings.prefix}/` : '';
    try {
      for await (const b of this.container.listBlobsFlat({ prefix: base + prefix })) {
        yield { key: b.name.slice(base.length), size: Number(b.properties.contentLength ?? 0) };
      }
    } catch (e) {
      throw this.error(`cannot list ${prefix}`, e);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.container.getBlockBlobClient(this.nameOf(key)).deleteIfExists();
    } catch (e) {
      throw this.error(`cannot delete ${key}`, e);
    }
  }

  async close(): Promise<void> {
    // The SDK keeps no connections that need closing.
  }


  private error(what: string, e: unknown): GitmlError {
    return azureError(this.url, what, e);
  }
}

/** A container client with the first credential the environment offers (also for datasets by reference). */
export function containerClient(settings: Pick<AzureSettings, 'account' | 'container' | 'endpoint'>, env: NodeJS.ProcessEnv): ContainerClient {
  const endpoint = (settings.endpoint ?? `https://${settings.account}.blob.core.windows.net`).replace(/\/+$/, '');
  // gitml's transfer queue retries with its own backoff and error classes; the SDK's would multiply them.
  const options = { retryOptions: { maxTries: 1 } };
  const connection = env.AZURE_STORAGE_CONNECTION_STRING;
  if (connection) {
    try {
      return BlobServiceClient.fromConnectionString(connection, options).getContainerClient(settings.container);
    } catch (e) {
      throw new GitmlError('E_CONFIG', `AZURE_STORAGE_CONNECTION_STRING is not a valid connection string: ${(e as Error).message}`, {
        hint: 'Copy it again from the storage account\'s "Access keys" page, or unset it to use another credential.',
      });
    }
  }
  const sas = env.AZURE_STORAGE_SAS_TOKEN;
  if (sas) {
    return new BlobServiceClient(`${endpoint}?${sas.replace(/^\?/, '')}`, new AnonymousCredential(), options).getContainerClient(settings.container);
  }
  const key = env.AZURE_STORAGE_KEY ?? env.AZURE_STORAGE_ACCOUNT_KEY;
  if (key) {
    return new BlobServiceClient(endpoint, new StorageSharedKeyCredential(settings.account, key), options).getContainerClient(settings.container);
  }
  // Loaded only when needed: it pulls in MSAL and friends.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
  return new BlobServiceClient(endpoint, new DefaultAzureCredential(), options).getContainerClient(settings.container);
}

function statusOf(e: unknown): number | undefined {
  return (e as { statusCode?: number } | null)?.statusCode;
}

function errorCodeOf(e: unknown): string | undefined {
  const x = e as { code?: string; details?: { errorCode?: string } } | null;
  return x?.details?.errorCode ?? x?.code;
}

const NETWORK = /ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|EAI_AGAIN|socket hang up|network|aborted/i;

export function azureError(url: string, what: string, e: unknown): GitmlError {
  const status = statusOf(e);
  const code = errorCodeOf(e) ?? (e as Error | null)?.name ?? 'Error';
  const message = (e as Error | null)?.message?.split('\n')[0] ?? String(e);
  const reason = `${code}${status ? ` (HTTP ${status})` : ''}: ${message}`;
  let hint = 'Check gitml.azure.endpoint and that the account is reachable (`gitml env`).';
  let retryable = false;
  if (code === 'ContainerNotFound') {
    hint = `Create the container, or fix its name in gitml.store (${url}).`;
  } else if (status === 403 || code === 'AuthenticationFailed' || code === 'AuthorizationFailure' || /credential|CredentialUnavailable/i.test(`${code} ${message}`)) {
    hint =
      'Provide Azure credentials: AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_KEY, or an identity DefaultAzureCredential finds (managed identity, az login, AZURE_CLIENT_ID/AZURE_TENANT_ID/...). gitml never reads them from the repository.';
  } else if (status === 429 || status === 503 || (status !== undefined && status >= 500) || code === 'ServerBusy') {
    retryable = true;
    hint = 'The service is busy or failing; gitml retried with backoff. Try again later, or lower gitml.concurrency.';
  } else if (status === undefined && NETWORK.test(`${code} ${message}`)) {
    retryable = true;
    hint = 'The connection to the store failed; gitml retried with backoff. Check the network and gitml.azure.endpoint.';
  }
  const err = new GitmlError('E_STORE_IO', `${what} in ${url}: ${reason}`, { hint, cause: e, retryable });
  const retryAfter = Number((e as { response?: { headers?: { get?: (h: string) => string | undefined } } } | null)?.response?.headers?.get?.('retry-after'));
  if (retryable && Number.isFinite(retryAfter) && retryAfter > 0) (err as GitmlError & { retryAfterMs?: number }).retryAfterMs = retryAfter * 1000;
  return err;
}
