import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { GitmlError } from '../errors';
import { BodyGuard } from './body';
import { partsOf, type PartPlan } from './parts';
import { assertValidKey, missingObjectError, type BodySource, type ByteRange, statEach, existingResult, type PutOptions, type PutResult, type Store, type StoreEntry } from './store';

export interface S3Settings {
  bucket: string;
  prefix: string;
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  profile?: string;
  /** Objects at or above this size go up in parts. */
  multipartThreshold?: number;
  partSize?: number;
  /** Parts of one object in flight at once. */
  partConcurrency?: number;
}

const DEFAULT_PART = 16 * 1024 * 1024;

/**
 * AWS S3 and S3-compatible stores (MinIO, Ceph RGW, R2, GCS interop): `s3://bucket/prefix`.
 *
 * Credentials come only from the AWS SDK's default chain (env, shared config/profile, SSO, web
 * identity, instance metadata); gitml.s3.profile picks a profile. Large objects are uploaded in parts
 * read straight from the cache file by range (no buffering, each part retried on its own), and the
 * upload completes only if no object exists under the key (If-None-Match: *). Written by hand rather
 * than with @aws-sdk/lib-storage, which buffers parts from one stream and cannot re-read a part.
 */
export class S3Store implements Store {
  readonly url: string;
  private readonly client: S3Client;

  constructor(private readonly settings: S3Settings) {
    this.url = `s3://${settings.bucket}${settings.prefix ? `/${settings.prefix}` : ''}`;
    this.client = createS3Client(settings);
  }

  private keyOf(key: string): string {
    assertValidKey(key);
    return this.settings.prefix ? `${this.settings.prefix}/${key}` : key;
  }

  async stat(key: string, signal?: AbortSignal): Promise<{ size: number } | null> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.keyOf(key) }), { abortSignal: signal });
      return { size: Number(r.ContentLength ?? 0) };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw this.error(`cannot check ${key}`, e);
    }
  }

  statMany(keys: readonly string[]): Promise<Map<string, number | null>> {
    return statEach(keys, (key) => this.stat(key));
  }

  async put(key: string, body: BodySource, options: PutOptions = {}): Promise<PutResult> {
    // Servers that ignore If-None-Match (some S3-compatible ones) still never get a blind overwrite,
    // unless the caller checked just before (then only a concurrent writer of the same oid can race).
    const existing = options.checked || options.replace ? null : await this.stat(key, options.signal);
    if (existing) return existingResult(this, key, existing.size, body.size);
    const threshold = this.settings.multipartThreshold ?? DEFAULT_PART * 2;
    const guard = new BodyGuard(options.signal);
    try {
      if (body.size < threshold) {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.settings.bucket,
            Key: this.keyOf(key),
            Body: guard.watch(body.open()),
            ContentLength: body.size,
            ...(options.replace ? {} : { IfNoneMatch: '*' }),
          }),
          { abortSignal: guard.signal },
        );
      } else {
        await this.putMultipart(key, body, guard, options.replace ?? false);
      }
      return 'created';
    } catch (caught) {
      const e = guard.explain(caught);
      if (isPreconditionFailed(e)) {
        const now = await this.stat(key);
        if (now) return existingResult(this, key, now.size, body.size);
      }
      if (e instanceof GitmlError) throw e;
      throw this.error(`cannot upload ${key}`, e);
    }
  }

  private async putMultipart(key: string, body: BodySource, guard: BodyGuard, replace: boolean): Promise<void> {
    const signal = guard.signal;
    const Key = this.keyOf(key);
    const Bucket = this.settings.bucket;
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket, Key }), { abortSignal: signal });
    const UploadId = created.UploadId!;
    const plan: PartPlan[] = partsOf(body.size, this.settings.partSize ?? DEFAULT_PART);
    const limit = pLimit(this.settings.partConcurrency ?? 4);
    try {
      const etags = await Promise.all(
        plan.map((part) =>
          limit(async () => {
            const r = await this.client.send(
              new UploadPartCommand({
                Bucket,
                Key,
                UploadId,
                PartNumber: part.number,
                Body: guard.watch(body.open(part.range)),
                ContentLength: part.range.end - part.range.start,
              }),
              { abortSignal: signal },
            );
            return { PartNumber: part.number, ETag: r.ETag };
          }),
        ),
      );
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: etags }, ...(replace ? {} : { IfNoneMatch: '*' }) }), {
        abortSignal: signal,
      });
    } catch (e) {
      // Nothing half-written stays behind (and no storage is billed for orphaned parts).
      await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
      throw e;
    }
  }

  async get(key: string, options: { range?: ByteRange; signal?: AbortSignal } = {}): Promise<Readable> {
    const range = options.range;
    try {
      const r = await this.client.send(
        new GetObjectCommand({
          Bucket: this.settings.bucket,
          Key: this.keyOf(key),
          ...(range ? { Range: `bytes=${range.start}-${range.end - 1}` } : {}),
        }),
        { abortSignal: options.signal },
      );
      return r.Body as Readable;
    } catch (e) {
      if (isNotFound(e)) throw missingObjectError(this, key);
      throw this.error(`cannot download ${key}`, e);
    }
  }

  async *list(prefix: string): AsyncIterable<StoreEntry> {
    const base = this.settings.prefix ? `${this.settings.prefix}/` : '';
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: base + prefix, ContinuationToken: token }));
      } catch (e) {
        throw this.error(`cannot list ${prefix}`, e);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key) yield { key: o.Key.slice(base.length), size: Number(o.Size ?? 0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.keyOf(key) }));
    } catch (e) {
      if (isNotFound(e)) return;
      throw this.error(`cannot delete ${key}`, e);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }


  private error(what: string, e: unknown): GitmlError {
    return s3Error(this.url, what, e);
  }
}

