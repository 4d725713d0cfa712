import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { azuriteConnectionString, S3_CREDENTIALS } from '../../scripts/servers';

/** Endpoints of the servers test/global-setup.ts started. */
export function s3Endpoint(): string {
  const e = process.env.GITML_TEST_S3_ENDPOINT;
  if (!e) throw new Error('GITML_TEST_S3_ENDPOINT is not set: the tests run through jest with test/global-setup.ts');
  return e;
}

export function azureEndpoint(): string {
  const e = process.env.GITML_TEST_AZURE_ENDPOINT;
  if (!e) throw new Error('GITML_TEST_AZURE_ENDPOINT is not set: the tests run through jest with test/global-setup.ts');
  return e;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export function s3Client(endpoint = s3Endpoint()): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function createBucket(name: string, endpoint = s3Endpoint()): Promise<void> {
  const client = s3Client(endpoint);
  await client.send(new CreateBucketCommand({ Bucket: name }));
  client.destroy();
}

export async function createContainer(name: string): Promise<void> {
  await BlobServiceClient.fromConnectionString(azuriteConnectionString(azureEndpoint())).getContainerClient(name).create();
}

/** Environment a gitml process needs to reach the S3 test server (credentials only through env). */
export function s3Env(): NodeJS.ProcessEnv {
  return { ...S3_CREDENTIALS };
}

export function azureEnv(): NodeJS.ProcessEnv {
  return { AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(azureEndpoint()) };
}
