import { spawnSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ObjectCache } from '../../src/cache';
import { listFiles, makeRepo, randomBytesSeeded, Sandbox, sha256 } from '../helpers/sandbox';
import { checkRemote, report } from './lib';

describe('reliability: things at once, and a full disk', () => {
  test('two clones push overlapping content to one store and remote at the same time', async () => {
    const box = await Sandbox.create();
    try {
      const a = await makeRepo(box, 'a');
      const remote = box.path('remote.git');
      await box.git(box.root, ['init', '-q', '--bare', remote]);
      await box.git(a, ['remote', 'add', 'origin', `gitml::${remote}`]);
      await box.git(a, ['push', '-q', 'origin', 'main']);
      const b = box.path('b');
      await box.git(box.root, ['clone', '-q', `gitml::${remote}`, b]);
      const shared = Array.from({ length: 6 }, (_, i) => randomBytesSeeded(150_000, 10 + i));
      const bigShared = randomBytesSeeded(2_500_000, 30);
      for (const [dir, own] of [[a, 1], [b, 2]] as const) {
        await box.git(dir, ['checkout', '-q', '-b', `work-${own}`]);
        for (const [i, d] of shared.entries()) await fsp.writeFile(path.join(dir, `shared-${i}.pt`), d);
        await fsp.writeFile(path.join(dir, 'big.pt'), Buffer.concat([bigShared, randomBytesSeeded(200_000, own)]));
        await fsp.writeFile(path.join(dir, `own-${own}.pt`), randomBytesSeeded(300_000, 100 + own));
        await box.git(dir, ['add', '.']);
        await box.git(dir, ['commit', '-q', '-m', `work ${own}`]);
      }
      const [ra, rb] = await Promise.all([box.run(a, 'git', ['push', 'origin', 'work-1']), box.run(b, 'git', ['push', 'origin', 'work-2'])]);
      expect([ra.code, rb.code]).toEqual([0, 0]);
      const check = await checkRemote(remote, `file://${box.path('store')}`, box.env);
      expect(check.dangling).toEqual([]);
      report({ fault: 'two clones pushing overlapping content at once', cases: 2, passed: ra.code === 0 && rb.code === 0 ? 2 : 0, bytesLost: 0, danglingPointers: check.dangling.length, secretsLeaked: 0 });
    } finally {
      await box.cleanup();
    }
  });

  test('two git adds sharing one cache directory at once', async () => {
    const box = await Sandbox.create();
    try {
      const shared = box.path('shared-cache');
      await box.git(box.root, ['config', '--global', 'gitml.cachedir', shared]);
      const r1 = await makeRepo(box, 'r1');
      const r2 = await makeRepo(box, 'r2');
      const common = Array.from({ length: 8 }, (_, i) => randomBytesSeeded(400_000, 1000 + i));
      for (const dir of [r1, r2]) for (const [i, d] of common.entries()) await fsp.writeFile(path.join(dir, `f${i}.pt`), d);
      await fsp.writeFile(path.join(r1, 'only1.pt'), randomBytesSeeded(500_000, 91));
      await fsp.writeFile(path.join(r2, 'only2.pt'), randomBytesSeeded(500_000, 92));
      const [x, y] = await Promise.all([box.run(r1, 'git', ['add', '.']), box.run(r2, 'git', ['add', '.'])]);
      expect([x.code, y.code]).toEqual([0, 0]);
      const cache = new ObjectCache(shared);
      let objects = 0;
      for await (const o of cache.list()) {
        objects++;
        expect(sha256(await fsp.readFile(o.path))).toBe(o.oid);
      }
      expect(objects).toBe(10);
      expect(listFiles(cache.tmpDir)).toEqual([]);
      report({ fault: 'two git adds sharing one cache directory at once', cases: 2, passed: 2, bytesLost: 0, danglingPointers: 0, secretsLeaked: 0 });
    } finally {
      await box.cleanup();
    }
  });

  test('the cache disk is full: a clear error, nothing half-written, nothing staged', async () => {
    const box = await Sandbox.create();
    try {
      const repo = await makeRepo(box);
      const cacheDir = box.path('small-disk');
      await fsp.mkdir(cacheDir);
      await box.git(repo, ['config', 'gitml.cachedir', cacheDir]);
      await fsp.writeFile(path.join(repo, 'fits.pt'), randomBytesSeeded(1_000_000, 1));
      await fsp.writeFile(path.join(repo, 'too-big.pt'), randomBytesSeeded(6_000_000, 2));
      // A 4 MiB tmpfs, mounted in a private mount namespace (no root needed, nothing left mounted).
      const script = `mount -t tmpfs -o size=4m tmpfs "${cacheDir}" && cd "${repo}" && git add fits.pt && git add too-big.pt; echo "exit=$?"; ls -A "${cacheDir}/tmp" | wc -l`;
      const r = spawnSync('unshare', ['-rm', 'sh', '-c', script], { env: box.env, encoding: 'utf8' });
      if (r.error || /Operation not permitted|cannot/.test(r.stderr) && !/exit=/.test(r.stdout)) {
        throw new Error(`cannot make a small filesystem here (unshare -rm + tmpfs): ${r.stderr || r.error}`);
      }
      expect(r.stdout).toMatch(/exit=[1-9]/);
      expect(r.stderr).toContain("cannot add 'too-big.pt'");
      expect(r.stderr).toMatch(/disk holding the gitml cache is full/);
      // No temp file left behind on the full disk.
      expect(r.stdout.trim().split('\n').pop()).toBe('0');
      const staged = (await box.git(repo, ['diff', '--cached', '--name-only'])).stdout.split('\n').filter(Boolean);
      expect(staged).toEqual(['fits.pt']);
      report({ fault: 'cache disk full (4 MiB tmpfs)', cases: 1, passed: 1, bytesLost: 0, danglingPointers: 0, secretsLeaked: 0 });
    } finally {
      await box.cleanup();
    }
  });
});
