import { CreateBucketCommand, CreateMultipartUploadCommand, CompleteMultipartUploadCommand, GetObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { formatBytes } from '../src/progress';
import { createMachine, run } from '../scripts/machine';
import { azuriteConnectionString, S3_CREDENTIALS, startAzurite, startS3rver } from '../scripts/servers';
import { countingProxy } from './counting-proxy';
import { w1, w2, w4 } from './workloads';

/**
 * `npm run bench:stores`: push and clone through gitml:: against s3rver and azurite on loopback, for
 * one large file (W1), 2,000 × 64 KiB (W2) and 20,000 files of 4-64 KiB (W4), with every request
 * counted by a proxy in front of the emulator; and, in the same run, what each cloud SDK alone does
 * with W1 against the same server through the same proxy (multipart upload and parallel ranged
 * download, the same concurrency): the ceiling gitml is held against. Emulators, not clouds: compare within a run.
 *
 *   npm run bench:stores -- [--quick] [--concurrency 8] [--workloads W1,W2,W4]
 */
async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** Downloads `size` bytes into `out` in parts of `part`, `concurrency` at once, each written at its offset. */
async function rangedDownload(out: string, size: number, part: number, concurrency: number, read: (start: number, end: number) => Promise<AsyncIterable<Buffer>>): Promise<void> {
  const fd = await fsp.open(out, 'w');
  let next = 0;
  const count = Math.ceil(size / part);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        let at = i * part;
        for await (const chunk of await read(at, Math.min(size, at + part))) {
          await fd.write(chunk, 0, chunk.length, at);
          at += chunk.length;
        }
      }
    }),
  );
  await fd.close();
}

