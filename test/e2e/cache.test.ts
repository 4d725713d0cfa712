import fsp from 'node:fs/promises';
import path from 'node:path';
import { cachedObjectPath, makeRepoWithRemote, randomBytesSeeded, Sandbox, sha256 } from '../helpers/sandbox';

async function cacheBytes(box: Sandbox, repo: string): Promise<{ objects: number; bytes: number }> {
  const status = JSON.parse((await box.ok(repo, 'gitml', ['status', '--json'])).stdout);
  return { objects: status.cache.objects, bytes: status.cache.bytes };
}

/** A repository with a remote and one committed model.pt of `size` random bytes, and its cached copy. */
async function committedModel(box: Sandbox, size: number, seed: number) {
  const { repo, remote } = await makeRepoWithRemote(box);
  const data = randomBytesSeeded(size, seed);
  await fsp.writeFile(path.join(repo, 'model.pt'), data);
  await box.git(repo, ['add', 'model.pt']);
  await box.git(repo, ['commit', '-q', '-m', 'model']);
  const oid = sha256(data);
  const cached = cachedObjectPath(repo, oid);
  return { repo, remote, data, oid, cached };
}

/** A repository with a remote, and three files `<prefix>0.pt`..`<prefix>2.pt` of `size` random bytes committed and pushed. */
async function pushedThree(box: Sandbox, prefix: string, size: number, seed: number) {
  const { repo, remote } = await makeRepoWithRemote(box);
  const files = [0, 1, 2].map((i) => randomBytesSeeded(size, seed + i));
  for (const [i, data] of files.entries()) await fsp.writeFile(path.join(repo, `${prefix}${i}.pt`), data);
  await box.git(repo, ['add', '.']);
  await box.git(repo, ['commit', '-q', '-m', `three files of ${size} bytes`]);
  await box.git(repo, ['push', '-q', 'origin', 'main']);
  return { repo, remote, files };
}

