import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { cachedObjectsDir, commitWithLostBytes, makeRepo, makeRepoWithRemote, randomBytesSeeded, Sandbox, sha256, storeHolds } from '../helpers/sandbox';

/**
 * Everyday git, as a new user runs it (docs/git-workflows.md has the table, with what git-lfs does).
 * Failure paths run under a hard limit: git must never wait forever on gitml.
 */
const HARD_LIMIT_MS = 120_000; // a hang, not a slow machine: these end in about a second

async function bounded(box: Sandbox, cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stderr: string; stdout: string; hung: boolean }> {
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    box.killAll();
  }, HARD_LIMIT_MS);
  try {
    const r = await box.run(cwd, 'git', args, { env });
    return { ...r, hung };
  } finally {
    clearTimeout(timer);
  }
}

async function cached(box: Sandbox, repo: string): Promise<number> {
  return JSON.parse((await box.ok(repo, 'gitml', ['status', '--json'])).stdout).cache.objects;
}

describe('everyday git: failures end promptly with git\'s usual message', () => {
  let box: Sandbox;
  beforeEach(async () => {
    box = await Sandbox.create();
  });
  afterEach(() => box.cleanup());

  test('clone, fetch, pull, push and ls-remote of a missing or unreachable remote exit non-zero at once', async () => {
    const { repo } = await makeRepoWithRemote(box);
    await box.git(repo, ['remote', 'add', 'gone', `gitml::${box.path('no-such.git')}`]);
    await box.git(repo, ['remote', 'add', 'offline', 'gitml::http://127.0.0.1:9/team/models.git']);
    const cases: [string, string, string[]][] = [
      ['clone of a missing repository', box.root, ['clone', `gitml::${box.path('no-such.git')}`, box.path('x')]],
      ['clone of an unreachable URL', box.root, ['clone', 'gitml::http://127.0.0.1:9/team/models.git', box.path('y')]],
      ['ls-remote of a missing repository', box.root, ['ls-remote', `gitml::${box.path('no-such.git')}`]],
      ['fetch from a missing repository', repo, ['fetch', 'gone']],
      ['pull while offline', repo, ['pull', 'offline', 'main']],
      ['push to an unreachable URL', repo, ['push', 'offline', 'main']],
      ['push to a missing repository', repo, ['push', 'gone', 'main']],
    ];
    for (const [name, cwd, args] of cases) {
      const r = await bounded(box, cwd, args);
      expect({ name, hung: r.hung }).toEqual({ name, hung: false });
      expect({ name, failed: r.code !== 0 }).toEqual({ name, failed: true });
      expect(r.stderr).toMatch(/fatal|error|gitml:/);
    }
  });

  test('a push whose history is damaged (a tree object lost) fails at once, uploads or not, and moves no ref', async () => {
    const { repo, remote } = await makeRepoWithRemote(box);
    const before = (await box.git(remote, ['rev-parse', 'refs/heads/main'])).stdout.trim();
    for (const dir of ['a', 'b']) {
      await fsp.mkdir(path.join(repo, 'data', dir), { recursive: true });
      for (let i = 0; i < 1500; i++) await fsp.writeFile(path.join(repo, 'data', dir, `f${i}.bin`), `${dir}${i} `.repeat(30));
    }
    await box.git(repo, ['add', 'data']);
    await box.git(repo, ['commit', '-q', '-m', 'two folders']);
    const tree = (await box.git(repo, ['rev-parse', 'HEAD:data/b'])).stdout.trim();
    await fsp.rm(path.join(repo, '.git', 'objects', tree.slice(0, 2), tree.slice(2)));
    const r = await bounded(box, repo, ['push', 'origin', 'main']);
    expect(r.hung).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/git rev-list failed .*bad tree object/);
    expect(r.stderr).toContain('git fsck --full');
    expect(r.stderr).not.toMatch(/internal error|TypeError|push after close/);
    expect((await box.git(remote, ['rev-parse', 'refs/heads/main'])).stdout.trim()).toBe(before);
  });

  test('an unreachable store at checkout says it cannot connect (no "mkdir" advice), and ends', async () => {
    const { repo, remote } = await makeRepoWithRemote(box);
    await fsp.writeFile(path.join(repo, 'm.pt'), randomBytesSeeded(20_000, 1));
    await box.git(repo, ['add', 'm.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'm']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    // This machine sees the store through an S3 endpoint nobody answers at.
    const clone = box.path('offline-clone');
    const r = await bounded(box, box.root, ['clone', '-c', 'gitml.store=s3://models/x', '-c', 'gitml.s3.endpoint=http://127.0.0.1:9', `gitml::${remote}`, clone], {
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'y',
    });
    expect(r.hung).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/cannot connect to the store/);
    expect(r.stderr).not.toMatch(/mkdir/);
    // A directory store that is not mounted here: no advice to create it as if it were new.
    const clone2 = box.path('unmounted-clone');
    const r2 = await bounded(box, box.root, ['clone', '-c', `gitml.store=${box.path('nfs-not-mounted')}`, `gitml::${remote}`, clone2]);
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/not mounted on this machine/);
  });
});

