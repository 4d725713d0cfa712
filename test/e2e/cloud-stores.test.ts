import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { azuriteConnectionString } from '../../scripts/servers';
import { cachedObjectPath, randomBytesSeeded, Sandbox, sha256 } from '../helpers/sandbox';
import { readStoredIn, tamperIn, type RawStore } from '../helpers/store-layout';
import { azureEndpoint, azureEnv, createBucket, createContainer, s3Client, s3Endpoint, s3Env, uniqueName } from '../helpers/stores';

interface Backend {
  name: string;
  /** .gitmlconfig lines naming the store (committed: no secrets). */
  configure(box: Sandbox, repo: string): Promise<void>;
  /** Credentials, only through the environment. */
  env(): NodeJS.ProcessEnv;
  /** The store through its own SDK, keys relative to the store's prefix. */
  raw: RawStore;
}

async function readS3(bucket: string, key: string): Promise<Buffer> {
  const c = s3Client();
  try {
    const r = await c.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await r.Body!.transformToByteArray());
  } finally {
    c.destroy();
  }
}

function s3Backend(): Backend {
  const bucket = uniqueName('e2e');
  const prefix = 'team/models';
  return {
    name: 's3',
    configure: async (box, repo) => {
      await createBucket(bucket);
      await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.store', `s3://${bucket}/${prefix}`]);
      await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.s3.endpoint', s3Endpoint()]);
      await box.ok(repo, 'gitml', ['allow-endpoint', s3Endpoint()]);
      await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.s3.forcePathStyle', 'true']);
    },
    env: () => ({ ...s3Env(), GITML_RETRIES: '1' }),
    raw: {
      keys: async (p) => {
        const c = s3Client();
        try {
          const r = await c.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/${p}` }));
          return (r.Contents ?? []).map((o) => ({ key: o.Key!.slice(prefix.length + 1), size: o.Size ?? 0 }));
        } finally {
          c.destroy();
        }
      },
      readKey: (key) => readS3(bucket, `${prefix}/${key}`),
      writeKey: async (key, data) => {
        const c = s3Client();
        await c.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${key}`, Body: data }));
        c.destroy();
      },
    },
  };
}

function azureBackend(): Backend {
  const container = uniqueName('e2e');
  const blobs = () => BlobServiceClient.fromConnectionString(azuriteConnectionString(azureEndpoint())).getContainerClient(container);
  return {
    name: 'azure',
    configure: async (box, repo) => {
      await createContainer(container);
      // The ADLS Gen2 form names the same account and container as the blob endpoint.
      await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.store', `abfss://${container}@devstoreaccount1.dfs.core.windows.net/ml`]);
      await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.azure.endpoint', azureEndpoint()]);
      await box.ok(repo, 'gitml', ['allow-endpoint', azureEndpoint()]);
    },
    env: () => ({ ...azureEnv(), GITML_RETRIES: '1' }),
    raw: {
      keys: async (p) => {
        const out: { key: string; size: number }[] = [];
        for await (const b of blobs().listBlobsFlat({ prefix: `ml/${p}` })) out.push({ key: b.name.slice(3), size: b.properties.contentLength ?? 0 });
        return out;
      },
      readKey: async (key) => blobs().getBlockBlobClient(`ml/${key}`).downloadToBuffer(),
      writeKey: async (key, data) => void (await blobs().getBlockBlobClient(`ml/${key}`).upload(data, data.length)),
    },
  };
}

