import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { formatBytes } from '../src/progress';
import { createMachine, run } from '../scripts/machine';
import { azuriteConnectionString, S3_CREDENTIALS, startAzurite, startS3rver } from '../scripts/servers';
import { w1, w2 } from './workloads';

/**
 * `npm run bench:stores`: push and clone throughput through gitml:: against s3rver and azurite on
 * loopback, for one large file and many small ones, at several gitml.concurrency settings.
 * Emulators, not clouds: compare settings with each other, not these figures with real services.
 *
 *   npm run bench:stores -- [--quick] [--concurrency 1,8,16]
 */
async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const cIdx = argv.indexOf('--concurrency');
  const levels = (cIdx >= 0 ? argv[cIdx + 1]! : '1,8,16').split(',').map(Number);
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-bench-stores-'));
  const [s3, azure] = await Promise.all([startS3rver(), startAzurite()]);
  const rows: string[] = [];
  try {
    const data = path.join(root, 'data');
    const workloads = {
      W1: { files: await w1(data, quick ? 256 << 20 : 1 << 30), bytes: quick ? 256 << 20 : 1 << 30 },
      W2: { files: await w2(data, quick ? 500 : 2000, 64 << 10), bytes: (quick ? 500 : 2000) * (64 << 10) },
    };
    const m = await createMachine(root, 'machine');
    await run(m, root, 'gitml', ['install']);
    const s3Client = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    const blobs = BlobServiceClient.fromConnectionString(azuriteConnectionString(azure.endpoint));
    const backends = [
      {
        name: 's3rver',
        env: { ...S3_CREDENTIALS },
        prepare: async (n: number) => {
          await s3Client.send(new CreateBucketCommand({ Bucket: `bench-${n}` }));
          return [`s3://bench-${n}/store`, ['gitml.s3.endpoint', s3.endpoint]] as const;
        },
      },
      {
        name: 'azurite',
        env: { AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(azure.endpoint) },
        prepare: async (n: number) => {
          await blobs.getContainerClient(`bench-${n}`).create();
          return [`azure://devstoreaccount1/bench-${n}/store`, ['gitml.azure.endpoint', azure.endpoint]] as const;
        },
      },
    ];
    let n = 0;
    console.log(`store throughput on loopback in ${root}`);
    for (const backend of backends) {
      for (const [name, w] of Object.entries(workloads)) {
        for (const level of levels) {
          n++;
          const [url, [key, endpoint]] = await backend.prepare(n);
          const repo = path.join(root, `repo-${n}`);
          const bare = path.join(root, `remote-${n}.git`);
          const env = { ...backend.env, GITML_CONCURRENCY: String(level) };
          await run(m, root, 'git', ['init', '-q', '--bare', bare]);
          await run(m, root, 'git', ['init', '-q', repo]);
          await run(m, repo, 'gitml', ['track', '*.pt']);
          await run(m, repo, 'git', ['config', '-f', '.gitmlconfig', 'gitml.store', url]);
          await run(m, repo, 'git', ['config', '-f', '.gitmlconfig', key, endpoint]);
          for (const f of w.files) {
            await fsp.mkdir(path.dirname(path.join(repo, f)), { recursive: true });
            await fsp.copyFile(path.join(data, f), path.join(repo, f));
          }
          await run(m, repo, 'git', ['add', '.'], env);
          await run(m, repo, 'git', ['commit', '-q', '-m', name], env);
          await run(m, repo, 'git', ['remote', 'add', 'origin', `gitml::${bare}`]);
          const push = await seconds(() => run(m, repo, 'git', ['push', '-q', 'origin', 'main'], env));
          const clone = await seconds(() => run(m, root, 'git', ['clone', '-q', `gitml::${bare}`, path.join(root, `clone-${n}`)], env));
          const line = `| ${backend.name} | ${name} (${formatBytes(w.bytes)}, ${w.files.length} file${w.files.length > 1 ? 's' : ''}) | ${level} | ${push.toFixed(2)} s (${formatBytes(w.bytes / push)}/s) | ${clone.toFixed(2)} s (${formatBytes(w.bytes / clone)}/s) |`;
          console.log(line);
          rows.push(line);
          await fsp.rm(repo, { recursive: true, force: true });
          await fsp.rm(path.join(root, `clone-${n}`), { recursive: true, force: true });
        }
      }
    }
    s3Client.destroy();
    console.log('\n| store | workload | gitml.concurrency | push | clone |\n| --- | --- | ---: | --- | --- |');
    for (const r of rows) console.log(r);
  } finally {
    await Promise.all([s3.stop(), azure.stop()]);
    await fsp.rm(root, { recursive: true, force: true });
  }
}

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