describe('the local cache: prune and a size limit', () => {
  let box: Sandbox;
  beforeEach(async () => {
    box = await Sandbox.create();
  });
  afterEach(() => box.cleanup());

  test('prune frees pushed objects of 1 MiB and more (stored chunked) once nothing needs them', async () => {
    const { repo } = await makeRepoWithRemote(box);
    const big = randomBytesSeeded(2_000_000, 1);
    await fsp.writeFile(path.join(repo, 'big.pt'), big);
    await box.git(repo, ['add', 'big.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'big']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    await box.git(repo, ['rm', '-q', 'big.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'gone']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    // Still reachable from history, but from no branch tip, tag tip, remote tip, HEAD or the index.
    const r = JSON.parse((await box.ok(repo, 'gitml', ['prune', '--json'])).stdout);
    expect(r.deleted).toEqual([sha256(big)]);
    expect(r.bytes).toBe(2_000_000);
    expect(r.notInStore).toEqual([]);
    expect((await cacheBytes(box, repo)).objects).toBe(0);
  });

  test('gitml.cache.maxsize keeps the cache under its limit, least recently used first, never evicting what is not pushed', async () => {
    const { remote, files } = await pushedThree(box, 'm', 1_500_000, 10);

    // A clone with a 3.2 MB limit: checkout needs 4.5 MB in its cache, then the filter trims it.
    const clone = box.path('limited');
    await box.git(box.root, ['clone', '-q', '-c', 'gitml.cache.maxsize=3200000', `gitml::${remote}`, clone]);
    const after = await cacheBytes(box, clone);
    expect(after.bytes).toBeLessThanOrEqual(3_200_000);
    expect(after.objects).toBe(2);
    for (const [i, data] of files.entries()) expect((await fsp.readFile(path.join(clone, `m${i}.pt`))).equals(data)).toBe(true);
    expect((await box.git(clone, ['status', '--porcelain'])).stdout).toBe('');

    // New work is never evicted, even over the limit: the store does not have it yet.
    for (let i = 0; i < 3; i++) await fsp.writeFile(path.join(clone, `new${i}.pt`), randomBytesSeeded(1_500_000, 20 + i));
    const add = await box.run(clone, 'git', ['add', 'new0.pt', 'new1.pt', 'new2.pt']);
    expect(add.code).toBe(0);
    expect(add.stderr).toMatch(/over gitml.cache.maxsize; the rest is not in the store yet/);
    await box.git(clone, ['commit', '-q', '-m', 'new work']);
    const cached = JSON.parse((await box.ok(clone, 'gitml', ['ls-files', '--json'])).stdout).files as { path: string; cached: boolean }[];
    expect(cached.filter((f) => f.path.startsWith('new')).every((f) => f.cached)).toBe(true);
    // Once pushed, prune brings it under the limit again.
    await box.git(clone, ['push', '-q', 'origin', 'main']);
    const pruned = JSON.parse((await box.ok(clone, 'gitml', ['prune', '--json'])).stdout);
    expect(pruned.evicted.stillOver).toBe(0);
    expect((await cacheBytes(box, clone)).bytes).toBeLessThanOrEqual(3_200_000);
  });

  test('git status comparing a racily clean file stores nothing, so it never trims the cache (nor asks the store)', async () => {
    const { remote } = await pushedThree(box, 's', 500_000, 30);
    const clone = box.path('racy');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone]);
    expect((await cacheBytes(box, clone)).objects).toBe(3);
    // The index dated as s0.pt: its entry is racily clean, and git sends the file through the filter.
    const st = await fsp.stat(path.join(clone, 's0.pt'));
    await fsp.utimes(path.join(clone, '.git/index'), st.atime, st.mtime);
    // With a limit under what the cache holds, a filter that stored bytes would now evict pushed objects.
    const status = await box.run(clone, 'git', ['-c', 'gitml.cache.maxsize=600000', 'status', '--porcelain']);
    expect(status.code).toBe(0);
    expect(status.stdout).toBe('');
    expect((await cacheBytes(box, clone)).objects).toBe(3);
  });

  // Small (packed), chunked, and large enough to be re-checked on another thread while it is chunked.
  test.each([
    ['a small object', 100_000],
    ['a chunked object', 2_000_000],
    ['a large object (checked beside the chunking)', 70 * 1024 * 1024],
  ])('a damaged cached copy of %s is never published: push fails, names it, moves no ref', async (_what, size) => {
    const { repo, remote, oid, cached } = await committedModel(box, size, 77);
    const before = (await box.git(remote, ['rev-parse', 'main'])).stdout.trim();
    const handle = await fsp.open(cached, 'r+');
    try {
      const b = Buffer.alloc(1);
      await handle.read(b, 0, 1, Math.floor(size / 2));
      b[0] = b[0]! ^ 0xff;
      await handle.write(b, 0, 1, Math.floor(size / 2));
    } finally {
      await handle.close();
    }
    const push = await box.run(repo, 'git', ['push', '-q', 'origin', 'main']);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(new RegExp(`cached copy of 'model.pt' \\(sha256:${oid.slice(0, 12)}\\) is damaged`));
    expect((await box.git(remote, ['rev-parse', 'main'])).stdout.trim()).toBe(before);
  });

  // Small ones are read whole and checked before git gets any byte; larger ones are streamed and
  // checked at their end, and git is told to discard what it received.
  test.each([
    ['a small object', 100_000],
    ['an object streamed to git', 3_000_000],
  ])('a damaged cached copy of %s is never checked out: the checkout fails, names it, and the copy leaves the cache', async (_what, size) => {
    const { repo, data, oid, cached } = await committedModel(box, size, 78);
    const damaged = Buffer.from(data);
    damaged[size >> 1] = damaged[size >> 1]! ^ 0xff;
    await fsp.writeFile(cached, damaged);
    await fsp.rm(path.join(repo, 'model.pt'));
    const checkout = await box.run(repo, 'git', ['checkout', '--', 'model.pt']);
    expect(checkout.code).not.toBe(0);
    expect(checkout.stderr).toMatch(new RegExp(`cannot check out 'model.pt' \\(sha256:${oid.slice(0, 12)}.*damaged`));
    const inTree = await fsp.readFile(path.join(repo, 'model.pt')).catch(() => null);
    expect(inTree === null || !inTree.equals(damaged)).toBe(true);
    await expect(fsp.stat(cached)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('a cache written by an earlier gitml (objects/<aa>/<bb>/<oid>)', () => {
  let box: Sandbox;
  beforeEach(async () => {
    box = await Sandbox.create();
  });
  afterEach(() => box.cleanup());

  test('what was added and not pushed before the upgrade is pushed whole, and status still counts it', async () => {
    const { repo, remote, data, oid, cached } = await committedModel(box, 300_000, 41);
    const small = randomBytesSeeded(2_000, 42);
    await fsp.mkdir(path.join(repo, 'data'));
    await fsp.writeFile(path.join(repo, 'data', 'labels.txt'), small);
    await box.git(repo, ['add', 'data/labels.txt']);
    await box.git(repo, ['commit', '-q', '-m', 'labels']);
    // Move both cached objects where the first layout kept them, as an upgrade finds them.
    const gitmlDir = path.join(repo, '.git', 'gitml');
    for (const o of [oid, sha256(small)]) {
      const legacy = path.join(gitmlDir, 'objects', o.slice(0, 2), o.slice(2, 4), o);
      await fsp.mkdir(path.dirname(legacy), { recursive: true });
      await fsp.rename(cachedObjectPath(repo, o), legacy);
    }
    await fsp.rm(path.dirname(path.dirname(cached)), { recursive: true });
    expect(await cacheBytes(box, repo)).toEqual({ objects: 2, bytes: 302_000 });
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    const clone = box.path('clone');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone]);
    expect(await fsp.readFile(path.join(clone, 'model.pt'))).toEqual(data);
    expect(await fsp.readFile(path.join(clone, 'data', 'labels.txt'))).toEqual(small);
    // The push read them from the first layout and moved them into the current one.
    expect(await fsp.readFile(cached)).toEqual(data);
    await expect(fsp.stat(path.join(gitmlDir, 'objects', oid.slice(0, 2), oid.slice(2, 4), oid))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
