import fsp from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { startS3rver, S3_CREDENTIALS, type S3rverHandle } from '../../scripts/servers';
import { dirBytes } from '../../scripts/machine';
import { listFiles, makeRepoWithRemote, randomBytesSeeded, Sandbox, sha256, storeHolds } from '../helpers/sandbox';
import { createBucket, uniqueName } from '../helpers/stores';

/** A checkpoint series: each version changes a few percent of the previous one. */
function versions(count: number, size: number): Buffer[] {
  const out = [randomBytesSeeded(size, 100)];
  for (let v = 1; v < count; v++) {
    const next = Buffer.from(out[v - 1]!);
    for (let k = 0; k < 3; k++) randomBytesSeeded(20_000, 200 + v * 10 + k).copy(next, Math.floor(((k + 1) * size) / 4) + v * 1000);
    out.push(next);
  }
  return out;
}

describe('gitml gc: store garbage collection', () => {
  let box: Sandbox;
  beforeEach(async () => {
    box = await Sandbox.create();
  });
  afterEach(() => box.cleanup());

  test('after history is rewritten, gc shrinks the store to what the refs reach and a clone still verifies', async () => {
    const { repo, remote } = await makeRepoWithRemote(box);
    const series = versions(4, 4 * 1024 * 1024);
    for (const [i, v] of series.entries()) {
      await fsp.writeFile(path.join(repo, 'model.pt'), v);
      await fsp.writeFile(path.join(repo, `notes-${i}.pt`), randomBytesSeeded(30_000, 1000 + i));
      await box.git(repo, ['add', '.']);
      await box.git(repo, ['commit', '-q', '-m', `v${i + 1}`]);
      await box.git(repo, ['push', '-q', 'origin', 'main']);
    }
    // Only v4 stays reachable: one commit with v4 and its notes, force-pushed.
    await box.git(repo, ['checkout', '-q', '--orphan', 'fresh']);
    for (let i = 0; i < 3; i++) await box.git(repo, ['rm', '-q', '--cached', `notes-${i}.pt`]);
    await box.git(repo, ['commit', '-q', '-m', 'v4 only']);
    await box.git(repo, ['branch', '-q', '-D', 'main']);
    await box.git(repo, ['branch', '-q', '-m', 'main']);
    await box.git(repo, ['push', '-q', '--force', 'origin', 'main']);
    await box.git(repo, ['reflog', 'expire', '--expire=now', '--all']);
    await box.git(repo, ['gc', '-q', '--prune=now']);
    await box.git(remote, ['gc', '-q', '--prune=now']);

    const store = box.path('store');
    const before = (await dirBytes(store)).bytes;
    const dry = JSON.parse((await box.ok(repo, 'gitml', ['gc', '--dry-run', '--grace', '0', '--json'])).stdout);
    expect((await dirBytes(store)).bytes).toBe(before);
    // notes-0..2 (packed) and v1-v3's own chunks go; v4 and notes-3 stay.
    expect(dry.deleted.chunks).toBeGreaterThanOrEqual(3);
    expect(dry.live.objects).toBe(2);
    const notes = [0, 1, 2, 3].map((i) => sha256(randomBytesSeeded(30_000, 1000 + i)));
    expect(notes.map((oid) => storeHolds(store, oid))).toEqual([true, true, true, true]);

    const r = JSON.parse((await box.ok(repo, 'gitml', ['gc', '--grace', '0', '--json'])).stdout);
    expect(r.deleted.chunks).toBe(dry.deleted.chunks);
    expect(notes.map((oid) => storeHolds(store, oid))).toEqual([false, false, false, true]);
    const liveBytes = series[3]!.length + 30_000;
    const after = (await dirBytes(store)).bytes;
    expect(r.storeBytesAfter).toBeLessThan(before);
    // Within 5% of the live bytes, plus the metadata (indexes, manifests, records) of a few KiB.
    expect(after).toBeLessThan(liveBytes * 1.05 + 64 * 1024);
    const clone = box.path('clone');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone]);
    expect(sha256(await fsp.readFile(path.join(clone, 'model.pt')))).toBe(sha256(series[3]!));
    expect((await box.ok(clone, 'gitml', ['fsck', '--store', '--json'])).code).toBe(0);
    process.stderr.write(`gc: store ${before} -> ${after} bytes for ${liveBytes} live bytes (${((after / liveBytes - 1) * 100).toFixed(1)}% over)\n`);
  });

  test('nothing young is deleted, and a repository the store records but gc was not given stops it', async () => {
    const { repo } = await makeRepoWithRemote(box);
    await fsp.writeFile(path.join(repo, 'a.pt'), randomBytesSeeded(40_000, 1));
    await box.git(repo, ['add', 'a.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'a']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    // An object uploaded but never referenced (a push whose ref update failed): young, so kept.
    await fsp.writeFile(path.join(repo, 'orphan.pt'), randomBytesSeeded(40_000, 2));
    await box.git(repo, ['add', 'orphan.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'orphan']);
    await box.ok(repo, 'gitml', ['push', 'origin']);
    await box.git(repo, ['reset', '-q', '--hard', 'HEAD~']);
    await box.git(repo, ['reflog', 'expire', '--expire=now', '--all']);
    await box.git(repo, ['gc', '-q', '--prune=now']);
    const young = JSON.parse((await box.ok(repo, 'gitml', ['gc', '--json'])).stdout);
    expect(young.deleted).toMatchObject({ objects: 0, packs: 0, chunks: 0 });
    expect(young.keptYoung).toBeGreaterThan(0);

    // A second repository pushes to the same store.
    const other = box.path('other');
    const otherRemote = box.path('other.git');
    await box.git(box.root, ['init', '-q', '--bare', otherRemote]);
    await box.git(box.root, ['init', '-q', other]);
    await box.ok(other, 'gitml', ['track', '*.pt']);
    await box.git(other, ['config', '-f', '.gitmlconfig', 'gitml.store', `file://${box.path('store')}`]);
    await fsp.writeFile(path.join(other, 'theirs.pt'), randomBytesSeeded(40_000, 3));
    await box.git(other, ['add', '.']);
    await box.git(other, ['commit', '-q', '-m', 'theirs']);
    await box.git(other, ['remote', 'add', 'origin', `gitml::${otherRemote}`]);
    await box.git(other, ['push', '-q', 'origin', 'main']);
    const refused = await box.gitml(repo, ['gc', '--grace', '0']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(otherRemote);
    expect(refused.stderr).toMatch(/--repo <url>.*--forget <id>/);
    const r = JSON.parse((await box.ok(repo, 'gitml', ['gc', '--grace', '0', '--repo', otherRemote, '--json'])).stdout);
    // The orphan only (its push made a pack of its own).
    expect(r.deleted).toMatchObject({ packs: 1, chunks: 1 });
    const store = box.path('store');
    expect([1, 2, 3].map((seed) => storeHolds(store, sha256(randomBytesSeeded(40_000, seed))))).toEqual([true, false, true]);
    const clone = box.path('other-clone');
    await box.git(box.root, ['clone', '-q', `gitml::${otherRemote}`, clone]);
    expect((await fsp.readFile(path.join(clone, 'theirs.pt'))).equals(randomBytesSeeded(40_000, 3))).toBe(true);
  });

  test('a push refuses to start while gc holds the store, and says so', async () => {
    const { repo } = await makeRepoWithRemote(box);
    const lock = path.join(box.path('store'), 'locks', 'gc-0123456789abcdef.json');
    await fsp.mkdir(path.dirname(lock), { recursive: true });
    const now = new Date().toISOString();
    await fsp.writeFile(lock, JSON.stringify({ kind: 'gc', host: 'other-host', pid: 4242, started: now, refreshed: now }));
    await fsp.writeFile(path.join(repo, 'a.pt'), randomBytesSeeded(40_000, 4));
    await box.git(repo, ['add', 'a.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'a']);
    const push = await box.run(repo, 'git', ['push', 'origin', 'main']);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/being garbage-collected \(gc by pid 4242 on other-host/);
    // A lock not refreshed for long belongs to a process that died: it is ignored.
    const old = new Date(Date.now() - 3600_000).toISOString();
    await fsp.writeFile(lock, JSON.stringify({ kind: 'gc', host: 'other-host', pid: 4242, started: old, refreshed: old }));
    await box.git(repo, ['push', '-q', 'origin', 'main']);
  });
});

/** An HTTP proxy that holds every PUT until opened: a push held mid-upload, on demand. */
async function gate(upstream: string): Promise<{ url: string; held: () => number; open(): void; close(): Promise<void> }> {
  const target = new URL(upstream);
  let isOpen = false;
  const waiting: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const forward = () => {
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (req.method === 'PUT' && !isOpen && !/\/locks\/|\/repos\//.test(req.url ?? '')) {
      req.pause();
      waiting.push(forward);
    } else forward();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held: () => waiting.length,
    open() {
      isOpen = true;
      for (const f of waiting.splice(0)) f();
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('gitml gc and a push held open mid-upload (S3)', () => {
  let box: Sandbox;
  let server: S3rverHandle;
  beforeAll(async () => {
    server = await startS3rver();
    box = await Sandbox.create();
    Object.assign(box.env, S3_CREDENTIALS);
  });
  afterAll(async () => {
    await server.stop();
    await box.cleanup();
  });

  test('gc refuses while the push runs; afterwards it runs and the pushed ref verifies', async () => {
    const bucket = uniqueName('gc');
    await createBucket(bucket, server.endpoint);
    const proxy = await gate(server.endpoint);
    try {
      const remote = box.path('remote.git');
      await box.git(box.root, ['init', '-q', '--bare', remote]);
      const repo = box.path('repo');
      await box.git(box.root, ['init', '-q', repo]);
      await box.ok(repo, 'gitml', ['track', '*.pt']);
      await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.store', `s3://${bucket}/ml`]);
      await box.git(repo, ['config', 'gitml.s3.endpoint', proxy.url]);
      await box.git(repo, ['remote', 'add', 'origin', `gitml::${remote}`]);
      const data = randomBytesSeeded(3_000_000, 9);
      await fsp.writeFile(path.join(repo, 'model.pt'), data);
      await box.git(repo, ['add', '.']);
      await box.git(repo, ['commit', '-q', '-m', 'model']);
      const pushing = box.run(repo, 'git', ['push', 'origin', 'main']);
      while (proxy.held() === 0) await new Promise((r) => setTimeout(r, 50));
      // The push has its lock and is uploading (held): gc must not run now.
      const gcDuring = await box.gitml(repo, ['gc', '--grace', '0']);
      expect(gcDuring.code).not.toBe(0);
      expect(gcDuring.stderr).toMatch(/gitml gc cannot run now: .* is in use \(push by pid \d+/);
      proxy.open();
      expect((await pushing).code).toBe(0);
      const gcAfter = JSON.parse((await box.ok(repo, 'gitml', ['gc', '--grace', '0', '--json'])).stdout);
      expect(gcAfter.missingLive).toEqual([]);
      const clone = box.path('clone');
      await box.git(box.root, ['clone', '-q', '-c', `gitml.s3.endpoint=${server.endpoint}`, `gitml::${remote}`, clone]);
      expect((await fsp.readFile(path.join(clone, 'model.pt'))).equals(data)).toBe(true);
      expect(listFiles(clone).length).toBeGreaterThan(0);
    } finally {
      proxy.open();
      await proxy.close();
    }
  });
});