/** The S3 SDK alone: a multipart upload of `file` and a download in parallel ranges, `concurrency` at a time. */
async function s3Alone(client: S3Client, bucket: string, file: string, size: number, concurrency: number): Promise<{ up: number; down: number }> {
  const part = 16 << 20;
  const key = 'sdk-alone/w1';
  const up = await seconds(async () => {
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const parts: { PartNumber: number; ETag?: string }[] = [];
    const numbers = Array.from({ length: Math.ceil(size / part) }, (_, i) => i);
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < numbers.length; i = next++) {
          const start = i * part;
          const body = fs.createReadStream(file, { start, end: Math.min(size, start + part) - 1 });
          const r = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: body, ContentLength: Math.min(part, size - start) }));
          parts.push({ PartNumber: i + 1, ETag: r.ETag });
        }
      }),
    );
    parts.sort((a, b) => a.PartNumber - b.PartNumber);
    await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
  });
  const out = `${file}.s3-download`;
  const down = await seconds(() =>
    rangedDownload(out, size, part, concurrency, async (start, end) => (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end - 1}` }))).Body as AsyncIterable<Buffer>),
  );
  await fsp.rm(out, { force: true });
  return { up, down };
}

/** The Azure SDK alone: uploadFile and downloadToFile with the same concurrency. */
async function azureAlone(blobs: BlobServiceClient, container: string, file: string, concurrency: number): Promise<{ up: number; down: number }> {
  const blob = blobs.getContainerClient(container).getBlockBlobClient('sdk-alone/w1');
  const up = await seconds(() => blob.uploadFile(file, { blockSize: 16 << 20, concurrency }));
  const out = `${file}.azure-download`;
  const size = (await fsp.stat(file)).size;
  const down = await seconds(() => rangedDownload(out, size, 16 << 20, concurrency, async (start, end) => (await blob.download(start, end - start)).readableStreamBody as AsyncIterable<Buffer>));
  await fsp.rm(out, { force: true });
  return { up, down };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const cIdx = argv.indexOf('--concurrency');
  const concurrency = cIdx >= 0 ? Number(argv[cIdx + 1]) : 8;
  const wIdx = argv.indexOf('--workloads');
  const chosen = new Set((wIdx >= 0 ? argv[wIdx + 1]! : 'W1,W2,W4').split(',').map((w) => w.trim().toUpperCase()));
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-bench-stores-'));
  const [s3, azure] = await Promise.all([startS3rver(), startAzurite()]);
  const [s3Proxy, azureProxy] = await Promise.all([countingProxy(s3.endpoint), countingProxy(azure.endpoint)]);
  const rows: string[] = [];
  const baselines: string[] = [];
  try {
    const data = path.join(root, 'data');
    const sizes = { w1: quick ? 256 << 20 : 1 << 30, w2: quick ? 500 : 2000, w4: quick ? 2000 : 20_000 };
    const workloads: Record<string, { files: string[]; bytes: number }> = {};
    if (chosen.has('W1')) workloads.W1 = { files: await w1(data, sizes.w1), bytes: sizes.w1 };
    if (chosen.has('W2')) workloads.W2 = { files: await w2(data, sizes.w2, 64 << 10), bytes: sizes.w2 * (64 << 10) };
    if (chosen.has('W4')) {
      const files = await w4(data, sizes.w4);
      let bytes = 0;
      for (const f of files) bytes += (await fsp.stat(path.join(data, f))).size;
      workloads.W4 = { files, bytes };
    }
    const m = await createMachine(root, 'machine');
    await run(m, root, 'gitml', ['install']);
    // The SDK-alone baselines go through the same counting proxy as gitml: the same path, byte for byte.
    const s3Client = new S3Client({ endpoint: s3Proxy.url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    const blobs = BlobServiceClient.fromConnectionString(azuriteConnectionString(azureProxy.url));
    const backends = [
      {
        name: 's3rver',
        env: { ...S3_CREDENTIALS },
        proxy: s3Proxy,
        prepare: async (n: number) => {
          await s3Client.send(new CreateBucketCommand({ Bucket: `bench-${n}` }));
          return [`s3://bench-${n}/store`, ['gitml.s3.endpoint', s3Proxy.url]] as const;
        },
        alone: async (n: number, file: string, size: number) => s3Alone(s3Client, `bench-${n}`, file, size, concurrency),
      },
      {
        name: 'azurite',
        env: { AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(azureProxy.url) },
        proxy: azureProxy,
        prepare: async (n: number) => {
          await blobs.getContainerClient(`bench-${n}`).create();
          return [`azure://devstoreaccount1/bench-${n}/store`, ['gitml.azure.endpoint', azureProxy.url]] as const;
        },
        alone: async (n: number, file: string) => azureAlone(blobs, `bench-${n}`, file, concurrency),
      },
    ];
    let n = 0;
    console.log(`stores on loopback in ${root}; gitml.concurrency ${concurrency}; command: npm run bench:stores -- ${argv.join(' ')}`);
    for (const backend of backends) {
      for (const [name, w] of Object.entries(workloads)) {
        n++;
        const [url, [key, endpoint]] = await backend.prepare(n);
        const repo = path.join(root, `repo-${n}`);
        const bare = path.join(root, `remote-${n}.git`);
        const env = { ...backend.env, GITML_CONCURRENCY: String(concurrency) };
        await run(m, root, 'git', ['init', '-q', '--bare', bare]);
        await run(m, root, 'git', ['init', '-q', repo]);
        await run(m, repo, 'gitml', ['track', '*.pt']);
        await run(m, repo, 'git', ['config', '-f', '.gitmlconfig', 'gitml.store', url]);
        await run(m, repo, 'git', ['config', '-f', '.gitmlconfig', key, endpoint]);
        await run(m, repo, 'gitml', ['allow-endpoint', endpoint]);
        for (const f of w.files) {
          await fsp.mkdir(path.dirname(path.join(repo, f)), { recursive: true });
          await fsp.copyFile(path.join(data, f), path.join(repo, f));
        }
        await run(m, repo, 'git', ['add', '.'], env);
        await run(m, repo, 'git', ['commit', '-q', '-m', name], env);
        await run(m, repo, 'git', ['remote', 'add', 'origin', `gitml::${bare}`]);
        await backend.proxy.reset();
        const push = await seconds(() => run(m, repo, 'git', ['push', '-q', 'origin', 'main'], env));
        const pushCounts = await backend.proxy.counts();
        const pushRequests = [...pushCounts.values()].reduce((a, b) => a + b, 0);
        const pushPuts = (pushCounts.get('PUT') ?? 0) + (pushCounts.get('POST') ?? 0);
        await backend.proxy.reset();
        const cloneDir = path.join(root, `clone-${n}`);
        await run(m, root, 'gitml', ['allow-endpoint', endpoint]);
        const clone = await seconds(() => run(m, root, 'git', ['clone', '-q', `gitml::${bare}`, cloneDir], env));
        const cloneRequests = await backend.proxy.total();
        const per1000 = (r: number) => (w.files.length >= 1000 ? ` (${((r * 1000) / w.files.length).toFixed(0)} per 1,000 files)` : '');
        const line = `| ${backend.name} | ${name} (${formatBytes(w.bytes)}, ${w.files.length} file${w.files.length > 1 ? 's' : ''}) | ${push.toFixed(2)} s (${formatBytes(w.bytes / push)}/s) | ${pushRequests} (${pushPuts} writes)${per1000(pushRequests)} | ${clone.toFixed(2)} s (${formatBytes(w.bytes / clone)}/s) | ${cloneRequests}${per1000(cloneRequests)} |`;
        console.log(line);
        rows.push(line);
        if (name === 'W1') {
          const alone = await backend.alone(n, path.join(data, w.files[0]!), w.bytes);
          const b = `| ${backend.name} | SDK alone, W1 | upload ${alone.up.toFixed(2)} s (${formatBytes(w.bytes / alone.up)}/s) | gitml push / SDK upload: ${(push / alone.up).toFixed(2)} × | download ${alone.down.toFixed(2)} s (${formatBytes(w.bytes / alone.down)}/s) | gitml clone / SDK download: ${(clone / alone.down).toFixed(2)} × |`;
          console.log(b);
          baselines.push(b);
        }
        await fsp.rm(repo, { recursive: true, force: true });
        await fsp.rm(cloneDir, { recursive: true, force: true });
      }
    }
    s3Client.destroy();
    console.log(`\ncommand: npm run bench:stores -- ${argv.join(' ')}`);
    console.log('\n| store | workload | push (git push -q origin main) | requests during push | clone (git clone -q gitml::...) | requests during clone |\n| --- | --- | --- | --- | --- | --- |');
    for (const r of rows) console.log(r);
    if (baselines.length) {
      console.log(`\n| store | the SDK alone (same server, concurrency ${concurrency}) | | | | |\n| --- | --- | --- | --- | --- | --- |`);
      for (const b of baselines) console.log(b);
    }
  } finally {
    await Promise.all([s3Proxy.close(), azureProxy.close()]);
    await Promise.all([s3.stop(), azure.stop()]);
    await fsp.rm(root, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
