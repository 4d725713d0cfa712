import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytesSeeded, Sandbox, sha256 } from '../helpers/sandbox';

/**
 * gitml migrate --from-lfs on repositories made by the real git-lfs (Debian's package): history with
 * several versions of a model, a branch and an annotated tag, pushed to a git-lfs remote. After the
 * migration, a fresh clone through gitml:: on a machine without git-lfs is byte-identical to what
 * git-lfs checked out, at every migrated ref.
 */
describe('gitml migrate --from-lfs', () => {
  let lfs: Sandbox;
  let lfsRemote: string;
  /** For each ref, each file's sha256 as git-lfs checked it out. */
  const expected: Record<string, Record<string, string>> = {};
  const files = {
    v1: randomBytesSeeded(300_000, 1),
    v2: randomBytesSeeded(310_000, 2),
    v3: randomBytesSeeded(320_000, 3),
    data: randomBytesSeeded(1_500_000, 4),
  };

  beforeAll(async () => {
    lfs = await Sandbox.create();
    // This machine has git-lfs (and gitml, installed by the sandbox, which leaves filter.lfs to it).
    await lfs.git(lfs.root, ['lfs', 'install']);
    lfsRemote = lfs.path('lfs-remote.git');
    await lfs.git(lfs.root, ['init', '-q', '--bare', lfsRemote]);
    const repo = lfs.path('made-by-lfs');
    await lfs.git(lfs.root, ['init', '-q', repo]);
    await lfs.git(repo, ['lfs', 'track', '*.pt', '*.bin']);
    await fsp.writeFile(path.join(repo, 'README.md'), 'a model\n');
    await fsp.writeFile(path.join(repo, 'model.pt'), files.v1);
    await fsp.mkdir(path.join(repo, 'data'));
    await fsp.writeFile(path.join(repo, 'data', 'train.bin'), files.data);
    await lfs.git(repo, ['add', '.']);
    await lfs.git(repo, ['commit', '-q', '-m', 'v1']);
    await lfs.git(repo, ['tag', '-a', 'v1', '-m', 'first model']);
    await fsp.writeFile(path.join(repo, 'model.pt'), files.v2);
    await lfs.git(repo, ['commit', '-q', '-am', 'v2']);
    await lfs.git(repo, ['checkout', '-q', '-b', 'experiment']);
    await fsp.writeFile(path.join(repo, 'model.pt'), files.v3);
    await lfs.git(repo, ['commit', '-q', '-am', 'v3']);
    await lfs.git(repo, ['checkout', '-q', 'main']);
    // The blobs in git are git-lfs pointers.
    expect((await lfs.git(repo, ['cat-file', 'blob', 'HEAD:model.pt'])).stdout).toContain('git-lfs.github.com/spec/v1');
    await lfs.git(repo, ['remote', 'add', 'origin', `file://${lfsRemote}`]);
    await lfs.git(repo, ['push', '-q', 'origin', '--all']);
    await lfs.git(repo, ['push', '-q', 'origin', '--tags']);
    // What git-lfs checks out at each ref.
    const check = lfs.path('lfs-check');
    await lfs.git(lfs.root, ['clone', '-q', `file://${lfsRemote}`, check]);
    for (const ref of ['main', 'v1', 'experiment']) {
      await lfs.git(check, ['checkout', '-q', ref]);
      expected[ref] = { 'model.pt': sha256(await fsp.readFile(path.join(check, 'model.pt'))), 'data/train.bin': sha256(await fsp.readFile(path.join(check, 'data', 'train.bin'))) };
    }
    expect(expected.v1!['model.pt']).toBe(sha256(files.v1));
    expect(expected.experiment!['model.pt']).toBe(sha256(files.v3));
  });
  afterAll(() => lfs.cleanup());

  /** A clone of the git-lfs repository to migrate, with its store named, as a team would start. */
  async function cloneToMigrate(name: string): Promise<{ repo: string; store: string }> {
    const repo = lfs.path(name);
    const store = lfs.path(`${name}-store`);
    await fsp.mkdir(store);
    await lfs.git(lfs.root, ['clone', '-q', `file://${lfsRemote}`, repo]);
    await lfs.git(repo, ['branch', '-q', 'experiment', 'origin/experiment']);
    await lfs.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.store', `file://${store}`]);
    await lfs.git(repo, ['add', '.gitmlconfig']);
    await lfs.git(repo, ['commit', '-q', '-m', 'name the gitml store']);
    return { repo, store };
  }

  /** Pushes every migrated ref to a new bare repository through gitml::. */
  async function publish(repo: string, name: string, force = false): Promise<string> {
    const bare = lfs.path(`${name}.git`);
    await lfs.git(lfs.root, ['init', '-q', '--bare', bare]);
    await lfs.git(repo, ['remote', 'add', 'gitml-origin', `gitml::${bare}`]);
    await lfs.git(repo, ['push', '-q', ...(force ? ['--force'] : []), 'gitml-origin', 'main', 'experiment', 'refs/tags/v1']);
    return bare;
  }

  /** A machine that never had git-lfs: a fresh clone, then every ref checked out and compared. */
  async function verifyFreshClone(bare: string, configure: (box: Sandbox) => Promise<void>, afterClone: (box: Sandbox, clone: string) => Promise<void> = async () => undefined): Promise<void> {
    const fresh = await Sandbox.create();
    try {
      await configure(fresh);
      // No git-lfs on this machine.
      expect((await fresh.run(fresh.root, 'git', ['config', '--global', '--get', 'filter.lfs.process'])).code).toBe(1);
      const clone = fresh.path('clone');
      await fresh.git(fresh.root, ['clone', '-q', `gitml::${bare}`, clone]);
      await afterClone(fresh, clone);
      for (const ref of ['main', 'v1', 'experiment']) {
        await fresh.git(clone, ['checkout', '-q', ref]);
        for (const [file, oid] of Object.entries(expected[ref]!)) expect({ ref, file, oid: sha256(await fsp.readFile(path.join(clone, file))) }).toEqual({ ref, file, oid });
        expect((await fresh.git(clone, ['status', '--porcelain'])).stdout).toBe('');
      }
    } finally {
      await fresh.cleanup();
    }
  }

  test('--dry-run says what would move and changes nothing', async () => {
    const { repo, store } = await cloneToMigrate('dry');
    const head = (await lfs.git(repo, ['rev-parse', 'HEAD'])).stdout;
    const r = await lfs.ok(repo, 'gitml', ['migrate', '--from-lfs', '--dry-run', '--json']);
    const report = JSON.parse(r.stdout);
    // model v1, v2, v3 and the data file; the clone has main's two locally.
    expect(report).toMatchObject({ objects: 4, bytes: files.v1.length + files.v2.length + files.v3.length + files.data.length, local: 2, attributes: ['.gitattributes'] });
    expect((await lfs.git(repo, ['rev-parse', 'HEAD'])).stdout).toBe(head);
    expect(fs.readdirSync(store)).toEqual([]);
    expect((await lfs.git(repo, ['status', '--porcelain'])).stdout).toBe('');
  });

  test('forward: objects into the gitml store, rules switched in a new commit; every ref clones byte-identical without git-lfs', async () => {
    const { repo } = await cloneToMigrate('forward');
    const r = await lfs.ok(repo, 'gitml', ['migrate', '--from-lfs', '--json']);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ objects: 4, uploaded: 4, attributes: ['.gitattributes'], hooksRemoved: expect.arrayContaining(['pre-push']) });
    expect(report.fetched).toBe(2); // v1 and experiment's model came through git lfs fetch --all
    expect(await fsp.readFile(path.join(repo, '.gitattributes'), 'utf8')).toMatch(/^\*\.pt filter=gitml diff=gitml merge=gitml -text$/m);
    expect((await lfs.git(repo, ['log', '-1', '--format=%s'])).stdout.trim()).toBe('Migrate large files from git-lfs to gitml');
    // HEAD's files are now gitml pointers; the older commits keep theirs (and still check out).
    expect((await lfs.git(repo, ['cat-file', 'blob', 'HEAD:model.pt'])).stdout).toContain('gitml.dev/spec/v1');
    expect((await lfs.git(repo, ['cat-file', 'blob', 'v1:model.pt'])).stdout).toContain('git-lfs.github.com/spec/v1');
    expect((await lfs.git(repo, ['status', '--porcelain'])).stdout).toBe('');
    const bare = await publish(repo, 'forward-published');
    await verifyFreshClone(
      bare,
      // Commits from before the migration have no .gitmlconfig: the machine names the store.
      async (box) => void (await box.git(box.root, ['config', '--global', 'gitml.store', `file://${lfs.path('forward-store')}`])),
      // The gitml:: clone serves their filter=lfs files through gitml (git-lfs is not set up here).
      async (box, clone) => expect((await box.git(clone, ['config', '--local', '--get', 'filter.lfs.process'])).stdout.trim()).toBe('gitml filter-process --lfs'),
    );
  });

  test('--rewrite: no commit holds an LFS pointer or rule, backups and the commit map are kept; clones need no git-lfs config at all', async () => {
    const { repo } = await cloneToMigrate('rewrite');
    // A dirty tree is refused before anything happens.
    await fsp.appendFile(path.join(repo, 'README.md'), 'edited\n');
    const dirty = await lfs.gitml(repo, ['migrate', '--from-lfs', '--rewrite']);
    expect(dirty.code).toBe(1);
    expect(dirty.stderr).toMatch(/uncommitted changes/);
    await lfs.git(repo, ['checkout', '--', 'README.md']);
    const before = (await lfs.git(repo, ['rev-parse', 'main', 'experiment', 'v1^{commit}'])).stdout.split('\n').filter(Boolean);

    const report = JSON.parse((await lfs.ok(repo, 'gitml', ['migrate', '--from-lfs', '--rewrite', '--json'])).stdout);
    expect(report.rewritten.map((x: { ref: string }) => x.ref).sort()).toEqual(['refs/heads/experiment', 'refs/heads/main', 'refs/tags/v1']);
    expect(report.backupRefs.sort()).toEqual(['refs/gitml-backup/heads/experiment', 'refs/gitml-backup/heads/main', 'refs/gitml-backup/tags/v1']);
    expect((await lfs.git(repo, ['rev-parse', 'refs/gitml-backup/heads/main'])).stdout.trim()).toBe(before[0]);
    const map = (await fsp.readFile(report.commitMap, 'utf8')).trim().split('\n').map((l) => l.split(' '));
    expect(map.map(([old]) => old)).toEqual(expect.arrayContaining(before));
    // The tag is still annotated, with its message, on the rewritten commit.
    expect((await lfs.git(repo, ['cat-file', '-t', 'v1'])).stdout.trim()).toBe('tag');
    expect((await lfs.git(repo, ['tag', '-l', '--format=%(contents:subject)', 'v1'])).stdout.trim()).toBe('first model');
    // No blob reachable from the migrated refs is an LFS pointer, and every commit names the store.
    const blobs = (await lfs.git(repo, ['rev-list', '--objects', 'main', 'experiment', 'v1'])).stdout.split('\n').filter(Boolean).map((l) => l.split(' '));
    for (const [id, p] of blobs) {
      if (!p) continue;
      const size = Number((await lfs.git(repo, ['cat-file', '-s', id!])).stdout);
      if (size < 1024) expect({ p, lfs: (await lfs.git(repo, ['cat-file', '-p', id!])).stdout.includes('git-lfs.github.com') || / filter=lfs/.test((await lfs.git(repo, ['cat-file', '-p', id!])).stdout) }).toEqual({ p, lfs: false });
    }
    for (const ref of ['v1', 'experiment']) expect((await lfs.git(repo, ['cat-file', 'blob', `${ref}:.gitmlconfig`])).stdout).toMatch(/store = file:/);
    expect((await lfs.git(repo, ['status', '--porcelain'])).stdout).toBe('');

    const bare = await publish(repo, 'rewrite-published');
    await verifyFreshClone(
      bare,
      async () => undefined,
      // Nothing of git-lfs is needed: no filter.lfs at all, and every commit names the store.
      async (box, clone) => void (await box.git(clone, ['config', '--local', '--remove-section', 'filter.lfs'])),
    );
  });

  test('refuses without --from-lfs, and names an unknown ref before anything happens', async () => {
    const { repo } = await cloneToMigrate('usage');
    const none = await lfs.gitml(repo, ['migrate']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('--from-lfs');
    const bad = await lfs.gitml(repo, ['migrate', '--from-lfs', '--include-ref', 'nosuch']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('nosuch');
  });
});
