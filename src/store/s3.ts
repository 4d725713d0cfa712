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
import { GitmlError } from '../errors';
import { storeError, type BackendHints, type FailureFacts } from './errors';
import type { PartPlan } from './parts';
import { conditionalPut, uploadAllParts, type PutDriver } from './put';
import { assertValidKey, missingObjectError, type BodySource, type ByteRange, type PutOptions, type PutResult, type RequestOptions, type Store, type StoreEntry } from './store';

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

const HINTS: BackendHints = {
  credentials:
    'Provide AWS credentials through the standard chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or gitml.s3.profile (your own git config), SSO, or an instance role; the role needs s3:GetObject, s3:PutObject and s3:ListBucket. gitml never reads credentials from the repository.',
  missingContainer: 'Create the bucket, or fix the bucket name in gitml.store.',
  reach: 'gitml.s3.endpoint / gitml.s3.region',
};

/**
 * AWS S3 and S3-compatible stores (MinIO, Ceph RGW, R2, GCS interop): `s3://bucket/prefix`.
 *
 * Credentials come only from the AWS SDK's default chain (env, shared config/profile, SSO, web
 * identity, instance metadata); gitml.s3.profile picks a profile. Large objects go up in parts read
 * straight from the body by range (no buffering, each re-readable), through the shared put skeleton
 * (src/store/put.ts); uploads complete only if no object exists under the key (If-None-Match: *).
 * Written by hand rather than with @aws-sdk/lib-storage, which buffers parts from one stream.
 */
export class S3Store implements Store, PutDriver {
  readonly url: string;
  readonly multipartThreshold: number;
  readonly partSize: number;
  readonly partConcurrency: number;
  private readonly client: S3Client;

  constructor(private readonly settings: S3Settings) {
    this.url = `s3://${settings.bucket}${settings.prefix ? `/${settings.prefix}` : ''}`;
    this.client = createS3Client(settings);
    this.partSize = settings.partSize ?? DEFAULT_PART;
    this.multipartThreshold = settings.multipartThreshold ?? this.partSize * 2;
    this.partConcurrency = settings.partConcurrency ?? 4;
  }

  private keyOf(key: string): string {
    assertValidKey(key, this.url);
    return this.settings.prefix ? `${this.settings.prefix}/${key}` : key;
  }

  async stat(key: string, options: RequestOptions = {}): Promise<StoreEntry | null> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.keyOf(key) }), { abortSignal: options.signal });
      return { key, size: Number(r.ContentLength ?? 0), modified: r.LastModified, etag: r.ETag, version: r.VersionId };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw this.toError(`cannot check ${key}`, e);
    }
  }

  put(key: string, body: BodySource, options: PutOptions = {}): Promise<PutResult> {
    return conditionalPut(this, key, body, options);
  }

  async putWhole(key: string, open: () => Readable, size: number, ifAbsent: boolean, signal: AbortSignal): Promise<void> {
    await this.client.send(
      new PutObjectCommand({ Bucket: this.settings.bucket, Key: this.keyOf(key), Body: open(), ContentLength: size, ...(ifAbsent ? { IfNoneMatch: '*' } : {}) }),
      { abortSignal: signal },
    );
  }

  async putParts(key: string, plan: PartPlan[], open: (range: ByteRange) => Readable, ifAbsent: boolean, signal: AbortSignal): Promise<void> {
    const Key = this.keyOf(key);
    const Bucket = this.settings.bucket;
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket, Key }), { abortSignal: signal });
    const UploadId = created.UploadId!;
    try {
      const parts = await uploadAllParts(plan, this.partConcurrency, signal, async (part, partSignal) => {
        const r = await this.client.send(
          new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: part.number, Body: open(part.range), ContentLength: part.range.end - part.range.start }),
          { abortSignal: partSignal },
        );
        return { PartNumber: part.number, ETag: r.ETag };
      });
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts }, ...(ifAbsent ? { IfNoneMatch: '*' } : {}) }), { abortSignal: signal });
    } catch (e) {
      // Nothing half-written stays behind (and no storage is billed for orphaned parts).
      await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
      throw e;
    }
  }

  async get(key: string, options: RequestOptions & { range?: ByteRange } = {}): Promise<Readable> {
    const range = options.range;
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.keyOf(key), ...(range ? { Range: `bytes=${range.start}-${range.end - 1}` } : {}) }),
        { abortSignal: options.signal },
      );
      return r.Body as Readable;
    } catch (e) {
      if (isNotFound(e)) throw missingObjectError(this.url, key);
      throw this.toError(`cannot download ${key}`, e);
    }
  }

  async *list(prefix: string, options: RequestOptions = {}): AsyncIterable<StoreEntry> {
    const base = this.settings.prefix ? `${this.settings.prefix}/` : '';
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: base + prefix, ContinuationToken: token }), { abortSignal: options.signal });
      } catch (e) {
        throw this.toError(`cannot list ${prefix || '/'}`, e);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key && !o.Key.endsWith('/')) yield { key: o.Key.slice(base.length), size: Number(o.Size ?? 0), modified: o.LastModified, etag: o.ETag };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string, options: RequestOptions = {}): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.keyOf(key) }), { abortSignal: options.signal });
    } catch (e) {
      if (isNotFound(e)) return;
      throw this.toError(`cannot delete ${key}`, e);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  isPreconditionFailed(e: unknown): boolean {
    const s = asSdk(e);
    return s.$metadata?.httpStatusCode === 412 || s.name === 'PreconditionFailed' || (s.$metadata?.httpStatusCode === 409 && s.name === 'ConditionalRequestConflict');
  }

  toError(what: string, e: unknown): GitmlError {
    if (e instanceof GitmlError) return e;
    return storeError(this.url, what, s3Facts(e), HINTS, e);
  }
}

/** An S3 client configured the way every gitml S3 access needs it. */
export function createS3Client(settings: { endpoint?: string; region?: string; forcePathStyle?: boolean; profile?: string }): S3Client {
  const config: S3ClientConfig = {
    region: settings.region ?? 'us-east-1',
    forcePathStyle: settings.forcePathStyle ?? Boolean(settings.endpoint),
    maxAttempts: 1, // gitml retries, with its own backoff and error classes (src/objects/)
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
}

function asSdk(e: unknown): SdkError {
  return (e && typeof e === 'object' ? e : {}) as SdkError;
}

function isNotFound(e: unknown): boolean {
  const s = asSdk(e);
  return s.name === 'NotFound' || s.name === 'NoSuchKey' || s.Code === 'NoSuchKey' || (s.$metadata?.httpStatusCode === 404 && s.name !== 'NoSuchBucket');
}

function s3Facts(e: unknown): FailureFacts {
  const s = asSdk(e);
  const name = s.name ?? s.Code ?? 'Error';
  return {
    status: s.$metadata?.httpStatusCode,
    // Network errors carry their errno in `code` (ECONNRESET) and a generic name.
    code: name === 'Error' && s.code ? s.code : name,
    message: s.message ?? String(e),
    retryAfterSeconds: Number(s.$response?.headers?.['retry-after']) || undefined,
  };
}
