import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytesSeeded, Sandbox, sha256 } from '../helpers/sandbox';
import { createBucket, s3Client, s3Env, uniqueName } from '../helpers/stores';
import { startS3rver, type S3rverHandle } from '../../scripts/servers';

/** A store that dies in the middle of a push: nothing half-published, and a re-run finishes the job. */
describe.each([
  { chunking: false, name: 'whole objects' },
  { chunking: true, name: 'chunked objects' },
])('store fault: the S3 server dies mid-push ($name)', ({ chunking }) => {
  let box: Sandbox;
  let server: S3rverHandle;
  const bucket = uniqueName('fault');
  const files = Array.from({ length: 12 }, (_, i) => randomBytesSeeded(8 * 1024 * 1024, 100 + i));

  beforeAll(async () => {
    server = await startS3rver();
    await createBucket(bucket, server.endpoint);
    box = await Sandbox.create();
    Object.assign(box.env, s3Env(), { GITML_RETRIES: '0', GITML_CONCURRENCY: '1', GITML_CHUNKING: String(chunking) });
  });
  afterAll(async () => {
    await server.stop();
    await box.cleanup();
  });

  /**
   * Objects in the bucket. `complete`: only whole 8 MiB objects (s3rver keeps half uploads). In chunked
   * mode, what counts is a pack with its index (the index is written after its pack).
   */
  async function storedCount(complete = false): Promise<number> {
    const c = s3Client(server.endpoint);
    try {
      const r = await c.send(new ListObjectsV2Command({ Bucket: bucket }));
      const keys = r.Contents ?? [];
      if (chunking) return keys.filter((o) => o.Key?.endsWith('.idx')).length;
      return keys.filter((o) => !complete || o.Size === 8 * 1024 * 1024).length;
    } catch {
      return -1;
    } finally {
      c.destroy();
    }
  }

  test('push fails cleanly, the remote ref does not move, the re-run uploads only what is missing', async () => {
    const repo = box.path('repo');
    const remote = box.path('remote.git');
    await box.git(box.root, ['init', '-q', '--bare', remote]);
    await box.git(box.root, ['init', '-q', repo]);
    await box.gitml(repo, ['track', '*.pt']);
    await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.store', `s3://${bucket}/store`]);
    await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.s3.endpoint', server.endpoint]);
    await box.ok(repo, 'gitml', ['allow-endpoint', server.endpoint]);
    await box.git(repo, ['remote', 'add', 'origin', `gitml::${remote}`]);
    await box.git(repo, ['commit', '-q', '--allow-empty', '-m', 'start']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    for (const [i, data] of files.entries()) await fsp.writeFile(path.join(repo, `part-${i}.pt`), data);
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'twelve checkpoints']);
    const before = (await box.git(remote, ['rev-parse', 'main'])).stdout;

    const push = box.run(repo, 'git', ['push', 'origin', 'main']);
    let seen = 0;
    for (let i = 0; i < 500 && seen < 1; i++) {
      await sleep(20);
      seen = await storedCount();
    }
    await server.crash();
    const failed = await push;
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain(`s3://${bucket}/store`);
    expect((await box.git(remote, ['rev-parse', 'main'])).stdout).toBe(before);

    server = await startS3rver({ port: server.port, directory: server.directory });
    expect(await storedCount()).toBeGreaterThanOrEqual(1);
    const partial = await storedCount(true);
    expect(partial).toBeLessThan(files.length);
    const rerun = await box.git(repo, ['push', 'origin', 'main']);
    if (!chunking) {
      // Whole objects: exactly the ones that arrived whole before the crash are skipped; a half one is replaced.
      const m = /stored (\d+) object\(s\).*; (\d+) already there/.exec(rerun.stderr);
      expect(m).not.toBeNull();
      expect(Number(m![1]) + Number(m![2])).toBe(files.length);
      expect(Number(m![2])).toBe(partial);
    } else {
      // Chunks: the packs that arrived are reused, so less than everything is sent again. (How much
      // arrived depends on when the crash lands: objects whose manifests were written before it are
      // already there, the rest reuse the packs that were stored.)
      const summary = /stored (\d+) object\(s\), ([\d.]+ \w+)(?:, ([\d.]+ \w+) new after dedup)? in [^;]*; (\d+) already there/;
      expect(rerun.stderr).toMatch(summary); // on failure jest shows what the re-run said
      const [, stored, storedBytes, newBytes, already] = summary.exec(rerun.stderr)!;
      expect(Number(stored) + Number(already)).toBe(files.length);
      expect(bytesOf(newBytes ?? storedBytes!)).toBeLessThan(96 * 1024 * 1024);
    }
    expect((await box.git(remote, ['rev-parse', 'main'])).stdout).not.toBe(before);

    const clone = box.path('clone');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone]);
    for (const [i, data] of files.entries()) expect(sha256(await fsp.readFile(path.join(clone, `part-${i}.pt`)))).toBe(sha256(data));
  });
});

/** formatBytes's text back to a number ("80.2 MiB"). */
function bytesOf(text: string): number {
  const [value, unit] = text.split(' ');
  return Number(value) * 1024 ** ['B', 'KiB', 'MiB', 'GiB'].indexOf(unit!);
}
