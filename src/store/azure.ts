import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { AnonymousCredential, BlobServiceClient, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { GitmlError } from '../errors';
import { storeError, type BackendHints, type FailureFacts } from './errors';
import type { PartPlan } from './parts';
import { conditionalPut, uploadAllParts, type PutDriver } from './put';
import { assertValidKey, missingObjectError, type BodySource, type ByteRange, type PutOptions, type PutResult, type RequestOptions, type Store, type StoreEntry } from './store';

export interface AzureSettings {
  account: string;
  container: string;
  prefix: string;
  /** Blob service endpoint; default https://<account>.blob.core.windows.net (gitml.azure.endpoint). */
  endpoint?: string;
  /** The URL as the user wrote it (redacted), for messages. */
  display: string;
  multipartThreshold?: number;
  partSize?: number;
  partConcurrency?: number;
}

const DEFAULT_BLOCK = 16 * 1024 * 1024;

const HINTS: BackendHints = {
  credentials:
    'Provide Azure credentials: AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_KEY, or an identity DefaultAzureCredential finds (managed identity, az login, AZURE_CLIENT_ID/AZURE_TENANT_ID/...); the role needs Storage Blob Data Contributor (Reader to clone). gitml never reads credentials from the repository.',
  missingContainer: 'Create the container, or fix its name in gitml.store.',
  reach: 'gitml.azure.endpoint',
};

/**
 * Azure Blob Storage and ADLS Gen2 (hierarchical-namespace accounts serve the blob endpoint too).
 *
 * Credentials, first found wins: AZURE_STORAGE_CONNECTION_STRING; AZURE_STORAGE_SAS_TOKEN;
 * AZURE_STORAGE_KEY (account key); else DefaultAzureCredential from @azure/identity (managed identity,
 * workload identity, az login, environment service principal). Never from the repository.
 * Large objects are staged as blocks read by range, through the shared put skeleton, and committed
 * only if no blob exists under the name (ifNoneMatch: *).
 */
export class AzureStore implements Store, PutDriver {
  readonly url: string;
  readonly multipartThreshold: number;
  readonly partSize: number;
  readonly partConcurrency: number;
  private readonly container: ContainerClient;

  constructor(
    private readonly settings: AzureSettings,
    env: NodeJS.ProcessEnv,
  ) {
    this.url = settings.display;
    this.container = containerClient(settings, env);
    this.partSize = settings.partSize ?? DEFAULT_BLOCK;
    this.multipartThreshold = settings.multipartThreshold ?? this.partSize * 2;
    this.partConcurrency = settings.partConcurrency ?? 4;
  }

  private nameOf(key: string): string {
    assertValidKey(key, this.url);
    return this.settings.prefix ? `${this.settings.prefix}/${key}` : key;
  }

  async stat(key: string, options: RequestOptions = {}): Promise<StoreEntry | null> {
    try {
      const p = await this.container.getBlockBlobClient(this.nameOf(key)).getProperties({ abortSignal: options.signal });
      return { key, size: Number(p.contentLength ?? 0), modified: p.lastModified, etag: p.etag, version: p.versionId };
    } catch (e) {
      if (statusOf(e) === 404 && errorCodeOf(e) !== 'ContainerNotFound') return null;
      throw this.toError(`cannot check ${key}`, e);
    }
  }

  put(key: string, body: BodySource, options: PutOptions = {}): Promise<PutResult> {
    return conditionalPut(this, key, body, options);
  }

  async putWhole(key: string, open: () => Readable, size: number, ifAbsent: boolean, signal: AbortSignal): Promise<void> {
    // A function body can be re-opened by the SDK's own transport if it must resend.
    await this.container.getBlockBlobClient(this.nameOf(key)).upload(open, size, { conditions: ifAbsent ? { ifNoneMatch: '*' } : {}, abortSignal: signal });
  }

  async putParts(key: string, plan: PartPlan[], open: (range: ByteRange) => Readable, ifAbsent: boolean, signal: AbortSignal): Promise<void> {
    const blob = this.container.getBlockBlobClient(this.nameOf(key));
    // Block ids: same length for every block of a blob (a service rule), unique per attempt.
    const attempt = randomBytes(6).toString('hex');
    const ids = plan.map((p) => Buffer.from(`${attempt}-${String(p.number).padStart(6, '0')}`).toString('base64'));
    await uploadAllParts(plan, this.partConcurrency, signal, (p, partSignal) =>
      blob.stageBlock(ids[p.number - 1]!, () => open(p.range), p.range.end - p.range.start, { abortSignal: partSignal }),
    );
    // Uncommitted blocks expire on their own (7 days) and are never visible as a blob.
    await blob.commitBlockList(ids, { conditions: ifAbsent ? { ifNoneMatch: '*' } : {}, abortSignal: signal });
  }

  async get(key: string, options: RequestOptions & { range?: ByteRange } = {}): Promise<Readable> {
    const range = options.range;
    try {
      const r = await this.container
        .getBlockBlobClient(this.nameOf(key))
        .download(range ? range.start : 0, range ? range.end - range.start : undefined, { abortSignal: options.signal });
      return r.readableStreamBody as Readable;
    } catch (e) {
      if (statusOf(e) === 404 && errorCodeOf(e) !== 'ContainerNotFound') throw missingObjectError(this.url, key);
      throw this.toError(`cannot download ${key}`, e);
    }
  }

  async *list(prefix: string, options: RequestOptions = {}): AsyncIterable<StoreEntry> {
    const base = this.settings.prefix ? `${this.settings.prefix}/` : '';
    try {
      for await (const b of this.container.listBlobsFlat({ prefix: base + prefix, abortSignal: options.signal })) {
        yield { key: b.name.slice(base.length), size: Number(b.properties.contentLength ?? 0), modified: b.properties.lastModified, etag: b.properties.etag, version: b.versionId };
      }
    } catch (e) {
      throw this.toError(`cannot list ${prefix || '/'}`, e);
    }
  }

  async delete(key: string, options: RequestOptions = {}): Promise<void> {
    try {
      await this.container.getBlockBlobClient(this.nameOf(key)).deleteIfExists({ abortSignal: options.signal });
    } catch (e) {
      throw this.toError(`cannot delete ${key}`, e);
    }
  }

  async close(): Promise<void> {
    // The SDK keeps no connections that need closing.
  }

  isPreconditionFailed(e: unknown): boolean {
    const code = errorCodeOf(e);
    return statusOf(e) === 412 || code === 'BlobAlreadyExists' || code === 'ConditionNotMet';
  }

  toError(what: string, e: unknown): GitmlError {
    if (e instanceof GitmlError) return e;
    return storeError(this.url, what, azureFacts(e), HINTS, e);
  }
}

/** A container client with the first credential the environment offers. */
export function containerClient(settings: Pick<AzureSettings, 'account' | 'container' | 'endpoint'>, env: NodeJS.ProcessEnv): ContainerClient {
  const endpoint = (settings.endpoint ?? `https://${settings.account}.blob.core.windows.net`).replace(/\/+$/, '');
  // gitml retries with its own backoff and error classes; the SDK's would multiply them.
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

function azureFacts(e: unknown): FailureFacts {
  const retryAfter = Number((e as { response?: { headers?: { get?: (h: string) => string | undefined } } } | null)?.response?.headers?.get?.('retry-after'));
  return {
    status: statusOf(e),
    code: errorCodeOf(e) ?? (e as Error | null)?.name ?? 'Error',
    message: (e as Error | null)?.message ?? String(e),
    retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : undefined,
  };
}
