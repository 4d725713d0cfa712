import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { storedAt } from '../helpers/store-layout';
import { parsePointer } from '../../src/pointer';
import { cachedObjectPath, commitWithLostBytes, makeRepoWithRemote, randomBytesSeeded, Sandbox, sha256 } from '../helpers/sandbox';

/** The user story, exactly, with the real git: install, track, commit, push, clone elsewhere. */
describe('user story: version a large file with plain git, get it back on another machine', () => {
  let box: Sandbox;
  let other: Sandbox;
  beforeAll(async () => {
    box = await Sandbox.create();
    other = await Sandbox.create();
  });
  afterAll(async () => {
    await box.cleanup();
    await other.cleanup();
  });

  test('install writes the filter configuration to the global git config', async () => {
    const config = await fsp.readFile(box.path('home', '.gitconfig'), 'utf8');
    expect(config).toContain('process = gitml filter-process');
    expect(config).toContain('required = true');
    const again = await box.gitml(box.root, ['install']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already up to date');
  });

  test('add, commit, push through gitml::, clone with a fresh HOME: byte-identical', async () => {
    const store = box.path('store');
    await fsp.mkdir(store);
    const remote = box.path('remote.git');
    await box.git(box.root, ['init', '-q', '--bare', remote]);
    const repo = box.path('my-ml-repo');
    await box.git(box.root, ['init', '-q', repo]);
    const track = await box.gitml(repo, ['track', '*.pt', 'data/**']);
    expect(track.code).toBe(0);
    expect(track.stdout).toContain('Tracking "*.pt"');
    await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.store', `file://${store}`]);
    const model = randomBytesSeeded(3 * 1024 * 1024 + 17, 42);
    await fsp.writeFile(path.join(repo, 'model.pt'), model);
    await fsp.mkdir(path.join(repo, 'data'));
    await fsp.writeFile(path.join(repo, 'data', 'train.csv'), 'a,b\n1,2\n');
    await fsp.writeFile(path.join(repo, 'README.md'), 'not tracked\n');
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'model v1']);

    // git stores pointers, not bytes.
    const blob = (await box.git(repo, ['cat-file', 'blob', 'HEAD:model.pt'])).stdout;
    expect(parsePointer(blob)).toEqual(expect.objectContaining({ oid: sha256(model), size: model.length }));
    expect((await box.git(repo, ['cat-file', 'blob', 'HEAD:README.md'])).stdout).toBe('not tracked\n');

    await box.git(repo, ['remote', 'add', 'origin', `gitml::${remote}`]);
    const push = await box.git(repo, ['push', 'origin', 'main']);
    expect(push.stderr).toContain('main -> main');
    // The 3 MiB model is stored as chunks (a manifest and a pack), the small CSV packed beside them.
    expect(storedAt(store, sha256(model))?.kind).toBe('chunked');
    expect(storedAt(store, sha256('a,b\n1,2\n'))?.kind).toBe('packed');
    expect(fs.existsSync(path.join(store, 'objects'))).toBe(false);

    // Another machine: its own HOME and cache, only the URLs in common. The store comes from .gitmlconfig.
    const clone = other.path('other');
    await other.git(other.root, ['clone', '-q', `gitml::${remote}`, clone]);
    expect(sha256(await fsp.readFile(path.join(clone, 'model.pt')))).toBe(sha256(model));
    expect(await fsp.readFile(path.join(clone, 'data', 'train.csv'), 'utf8')).toBe('a,b\n1,2\n');
    expect((await other.git(clone, ['status', '--porcelain'])).stdout).toBe('');
    const ls = await other.gitml(clone, ['ls-files', '--json']);
    const files = JSON.parse(ls.stdout).files as { path: string; checkedOut: boolean; cached: boolean }[];
    expect(files.map((f) => [f.path, f.checkedOut, f.cached])).toEqual([
      ['data/train.csv', true, true],
      ['model.pt', true, true],
    ]);
    // The clone's objects came into its own cache, verified.
    expect(fs.existsSync(cachedObjectPath(clone, sha256(model)))).toBe(true);
  });

  test('git gitml <cmd> works through the git-gitml binary', async () => {
    const r = await box.run(box.path('my-ml-repo'), 'git', ['gitml', 'track']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual(expect.arrayContaining(['*.pt', 'data/**']));
  });

  test('fetch of new commits brings the new bytes', async () => {
    const repo = box.path('my-ml-repo');
    const clone = other.path('other');
    const v2 = randomBytesSeeded(1024 * 1024, 7);
    await fsp.writeFile(path.join(repo, 'model.pt'), v2);
    await box.git(repo, ['commit', '-q', '-am', 'model v2']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    await other.git(clone, ['pull', '-q', 'origin', 'main']);
    expect(sha256(await fsp.readFile(path.join(clone, 'model.pt')))).toBe(sha256(v2));
    expect((await other.git(clone, ['status', '--porcelain'])).stdout).toBe('');
  });
});

describe('push and clone details', () => {
  let box: Sandbox;
  let repo: string;
  let remote: string;
  beforeAll(async () => {
    box = await Sandbox.create();
    ({ repo, remote } = await makeRepoWithRemote(box));
  });
  afterAll(() => box.cleanup());

  test('a branch that adds, modifies, renames and deletes tracked files', async () => {
    await fsp.mkdir(path.join(repo, 'data'), { recursive: true });
    await fsp.writeFile(path.join(repo, 'a.pt'), randomBytesSeeded(50_000, 1));
    await fsp.writeFile(path.join(repo, 'b.pt'), randomBytesSeeded(60_000, 2));
    await fsp.writeFile(path.join(repo, 'data', 'c.bin'), randomBytesSeeded(70_000, 3));
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'three files']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);

    await box.git(repo, ['checkout', '-q', '-b', 'feature']);
    await fsp.writeFile(path.join(repo, 'a.pt'), randomBytesSeeded(55_000, 11)); // modify
    await box.git(repo, ['mv', 'b.pt', 'data/b-renamed.pt']); // rename
    await box.git(repo, ['rm', '-q', 'data/c.bin']); // delete
    await fsp.writeFile(path.join(repo, 'data', 'new.bin'), randomBytesSeeded(80_000, 4)); // add
    await box.git(repo, ['add', '-A']);
    await box.git(repo, ['commit', '-q', '-m', 'feature changes']);
    await box.git(repo, ['push', '-q', 'origin', 'feature']);

    const clone = box.path('clone-feature');
    await box.git(box.root, ['clone', '-q', '-b', 'feature', `gitml::${remote}`, clone]);
    expect(sha256(await fsp.readFile(path.join(clone, 'a.pt')))).toBe(sha256(randomBytesSeeded(55_000, 11)));
    expect(sha256(await fsp.readFile(path.join(clone, 'data', 'b-renamed.pt')))).toBe(sha256(randomBytesSeeded(60_000, 2)));
    expect(sha256(await fsp.readFile(path.join(clone, 'data', 'new.bin')))).toBe(sha256(randomBytesSeeded(80_000, 4)));
    expect(fs.existsSync(path.join(clone, 'data', 'c.bin'))).toBe(false);
    expect(fs.existsSync(path.join(clone, 'b.pt'))).toBe(false);
    // Switching to main in the clone restores main's versions.
    await box.git(clone, ['checkout', '-q', 'main']);
    expect(sha256(await fsp.readFile(path.join(clone, 'a.pt')))).toBe(sha256(randomBytesSeeded(50_000, 1)));
    expect(sha256(await fsp.readFile(path.join(clone, 'data', 'c.bin')))).toBe(sha256(randomBytesSeeded(70_000, 3)));
  });

  test('force push, tags, several refs in one push, and deletes behave as with plain git', async () => {
    await box.git(repo, ['checkout', '-q', 'main']);
    await box.git(repo, ['tag', 'v1']);
    await box.git(repo, ['checkout', '-q', '-b', 'tmp']);
    await fsp.writeFile(path.join(repo, 'tmp.pt'), randomBytesSeeded(10_000, 99));
    await box.git(repo, ['add', 'tmp.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'tmp']);
    const multi = await box.git(repo, ['push', 'origin', 'tmp', 'v1']);
    expect(multi.stderr).toContain('[new tag]');
    expect(multi.stderr).toContain('[new branch]');
    let refs = (await box.git(remote, ['for-each-ref', '--format=%(refname)'])).stdout;
    expect(refs).toContain('refs/tags/v1');
    expect(refs).toContain('refs/heads/tmp');

    await box.git(repo, ['reset', '-q', '--hard', 'main']);
    const rejected = await box.run(repo, 'git', ['push', 'origin', 'tmp']);
    expect(rejected.code).not.toBe(0);
    expect(rejected.stderr).toMatch(/non-fast-forward|rejected/);
    await box.git(repo, ['push', '-q', '--force', 'origin', 'tmp']);
    const remoteTmp = (await box.git(remote, ['rev-parse', 'refs/heads/tmp'])).stdout.trim();
    expect(remoteTmp).toBe((await box.git(repo, ['rev-parse', 'main'])).stdout.trim());

    await box.git(repo, ['push', '-q', 'origin', '--delete', 'tmp']);
    refs = (await box.git(remote, ['for-each-ref', '--format=%(refname)'])).stdout;
    expect(refs).not.toContain('refs/heads/tmp');
  });

  test('a push whose object is in neither the cache nor the store is refused and nothing moves', async () => {
    await box.git(repo, ['checkout', '-q', 'main']);
    const before = (await box.git(remote, ['rev-parse', 'refs/heads/main'])).stdout.trim();
    const lost = randomBytesSeeded(20_000, 1234);
    await commitWithLostBytes(box, repo, 'lost.pt', lost);
    const r = await box.run(repo, 'git', ['push', 'origin', 'main']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("'lost.pt'");
    expect(r.stderr).toContain('neither the local cache nor the store');
    expect((await box.git(remote, ['rev-parse', 'refs/heads/main'])).stdout.trim()).toBe(before);
    // Put the bytes back (re-add the file) and the same push goes through.
    await fsp.writeFile(path.join(repo, 'lost.pt'), Buffer.alloc(0));
    await fsp.writeFile(path.join(repo, 'lost.pt'), lost);
    await box.git(repo, ['add', '--renormalize', 'lost.pt']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    expect((await box.git(remote, ['rev-parse', 'refs/heads/main'])).stdout.trim()).not.toBe(before);
  });

  test('a push without tracked files makes no store call (works with no store reachable)', async () => {
    await fsp.writeFile(path.join(repo, 'notes.txt'), 'plain text\n');
    await box.git(repo, ['add', 'notes.txt']);
    await box.git(repo, ['commit', '-q', '-m', 'notes']);
    const r = await box.run(repo, 'git', ['push', 'origin', 'main'], { env: { GITML_STORE: '/nonexistent/store/dir' } });
    expect(r.stderr).not.toMatch(/^gitml: /m);
    expect(r.code).toBe(0);
  });
});
