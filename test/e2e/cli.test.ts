import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { storedOids } from '../helpers/store-layout';
import { parsePointer } from '../../src/pointer';
import { cachedObjectPath, makeRepo, randomBytesSeeded, Sandbox, sha256, storeHolds } from '../helpers/sandbox';

describe('CLI commands', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await Sandbox.create();
  });
  afterAll(() => box.cleanup());

  test('help, version and unknown commands', async () => {
    const help = await box.gitml(box.root, ['--help']);
    expect(help.code).toBe(0);
    for (const c of ['install', 'track', 'pull', 'push', 'fsck', 'prune', 'filter-process']) expect(help.stdout).toContain(c);
    expect((await box.gitml(box.root, ['version'])).stdout).toMatch(/^gitml \d+\.\d+\.\d+/);
    const bad = await box.gitml(box.root, ['frobnicate']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('gitml --help');
  });

  test('outside a repository: exit 1 with what to do', async () => {
    const r = await box.gitml(box.root, ['status']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not a git repository/);
    expect(r.stderr).toContain('hint:');
  });

  test('no store configured: the smudge error says how to name one, and exit codes say it is an environment error', async () => {
    const repo = box.path('nostore');
    await box.git(box.root, ['init', '-q', repo]);
    await box.gitml(repo, ['track', '*.pt']);
    await fsp.writeFile(path.join(repo, 'a.pt'), 'bytes\n');
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'a']);
    const r = await box.gitml(repo, ['push', '--all']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no gitml store is configured');
    expect(r.stderr).toContain('git config -f .gitmlconfig gitml.store');
  });

  test('invalid settings are named with their source', async () => {
    const repo = await makeRepo(box, 'badsettings');
    await box.git(repo, ['config', 'gitml.concurrency', 'lots']);
    const r = await box.gitml(repo, ['env']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/gitml.concurrency must be a whole number.*git config/);
    await box.git(repo, ['config', '--unset', 'gitml.concurrency']);
    await box.git(repo, ['config', 'gitml.store', 'ftp://example.com/x']);
    const env = JSON.parse((await box.gitml(repo, ['env', '--json'])).stdout);
    expect(env.store.source).toMatch(/git config/);
    expect(env.store.resolved).toMatch(/invalid.*not supported/);
  });

  test('env --json shows where each setting came from, environment first', async () => {
    const repo = await makeRepo(box, 'envrepo');
    const env = JSON.parse((await box.gitml(repo, ['env', '--json'], { env: { GITML_CONCURRENCY: '3' } })).stdout);
    expect(env.store.source).toBe('.gitmlconfig');
    expect(env.concurrency).toBe(3);
    expect(env.settings['gitml.concurrency'].source).toBe('env GITML_CONCURRENCY');
    expect(env.gitConfig['filter.gitml.process']).toBe('gitml filter-process');
  });

  test('a committed .gitmlconfig cannot move the cache (only shared settings are read from it)', async () => {
    const repo = await makeRepo(box, 'cachedir');
    await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.cachedir', '/tmp/evil']);
    const env = JSON.parse((await box.gitml(repo, ['env', '--json'])).stdout);
    expect(env.cache.path).toBe(path.join(repo, '.git', 'gitml'));
  });

  test('track/untrack edit .gitattributes; --json for scripts', async () => {
    const repo = box.path('trackrepo');
    await box.git(box.root, ['init', '-q', repo]);
    await fsp.writeFile(path.join(repo, '.gitattributes'), '*.txt text\n');
    expect(JSON.parse((await box.gitml(repo, ['track', '*.onnx', 'my data/**', '--json'])).stdout).added).toEqual(['*.onnx', 'my data/**']);
    expect(await fsp.readFile(path.join(repo, '.gitattributes'), 'utf8')).toBe(
      '*.txt text\n*.onnx filter=gitml diff=gitml merge=gitml -text\nmy[[:space:]]data/** filter=gitml diff=gitml merge=gitml -text\n',
    );
    const check = await box.git(repo, ['check-attr', 'filter', '--', 'my data/x.bin']);
    expect(check.stdout.trim()).toBe('my data/x.bin: filter: gitml');
    expect((await box.gitml(repo, ['untrack', '*.onnx'])).stdout).toContain('Untracking "*.onnx"');
    expect(JSON.parse((await box.gitml(repo, ['track', '--json'])).stdout).patterns).toEqual(['my data/**']);
    const neg = await box.gitml(repo, ['track', '!*.pt']);
    expect(neg.code).toBe(1);
  });

  test('install --local and uninstall', async () => {
    const other = await Sandbox.create({ install: false });
    try {
      const repo = other.path('r');
      await other.git(other.root, ['init', '-q', repo]);
      expect((await other.gitml(repo, ['install', '--local'])).code).toBe(0);
      expect((await other.git(repo, ['config', '--local', 'filter.gitml.process'])).stdout.trim()).toBe('gitml filter-process');
      await other.git(repo, ['config', '--local', 'filter.gitml.clean', 'something-else']);
      const conflict = await other.gitml(repo, ['install', '--local']);
      expect(conflict.code).toBe(1);
      expect(conflict.stderr).toContain('--force');
      expect((await other.gitml(repo, ['install', '--local', '--force'])).code).toBe(0);
      expect((await other.gitml(repo, ['uninstall', '--local'])).code).toBe(0);
      expect((await other.run(repo, 'git', ['config', '--local', 'filter.gitml.process'])).code).toBe(1);
    } finally {
      await other.cleanup();
    }
  });

  test('install keeps a foreign hook and runs it after gitml\'s; a plain remote pushes bytes through the pre-push hook', async () => {
    const repo = await makeRepo(box, 'hooked');
    const hook = path.join(repo, '.git/hooks/pre-push');
    await fsp.rm(hook, { force: true });
    await fsp.writeFile(hook, '#!/bin/sh\ncat > /dev/null\necho mine >&2\n', { mode: 0o755 });
    const installed = await box.gitml(repo, ['install']);
    expect(installed.code).toBe(0);
    expect(installed.stdout).toContain('the existing hook runs after it');
    expect(await fsp.readFile(`${hook}.gitml-chained`, 'utf8')).toBe('#!/bin/sh\ncat > /dev/null\necho mine >&2\n');
    expect(await fsp.readFile(hook, 'utf8')).toContain('gitml pre-push');

    const remote = box.path('plain.git');
    await box.git(box.root, ['init', '-q', '--bare', remote]);
    await box.git(repo, ['remote', 'add', 'origin', remote]);
    const data = randomBytesSeeded(100_000, 9);
    await fsp.writeFile(path.join(repo, 'w.pt'), data);
    await box.git(repo, ['add', 'w.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'w']);
    expect(storeHolds(box.path('store'), sha256(data))).toBe(false);
    // A gitml ahead of the real one on PATH notes each command it is started with.
    const shims = box.path('noting-shims');
    const calls = box.path('gitml-calls.txt');
    await fsp.mkdir(shims, { recursive: true });
    await fsp.writeFile(path.join(shims, 'gitml'), `#!/bin/sh\necho "$1" >> '${calls}'\nexec '${box.path('bin', 'gitml')}' "$@"\n`, { mode: 0o755 });
    const noting = { PATH: `${shims}${path.delimiter}${box.env.PATH}` };
    const pushed = await box.run(repo, 'git', ['push', '-q', 'origin', 'main'], { env: noting });
    expect(pushed.code).toBe(0);
    expect(storeHolds(box.path('store'), sha256(data))).toBe(true);
    expect(pushed.stderr).toContain('mine'); // the user's own hook ran too
    expect(await fsp.readFile(calls, 'utf8')).toContain('pre-push');
    // Through a gitml:: remote the helper uploads: the hook runs the user's hook, not `gitml pre-push`.
    await fsp.rm(calls);
    await box.git(box.root, ['init', '-q', '--bare', box.path('helper.git')]);
    const viaHelper = await box.run(repo, 'git', ['push', '-q', `gitml::${box.path('helper.git')}`, 'main'], { env: noting });
    expect(viaHelper.code).toBe(0);
    expect(viaHelper.stderr).toContain('mine');
    expect(await fsp.readFile(calls, 'utf8').catch(() => '')).not.toContain('pre-push');
    // Uninstalling puts the user's hook back as it was.
    await box.ok(repo, 'gitml', ['uninstall', '--local', '--hooks']);
    expect(await fsp.readFile(hook, 'utf8')).toBe('#!/bin/sh\ncat > /dev/null\necho mine >&2\n');
    // A clone through the plain URL still smudges (the store is in .gitmlconfig).
    const clone = box.path('hooked-clone');
    await box.git(box.root, ['clone', '-q', remote, clone]);
    expect(sha256(await fsp.readFile(path.join(clone, 'w.pt')))).toBe(sha256(data));
  });

  test('gitml push / fetch for ordinary remotes, with --json', async () => {
    const repo = await makeRepo(box, 'manual', box.path('manual-store'));
    const remote = box.path('manual.git');
    await box.git(box.root, ['init', '-q', '--bare', remote]);
    await box.git(repo, ['remote', 'add', 'origin', remote]);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    await fsp.writeFile(path.join(repo, 'x.pt'), randomBytesSeeded(64_000, 1));
    await fsp.writeFile(path.join(repo, 'y.pt'), randomBytesSeeded(64_000, 2));
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'xy']);
    const dry = JSON.parse((await box.gitml(repo, ['push', '--dry-run', '--json'])).stdout);
    expect(dry.uploaded).toHaveLength(2);
    expect(storedOids(box.path('manual-store'))).toHaveLength(0);
    const push = JSON.parse((await box.gitml(repo, ['push', 'origin', '--json'])).stdout);
    expect(push).toMatchObject({ pointers: 2, present: 0, bytes: 128_000 });
    expect(storedOids(box.path('manual-store'))).toHaveLength(2);
    expect(JSON.parse((await box.gitml(repo, ['push', '--json'])).stdout)).toMatchObject({ present: 2, uploaded: [] });

    await fsp.rm(path.join(repo, '.git', 'gitml'), { recursive: true });
    const fetch = JSON.parse((await box.gitml(repo, ['fetch', '--json'])).stdout);
    expect(fetch).toMatchObject({ downloaded: 2, bytes: 128_000, failed: [] });
  });

  test('fsck finds a damaged cache object; --fix removes it; prune keeps what refs need and what the store lacks', async () => {
    const repo = await makeRepo(box, 'maint', box.path('maint-store'));
    const keep = randomBytesSeeded(10_000, 1);
    const old = randomBytesSeeded(10_000, 2);
    await fsp.writeFile(path.join(repo, 'm.pt'), old);
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'old']);
    await fsp.writeFile(path.join(repo, 'm.pt'), keep);
    await box.git(repo, ['commit', '-q', '-am', 'new']);
    const cached = (oid: string) => cachedObjectPath(repo, oid);

    // The old version is not needed by any ref tip, but the store does not have it yet: kept.
    let prune = JSON.parse((await box.gitml(repo, ['prune', '--json'])).stdout);
    expect(prune.deleted).toEqual([]);
    expect(prune.notInStore).toEqual([sha256(old)]);
    await box.gitml(repo, ['push', '--all', box.root]);
    prune = JSON.parse((await box.gitml(repo, ['prune', '--dry-run', '--json'])).stdout);
    expect(prune.deleted).toEqual([sha256(old)]);
    expect(fs.existsSync(cached(sha256(old)))).toBe(true);
    prune = JSON.parse((await box.gitml(repo, ['prune', '--json'])).stdout);
    expect(prune.deleted).toEqual([sha256(old)]);
    expect(fs.existsSync(cached(sha256(old)))).toBe(false);
    expect(fs.existsSync(cached(sha256(keep)))).toBe(true);

    await fsp.chmod(cached(sha256(keep)), 0o644);
    await fsp.writeFile(cached(sha256(keep)), Buffer.concat([keep.subarray(0, 100), Buffer.from('X'), keep.subarray(101)]));
    const fsck = await box.gitml(repo, ['fsck', '--json']);
    expect(fsck.code).toBe(2);
    expect(JSON.parse(fsck.stdout).problems).toEqual([expect.objectContaining({ where: 'cache', oid: sha256(keep), problem: 'damaged' })]);
    expect((await box.gitml(repo, ['fsck', '--fix'])).code).toBe(2);
    expect(fs.existsSync(cached(sha256(keep)))).toBe(false);
    expect((await box.gitml(repo, ['fsck'])).code).toBe(0);
  });

  test('merge driver: one-sided pointer changes merge, two-sided ones conflict and keep ours', async () => {
    const repo = await makeRepo(box, 'merging');
    await fsp.writeFile(path.join(repo, 'w.pt'), 'base\n');
    await fsp.writeFile(path.join(repo, 'v.pt'), 'base v\n');
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'base']);
    await box.git(repo, ['checkout', '-q', '-b', 'side']);
    await fsp.writeFile(path.join(repo, 'w.pt'), 'side\n');
    await fsp.writeFile(path.join(repo, 'v.pt'), 'side v\n');
    await box.git(repo, ['commit', '-q', '-am', 'side']);
    await box.git(repo, ['checkout', '-q', 'main']);
    await fsp.writeFile(path.join(repo, 'w.pt'), 'main\n');
    await box.git(repo, ['commit', '-q', '-am', 'main']);
    const merge = await box.run(repo, 'git', ['merge', '--no-edit', 'side']);
    expect(merge.code).toBe(1);
    expect(merge.stdout + merge.stderr).toMatch(/CONFLICT.*w\.pt/);
    expect(await fsp.readFile(path.join(repo, 'v.pt'), 'utf8')).toBe('side v\n');
    expect(await fsp.readFile(path.join(repo, 'w.pt'), 'utf8')).toBe('main\n');
    expect(parsePointer((await box.git(repo, ['cat-file', 'blob', ':2:w.pt'])).stdout)).not.toBeNull();
  });
});