describe('everyday git: workflows', () => {
  let box: Sandbox;
  beforeEach(async () => {
    box = await Sandbox.create();
  });
  afterEach(() => box.cleanup());

  test('a teammate who clones the plain URL and pushes with plain git publishes no dangling pointer (the hook came with the clone)', async () => {
    const { repo, remote } = await makeRepoWithRemote(box);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    const mate = box.path('mate');
    await box.git(box.root, ['clone', '-q', remote, mate]); // the URL the hosting service shows
    const model = randomBytesSeeded(80_000, 2);
    await fsp.writeFile(path.join(mate, 'model.pt'), model);
    await box.git(mate, ['add', 'model.pt']);
    // gitml's filter ran in this clone for the first time: the clone now has its hooks.
    expect(fs.readFileSync(path.join(mate, '.git/hooks/pre-push'), 'utf8')).toContain('gitml pre-push');
    await box.git(mate, ['commit', '-q', '-m', 'model']);
    await box.git(mate, ['push', '-q', 'origin', 'main']);
    expect(storeHolds(box.path('store'), sha256(model))).toBe(true);
    const fresh = box.path('fresh');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, fresh]);
    expect(sha256(await fsp.readFile(path.join(fresh, 'model.pt')))).toBe(sha256(model));
    // Through gitml:: the hook steps aside: one upload, not two.
    await fsp.writeFile(path.join(repo, 'again.pt'), randomBytesSeeded(80_000, 3));
    await box.git(repo, ['add', 'again.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'again']);
    await box.git(repo, ['pull', '-q', '--rebase', 'origin', 'main']);
    const push = await box.git(repo, ['push', 'origin', 'main']);
    expect(push.stderr.match(/gitml: stored/g)?.length).toBe(1);
  });

  test('a push of more pointers than the scan reads at once stores every one; a ref with a lost object is refused alone', async () => {
    const { repo, remote } = await makeRepoWithRemote(box);
    // 3,000 pointers: more than the push's scan keeps in flight (1,024), so it pauses and resumes
    // while the upload runs beside it.
    const count = 3000;
    await fsp.mkdir(path.join(repo, 'data'), { recursive: true });
    for (let i = 0; i < count; i++) await fsp.writeFile(path.join(repo, 'data', `f${i}.bin`), `${i} `.repeat(40 + (i % 7)));
    await box.git(repo, ['add', 'data']);
    await box.git(repo, ['commit', '-q', '-m', 'many']);
    // A second branch whose new file's bytes are gone from the cache.
    await box.git(repo, ['checkout', '-q', '-b', 'broken']);
    await commitWithLostBytes(box, repo, 'lost.pt', randomBytesSeeded(5_000, 77));
    const push = await box.run(repo, 'git', ['push', 'origin', 'main', 'broken']);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/broken.*'lost\.pt'|'lost\.pt'[\s\S]*broken/);
    const refs = (await box.git(remote, ['for-each-ref', '--format=%(refname)'])).stdout;
    expect(refs).toContain('refs/heads/main');
    expect(refs).not.toContain('refs/heads/broken');
    // Every file of main comes back from the store in a clone (its cache is its own).
    const clone = box.path('clone');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone]);
    for (let i = 0; i < count; i++) {
      expect(await fsp.readFile(path.join(clone, 'data', `f${i}.bin`), 'utf8')).toBe(`${i} `.repeat(40 + (i % 7)));
    }
  });

  // Through the remote helper, and through the pre-push hook for a remote not written gitml::.
  test.each([
    ['through gitml::', false],
    ['to a plain remote (the pre-push hook uploads)', true],
  ])('a push of many loose objects %s packs them beside the upload; the remote gets every one', async (_how, plain) => {
    const { repo, remote } = await makeRepoWithRemote(box);
    if (plain) await box.git(repo, ['remote', 'add', 'plain', remote]);
    // The remote has a commit this clone never fetched: the packing must skip that tip, not fail on it.
    const other = box.path('other');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, other]);
    await box.git(other, ['checkout', '-q', '-b', 'elsewhere']);
    await fsp.writeFile(path.join(other, 'elsewhere.pt'), randomBytesSeeded(3_000, 5));
    await box.git(other, ['add', 'elsewhere.pt']);
    await box.git(other, ['commit', '-q', '-m', 'elsewhere']);
    await box.git(other, ['push', '-q', 'origin', 'elsewhere']);
    // 1,500 pointer blobs, loose as a commit leaves them (1,000 loose objects is where packing starts).
    await fsp.mkdir(path.join(repo, 'data'), { recursive: true });
    for (let i = 0; i < 1500; i++) await fsp.writeFile(path.join(repo, 'data', `f${i}.bin`), `${i} `.repeat(30));
    await box.git(repo, ['add', 'data']);
    await box.git(repo, ['commit', '-q', '-m', 'many']);
    const inPack = async () => Number(/^in-pack: (\d+)$/m.exec((await box.git(repo, ['count-objects', '-v'])).stdout)![1]);
    expect(await inPack()).toBe(0);
    const push = await box.run(repo, 'git', ['push', plain ? 'plain' : 'origin', 'main']);
    expect(push.code).toBe(0);
    if (plain) expect(push.stderr).toMatch(/gitml: stored 1500 object/);
    // What this push sent is in a pack of the repository now (1,500 blobs, their trees, the commit).
    expect(await inPack()).toBeGreaterThan(1500);
    await box.git(repo, ['fsck', '--no-progress']);
    await box.git(remote, ['fsck', '--no-progress']);
    expect((await box.git(remote, ['rev-parse', 'main'])).stdout).toBe((await box.git(repo, ['rev-parse', 'main'])).stdout);
    const clone = box.path('clone-many');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone]);
    for (const i of [0, 749, 1499]) expect(await fsp.readFile(path.join(clone, 'data', `f${i}.bin`), 'utf8')).toBe(`${i} `.repeat(30));
  });

  test('a push with few loose objects leaves them as they are', async () => {
    const { repo } = await makeRepoWithRemote(box);
    await fsp.writeFile(path.join(repo, 'one.pt'), randomBytesSeeded(2_000, 6));
    await box.git(repo, ['add', 'one.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'one']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    expect((await box.git(repo, ['count-objects', '-v'])).stdout).toMatch(/^in-pack: 0$/m);
  });

  test('--force-with-lease, --atomic and --push-option go through to the real push', async () => {
    const { repo, remote } = await makeRepoWithRemote(box);
    await box.git(remote, ['config', 'receive.advertisePushOptions', 'true']);
    await fsp.writeFile(path.join(remote, 'hooks', 'post-receive'), '#!/bin/sh\necho "option: $GIT_PUSH_OPTION_0" >&2\n', { mode: 0o755 });
    await fsp.writeFile(path.join(repo, 'a.pt'), 'one\n');
    await box.git(repo, ['add', 'a.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'one']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    const before = (await box.git(repo, ['rev-parse', 'main'])).stdout.trim();
    await box.git(repo, ['commit', '-q', '--amend', '-m', 'one, amended']);
    const lease = await box.run(repo, 'git', ['push', '--force-with-lease', 'origin', 'main']);
    expect(lease.code).toBe(0);
    expect((await box.git(remote, ['rev-parse', 'main'])).stdout.trim()).not.toBe(before);
    // A stale lease is refused.
    await box.git(repo, ['commit', '-q', '--amend', '-m', 'again']);
    const stale = await box.run(repo, 'git', ['push', `--force-with-lease=main:${before}`, 'origin', 'main']);
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toMatch(/stale info|rejected/);
    const opts = await box.run(repo, 'git', ['push', '--atomic', '-o', 'ci.skip', '--force', 'origin', 'main', 'main:refs/heads/copy']);
    expect(opts.code).toBe(0);
    expect(opts.stderr).toContain('option: ci.skip');
    expect((await box.git(remote, ['rev-parse', 'copy'])).stdout).toBe((await box.git(repo, ['rev-parse', 'main'])).stdout);
  });

  test('GITML_SKIP_SMUDGE=1 git clone downloads nothing; gitml pull -I downloads only what it names', async () => {
    const { repo, remote } = await makeRepoWithRemote(box);
    await fsp.mkdir(path.join(repo, 'data'));
    await fsp.writeFile(path.join(repo, 'data', 'train.bin'), randomBytesSeeded(90_000, 4));
    await fsp.writeFile(path.join(repo, 'model.pt'), randomBytesSeeded(90_000, 5));
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'data and model']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    const lazy = box.path('lazy');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, lazy], { env: { GITML_SKIP_SMUDGE: '1' } });
    expect(await cached(box, lazy)).toBe(0);
    await box.ok(lazy, 'gitml', ['pull', '-I', 'data/**']);
    expect(await cached(box, lazy)).toBe(1);
    expect((await fsp.stat(path.join(lazy, 'data', 'train.bin'))).size).toBe(90_000);
    expect((await fsp.stat(path.join(lazy, 'model.pt'))).size).toBeLessThan(200);
  });

  test('fetch and clone download only what the checkout that follows needs', async () => {
    const { repo, remote } = await makeRepoWithRemote(box);
    await fsp.writeFile(path.join(repo, 'model.pt'), randomBytesSeeded(50_000, 10));
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'main model']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    for (const b of ['exp-a', 'exp-b', 'exp-c']) {
      await box.git(repo, ['checkout', '-q', '-b', b, 'main']);
      await fsp.writeFile(path.join(repo, 'model.pt'), randomBytesSeeded(50_000, b.charCodeAt(4)));
      await box.git(repo, ['commit', '-q', '-am', b]);
    }
    await box.git(repo, ['checkout', '-q', 'main']);
    await box.git(repo, ['push', '-q', 'origin', 'exp-a']);
    const clone = box.path('clone');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone]);
    expect(await cached(box, clone)).toBe(1); // main's model only, not exp-a's
    await box.git(repo, ['push', '-q', 'origin', 'exp-b', 'exp-c']);
    await box.git(clone, ['fetch', '-q', 'origin']);
    expect(await cached(box, clone)).toBe(1); // three experiment branches fetched, no model downloaded
    // The upstream of the current branch is what a pull merges next: that one comes.
    await fsp.writeFile(path.join(repo, 'model.pt'), randomBytesSeeded(50_000, 1099));
    await box.git(repo, ['commit', '-q', '-am', 'main v2']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    await box.git(clone, ['fetch', '-q', 'origin']);
    expect(await cached(box, clone)).toBe(2);
    // Offline work: gitml fetch --all, or gitml.fetch=tips.
    await box.ok(clone, 'gitml', ['fetch', '--all']);
    expect(await cached(box, clone)).toBe(2); // local refs only: main's two versions
    const tips = box.path('tips');
    await box.git(box.root, ['clone', '-q', '-c', 'gitml.fetch=tips', `gitml::${remote}`, tips]);
    expect(await cached(box, tips)).toBe(4);
    // -b exp-b: only exp-b's model; --no-checkout and --mirror: nothing.
    const branch = box.path('branch');
    await box.git(box.root, ['clone', '-q', '-b', 'exp-b', `gitml::${remote}`, branch]);
    expect(await cached(box, branch)).toBe(1);
    expect(sha256(await fsp.readFile(path.join(branch, 'model.pt')))).toBe(sha256(randomBytesSeeded(50_000, 'exp-b'.charCodeAt(4))));
    const none = box.path('none');
    await box.git(box.root, ['clone', '-q', '--no-checkout', `gitml::${remote}`, none]);
    expect(fs.existsSync(cachedObjectsDir(path.join(none, '.git')))).toBe(false);
    const mirror = box.path('mirror.git');
    await box.git(box.root, ['clone', '-q', '--mirror', `gitml::${remote}`, mirror]);
    expect(fs.existsSync(cachedObjectsDir(mirror))).toBe(false);
  });

  test('sparse checkout downloads only the cone, and widening it downloads what it adds', async () => {
    const { repo, remote } = await makeRepoWithRemote(box);
    for (const dir of ['a', 'b']) {
      await fsp.mkdir(path.join(repo, dir));
      await fsp.writeFile(path.join(repo, dir, 'w.pt'), randomBytesSeeded(60_000, dir.charCodeAt(0)));
    }
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'a and b']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    const clone = box.path('sparse');
    await box.git(box.root, ['clone', '-q', '--sparse', `gitml::${remote}`, clone]);
    await box.git(clone, ['sparse-checkout', 'set', 'a']);
    expect(await cached(box, clone)).toBe(1);
    expect(fs.existsSync(path.join(clone, 'b'))).toBe(false);
    await box.git(clone, ['sparse-checkout', 'add', 'b']);
    expect(await cached(box, clone)).toBe(2);
    expect(sha256(await fsp.readFile(path.join(clone, 'b', 'w.pt')))).toBe(sha256(randomBytesSeeded(60_000, 'b'.charCodeAt(0))));
  });

  test('a partial clone (--filter=blob:none) stays partial and still checks out through gitml', async () => {
    const { repo, remote } = await makeRepoWithRemote(box);
    await box.git(remote, ['config', 'uploadpack.allowFilter', 'true']);
    await box.git(remote, ['config', 'uploadpack.allowAnySHA1InWant', 'true']);
    const data = randomBytesSeeded(70_000, 7);
    await fsp.writeFile(path.join(repo, 'w.pt'), data);
    await fsp.writeFile(path.join(repo, 'old.txt'), 'history only\n');
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'w']);
    await box.git(repo, ['rm', '-q', 'old.txt']);
    await box.git(repo, ['commit', '-q', '-m', 'drop old']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    const clone = box.path('partial');
    await box.git(box.root, ['clone', '-q', '--filter=blob:none', `gitml::${remote}`, clone]);
    expect(sha256(await fsp.readFile(path.join(clone, 'w.pt')))).toBe(sha256(data));
    expect((await box.git(clone, ['config', 'remote.origin.promisor'])).stdout.trim()).toBe('true');
    const packs = fs.readdirSync(path.join(clone, '.git', 'objects', 'pack'));
    expect(packs.some((p) => p.endsWith('.promisor'))).toBe(true);
    // The blob only history had was never fetched.
    const oldBlob = (await box.git(repo, ['rev-parse', 'HEAD~1:old.txt'])).stdout.trim();
    const missing = await box.run(clone, 'git', ['cat-file', '-e', oldBlob], { env: { GIT_NO_LAZY_FETCH: '1' } });
    const listed = (await box.git(clone, ['rev-list', '--objects', '--all', '--missing=print'])).stdout;
    expect(listed).toContain(`?${oldBlob}`);
    expect(missing.code).not.toBe(0);
  });

  test('a submodule with a gitml:: URL works once gitml is installed', async () => {
    const { remote: sub } = await makeRepoWithRemote(box);
    const top = box.path('top');
    await box.git(box.root, ['init', '-q', top]);
    // git allows local paths (file://) in submodules only when the user says so, gitml:: or not;
    // over https nothing is needed but gitml install's protocol.gitml.allow.
    await box.git(top, ['-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', `gitml::${sub}`, 'models']);
    await box.git(top, ['commit', '-q', '-m', 'sub']);
    const clone = box.path('top-clone');
    await box.git(box.root, ['-c', 'protocol.file.allow=always', 'clone', '-q', '--recurse-submodules', top, clone]);
    expect(fs.existsSync(path.join(clone, 'models', '.gitmlconfig'))).toBe(true);
  });

  test('direct checkout leaves the index as plain git does after restore --source and stash pop', async () => {
    const repo = await makeRepo(box);
    await box.git(repo, ['config', 'gitml.directcheckout', 'true']);
    const big = (seed: number) => randomBytesSeeded(33 * 1024 * 1024, seed);
    await fsp.writeFile(path.join(repo, 'big.pt'), big(1));
    await box.git(repo, ['add', 'big.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'v1']);
    await fsp.writeFile(path.join(repo, 'big.pt'), big(2));
    await box.git(repo, ['commit', '-q', '-am', 'v2']);
    await box.git(repo, ['restore', '--source=HEAD~1', 'big.pt']);
    expect(sha256(await fsp.readFile(path.join(repo, 'big.pt')))).toBe(sha256(big(1)));
    expect((await box.git(repo, ['status', '--porcelain'])).stdout).toBe(' M big.pt\n');
    await box.git(repo, ['stash', '-q']);
    expect((await box.git(repo, ['status', '--porcelain'])).stdout).toBe('');
    await box.git(repo, ['stash', 'pop', '-q']);
    expect((await box.git(repo, ['status', '--porcelain'])).stdout).toBe(' M big.pt\n');
    expect((await box.git(repo, ['diff', '--cached', '--name-only'])).stdout).toBe('');
  });
});