describe.each([s3Backend(), azureBackend()])('cloud store end to end: $name', (backend) => {
  let box: Sandbox;
  let repo: string;
  let remote: string;
  const big = randomBytesSeeded(64 * 1024 * 1024 + 5, 64);
  const small = randomBytesSeeded(100_000, 1);

  beforeAll(async () => {
    box = await Sandbox.create();
    Object.assign(box.env, backend.env());
    repo = box.path('repo');
    remote = box.path('remote.git');
    await box.git(box.root, ['init', '-q', '--bare', remote]);
    await box.git(box.root, ['init', '-q', repo]);
    await box.gitml(repo, ['track', '*.pt']);
    await backend.configure(box, repo);
    await fsp.writeFile(path.join(repo, 'big.pt'), big);
    await fsp.writeFile(path.join(repo, 'small.pt'), small);
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'v1']);
    await box.git(repo, ['remote', 'add', 'origin', `gitml::${remote}`]);
  });
  afterAll(() => box.cleanup());

  test('push through gitml:: (64 MiB in parts), fresh clone finds the store through .gitmlconfig, bytes verified', async () => {
    const push = await box.git(repo, ['push', 'origin', 'main']);
    expect(push.stderr).toContain('main -> main');
    // 64 MiB is stored as deduplicated chunks: a manifest names the packs that hold them.
    expect((await backend.raw.readKey(`manifests/${sha256(big).slice(0, 2)}/${sha256(big).slice(2, 4)}/${sha256(big)}`)).length).toBeGreaterThan(0);
    // 100 KB is packed: one entry of a pack, named by its oid.
    expect(sha256(await readStoredIn(backend.raw, sha256(small)))).toBe(sha256(small));
    const clone = box.path('clone');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone]);
    expect(sha256(await fsp.readFile(path.join(clone, 'big.pt')))).toBe(sha256(big));
    expect(sha256(await fsp.readFile(path.join(clone, 'small.pt')))).toBe(sha256(small));
    expect((await box.git(clone, ['status', '--porcelain'])).stdout).toBe('');
    // No secret went into a committed file or the clone's git config.
    const committed = (await box.git(clone, ['show', 'HEAD:.gitmlconfig'])).stdout + (await fsp.readFile(path.join(clone, '.git/config'), 'utf8'));
    for (const v of Object.values(backend.env())) if (v && v.length > 4) expect(committed).not.toContain(v);
  });

  test('wrong credentials: one clear error naming the store and what to set, nothing pushed', async () => {
    await fsp.writeFile(path.join(repo, 'creds.pt'), randomBytesSeeded(1000, 5));
    await box.git(repo, ['add', 'creds.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'creds']);
    const before = (await box.git(remote, ['rev-parse', 'main'])).stdout;
    const wrong =
      backend.name === 's3'
        ? { AWS_ACCESS_KEY_ID: 'WRONGKEY' }
        : { AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(azureEndpoint()).replace(/AccountKey=[^;]+/, `AccountKey=${Buffer.from('x'.repeat(32)).toString('base64')}`) };
    const r = await box.run(repo, 'git', ['push', 'origin', 'main'], { env: wrong });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(backend.name === 's3' ? /AWS_ACCESS_KEY_ID/ : /AZURE_STORAGE_CONNECTION_STRING/);
    expect((await box.git(remote, ['rev-parse', 'main'])).stdout).toBe(before);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
  });

  test('an object changed in the store behind our back: clone fails naming the file, nothing corrupt lands', async () => {
    const victim = randomBytesSeeded(50_000, 9);
    await fsp.writeFile(path.join(repo, 'victim.pt'), victim);
    await box.git(repo, ['add', 'victim.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'victim']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    const swapped = randomBytesSeeded(50_000, 10);
    await tamperIn(backend.raw, sha256(victim), swapped);
    const clone = box.path('clone-tampered');
    const r = await box.run(box.root, 'git', ['clone', `gitml::${remote}`, clone]);
    expect(r.stderr).toContain('victim.pt');
    expect(r.stderr).toMatch(/damaged/);
    const file = path.join(clone, 'victim.pt');
    if (fs.existsSync(file)) expect(sha256(await fsp.readFile(file))).not.toBe(sha256(swapped));
    const oid = sha256(victim);
    expect(fs.existsSync(cachedObjectPath(clone, oid))).toBe(false);
  });
});
