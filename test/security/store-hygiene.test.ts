import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { makeRepoWithRemote, randomBytesSeeded, Sandbox } from '../helpers/sandbox';
import { securityReport } from './lib';

/** Runs a shell script in a private user and mount namespace (no root needed, nothing left mounted). */
function inNamespace(box: Sandbox, script: string): { stdout: string; stderr: string } {
  const r = spawnSync('unshare', ['-rm', 'sh', '-c', script], { env: box.env, encoding: 'utf8' });
  if (r.error || (/Operation not permitted|cannot/.test(r.stderr) && !/exit=/.test(r.stdout))) {
    throw new Error(`cannot make a private mount namespace here (unshare -rm): ${r.stderr || r.error}`);
  }
  return { stdout: r.stdout, stderr: r.stderr };
}

describe('security: store hygiene and errors that name the real cause', () => {
  // A sandbox per test: each makes its own repository, remote and store.
  let box: Sandbox;
  beforeEach(async () => {
    box = await Sandbox.create();
  });
  afterEach(() => box.cleanup());

  test('temp files of killed pushes are reported by fsck --store and removed by age on the next push', async () => {
    const { repo } = await makeRepoWithRemote(box);
    const tmp = path.join(box.path('store'), 'tmp');
    await fsp.mkdir(tmp, { recursive: true });
    const old = path.join(tmp, '999-dead.tmp');
    const fresh = path.join(tmp, '998-busy.tmp');
    await fsp.writeFile(old, randomBytesSeeded(5000, 1));
    await fsp.writeFile(fresh, randomBytesSeeded(5000, 2));
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    await fsp.utimes(old, twoDaysAgo, twoDaysAgo);
    await fsp.writeFile(path.join(repo, 'a.pt'), randomBytesSeeded(10_000, 3));
    await box.git(repo, ['add', 'a.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'a']);
    const fsck = JSON.parse((await box.gitml(repo, ['fsck', '--store', '--json'])).stdout);
    expect(fsck.staleUploads).toEqual({ files: 1, bytes: 5000 });
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    expect(fs.existsSync(old)).toBe(false);
    expect(fs.existsSync(fresh)).toBe(true);
    securityReport({ case: 'stale temp files in a directory store', cases: 1, passed: 1 });
  });

  test('a read-only store says so (not "ENOENT: mkdir"), and nothing moves', async () => {
    const { repo, remote } = await makeRepoWithRemote(box);
    await fsp.writeFile(path.join(repo, 'ro.pt'), randomBytesSeeded(20_000, 4));
    await box.git(repo, ['add', 'ro.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'ro']);
    const before = (await box.git(remote, ['rev-parse', 'main'])).stdout;
    const store = box.path('store');
    const { stdout, stderr } = inNamespace(box, `mount --bind "${store}" "${store}" && mount -o remount,bind,ro "${store}" && cd "${repo}" && git push origin main; echo "exit=$?"`);
    expect(stdout).toMatch(/exit=[1-9]/);
    expect(stderr).toMatch(/read-only file system \(EROFS\)/);
    expect(stderr).not.toMatch(/ENOENT/);
    expect((await box.git(remote, ['rev-parse', 'main'])).stdout).toBe(before);
    securityReport({ case: 'read-only store directory', cases: 1, passed: 1, notes: 'EROFS named, no ref moved' });
  });

  test('a full cache disk during a push is named as the cache\'s disk, not the store', async () => {
    const { repo, remote } = await makeRepoWithRemote(box);
    const cacheDir = box.path('small-cache');
    await fsp.mkdir(cacheDir);
    await box.git(repo, ['config', 'gitml.cachedir', cacheDir]);
    const before = (await box.git(remote, ['rev-parse', 'main'])).stdout;
    // 2.5 MiB fits in the 4 MiB cache; building its pack for the push needs 2.5 MiB more.
    await fsp.writeFile(path.join(repo, 'big.pt'), randomBytesSeeded(2_600_000, 5));
    const { stdout, stderr } = inNamespace(
      box,
      `mount -t tmpfs -o size=4m tmpfs "${cacheDir}" && cd "${repo}" && git add big.pt && git commit -q -m big && git push origin main; echo "exit=$?"`,
    );
    expect(stdout).toMatch(/exit=[1-9]/);
    expect(stderr).toMatch(/disk holding the gitml cache is full/);
    expect(stderr).not.toMatch(/store's disk is full/);
    expect((await box.git(remote, ['rev-parse', 'main'])).stdout).toBe(before);
    securityReport({ case: 'cache disk full during push', cases: 1, passed: 1, notes: 'the cache disk is named, no ref moved' });
  });
});