/** An S3 client configured the way every gitml S3 access needs it (also for datasets by reference). */
export function createS3Client(settings: { endpoint?: string; region?: string; forcePathStyle?: boolean; profile?: string }): S3Client {
  const config: S3ClientConfig = {
    region: settings.region ?? 'us-east-1',
    forcePathStyle: settings.forcePathStyle ?? Boolean(settings.endpoint),
    maxAttempts: 1, // gitml's transfer queue retries, with its own backoff and error classes
    // The SDK would print warnings with console.warn; gitml reports errors itself.
    logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
  };
  if (settings.endpoint) {
    config.endpoint = settings.endpoint;
    // Default checksums send aws-chunked bodies that some S3-compatible servers store verbatim
    // (s3rver among them): the bytes read back would differ. sha256 is verified on every read anyway.
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  if (settings.profile) config.profile = settings.profile;
  return new S3Client(config);
}

interface SdkError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string> };
  $retryable?: unknown;
}

function asSdk(e: unknown): SdkError {
  return (e && typeof e === 'object' ? e : {}) as SdkError;
}

function isNotFound(e: unknown): boolean {
  const s = asSdk(e);
  return s.name === 'NotFound' || s.name === 'NoSuchKey' || s.Code === 'NoSuchKey' || s.$metadata?.httpStatusCode === 404 && s.name !== 'NoSuchBucket';
}

function isPreconditionFailed(e: unknown): boolean {
  const s = asSdk(e);
  return s.$metadata?.httpStatusCode === 412 || s.name === 'PreconditionFailed' || s.$metadata?.httpStatusCode === 409 && s.name === 'ConditionalRequestConflict';
}

const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** One clear error: which store, what failed, the SDK's reason, what to fix. Transient faults are retryable. */
export function s3Error(url: string, what: string, e: unknown): GitmlError {
  const s = asSdk(e);
  const status = s.$metadata?.httpStatusCode;
  const name = s.name ?? s.Code ?? 'Error';
  const reason = `${name}${status ? ` (HTTP ${status})` : ''}: ${s.message ?? String(e)}`;
  const credentials = ['CredentialsProviderError', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'UnrecognizedClientException'];
  let hint = 'Check gitml.s3.endpoint / gitml.s3.region and that the store is reachable (`gitml env`).';
  let retryable = false;
  if (credentials.includes(name) || /credential/i.test(s.message ?? '')) {
    hint = 'Provide AWS credentials through the standard chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or gitml.s3.profile, SSO, or an instance role. gitml never reads them from the repository.';
  } else if (name === 'NoSuchBucket') {
    hint = `Create the bucket, or fix the bucket name in gitml.store (${url}).`;
  } else if (name === 'AccessDenied' || status === 403) {
    // A HEAD answer has no body, so a refused key and a missing permission look the same.
    hint = `The store refused the credentials in use (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or gitml.s3.profile), or they may not access ${url}: it needs s3:GetObject, s3:PutObject and s3:ListBucket.`;
  } else if (status === 429 || status === 503 || name === 'SlowDown' || name === 'Throttling' || name === 'ThrottlingException' || (status !== undefined && status >= 500)) {
    retryable = true;
    hint = 'The service is busy or failing; gitml retried with backoff. Try again later, or lower gitml.concurrency.';
  } else if (name === 'AbortError' || name === 'TimeoutError' || NETWORK.has(s.code ?? '') || NETWORK.has(name) || /socket hang up|ECONNRESET|network|aborted|premature|terminated|EPIPE/i.test(s.message ?? '')) {
    retryable = true;
    hint = 'The connection to the store failed; gitml retried with backoff. Check the network and gitml.s3.endpoint.';
  }
  const err = new GitmlError('E_STORE_IO', `${what} in ${url}: ${reason}`, { hint, cause: e, retryable });
  const retryAfter = Number(s.$response?.headers?.['retry-after']);
  if (retryable && Number.isFinite(retryAfter) && retryAfter > 0) (err as GitmlError & { retryAfterMs?: number }).retryAfterMs = retryAfter * 1000;
  return err;
}
