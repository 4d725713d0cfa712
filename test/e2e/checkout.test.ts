import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { flipStoredByte } from '../helpers/store-layout';
import { formatPointer, parsePointer } from '../../src/pointer';
import { cachedObjectPath, listFiles, makeRepo, randomBytesSeeded, Sandbox, sha256 } from '../helpers/sandbox';


describe('checkout', () => {
  let box: Sandbox;
  let repo: string;
  let remote: string;
  const files: Record<string, Buffer> = {
    'data/with space.bin': randomBytesSeeded(40_000, 1),
    'data/ünïcødé-模型.bin': randomBytesSeeded(41_000, 2),
    "data/quote'and\"dq.bin": randomBytesSeeded(42_000, 3),
    'data/empty.bin': Buffer.alloc(0),
    'models/big.pt': randomBytesSeeded(2_000_000, 4),
    'models/small.pt': Buffer.from('tiny but tracked\n'),
  };

  beforeAll(async () => {
    box = await Sandbox.create();
    repo = await makeRepo(box);
    remote = box.path('remote.git');
    await box.git(box.root, ['init', '-q', '--bare', remote]);
    for (const [name, data] of Object.entries(files)) {
      await fsp.mkdir(path.dirname(path.join(repo, name)), { recursive: true });
      await fsp.writeFile(path.join(repo, name), data);
    }
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'files']);
    await box.git(repo, ['remote', 'add', 'origin', `gitml::${remote}`]);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
  });
  afterAll(() => box.cleanup());

  test('odd file names and a 0-byte file round-trip; the empty file stays empty in git', async () => {
    const clone = box.path('clone-names');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone]);
    for (const [name, data] of Object.entries(files)) {
      expect(sha256(await fsp.readFile(path.join(clone, name)))).toBe(sha256(data));
    }
    expect((await box.git(clone, ['cat-file', '-s', 'HEAD:data/empty.bin'])).stdout.trim()).toBe('0');
    expect((await box.git(clone, ['status', '--porcelain'])).stdout).toBe('');
  });

  test('GITML_SKIP_SMUDGE=1 clones pointers; gitml pull --include materialises just those, and git status stays clean', async () => {
    const clone = box.path('clone-skip');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone], { env: { GITML_SKIP_SMUDGE: '1', GITML_FETCH: 'none' } });
    const big = await fsp.readFile(path.join(clone, 'models/big.pt'));
    expect(parsePointer(big)?.oid).toBe(sha256(files['models/big.pt']!));
    expect((await box.git(clone, ['status', '--porcelain'])).stdout).toBe('');

    const status = JSON.parse((await box.gitml(clone, ['status', '--json'])).stdout);
    expect(status.pointerOnly).toEqual(expect.arrayContaining(['models/big.pt', 'data/with space.bin']));

    const firstLog = box.path('pull-models.log');
    const pull = await box.gitml(clone, ['pull', '--include', 'models/**', '--json'], { env: { GITML_LOG: 'debug', GITML_LOG_FILE: firstLog } });
    expect(pull.code).toBe(0);
    expect(JSON.parse(pull.stdout)).toMatchObject({ pulled: 2, failed: [] });
    // The 2 MB model's work-tree copy was written by its download and renamed into place; the small
    // one was copied from the cache. No copy is left in the cache's temp folder.
    const firstLines = (await fsp.readFile(firstLog, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; staged?: number; copied?: number });
    expect(firstLines.filter((l) => l.msg === 'pull: files written').map((l) => [l.staged, l.copied])).toEqual([[1, 1]]);
    expect(listFiles(path.join(clone, '.git/gitml/tmp'))).toEqual([]);
    expect(sha256(await fsp.readFile(path.join(clone, 'models/big.pt')))).toBe(sha256(files['models/big.pt']!));
    expect(parsePointer(await fsp.readFile(path.join(clone, 'data/with space.bin')))).not.toBeNull();
    expect((await box.git(clone, ['status', '--porcelain'])).stdout).toBe('');

    // An index written a while ago, older than the files gitml writes (dated a minute back): their
    // stat data still goes into the index itself, which then gets a newer time, as git would give it.
    // (Every file dated further back and refreshed first, so no entry is racily clean against that time.)
    const older = new Date(Date.now() - 10 * 60_000);
    for (const name of [...Object.keys(files), '.gitattributes', '.gitmlconfig']) await fsp.utimes(path.join(clone, name), older, older);
    await box.git(clone, ['update-index', '-q', '--refresh']);
    const old = new Date(Date.now() - 5 * 60_000);
    await fsp.utimes(path.join(clone, '.git/index'), old, old);
    expect((await box.git(clone, ['diff-files', '--name-only'])).stdout).toBe('');
    const pullLog = box.path('pull-old-index.log');
    const rest = await box.gitml(clone, ['pull', '--exclude', 'models/**', '--json'], { env: { GITML_LOG: 'debug', GITML_LOG_FILE: pullLog } });
    expect(rest.code).toBe(0);
    const pulled = (JSON.parse(rest.stdout) as { pulled: number }).pulled;
    expect(pulled).toBeGreaterThan(0);
    const recorded = (await fsp.readFile(pullLog, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; recorded?: number; smudged?: number }).filter((l) => l.msg === 'stat data recorded in the index');
    expect(recorded.map((l) => [l.recorded, l.smudged])).toEqual([[pulled, 0]]);
    expect((await fsp.stat(path.join(clone, '.git/index'))).mtimeMs).toBeGreaterThan(old.getTime());
    expect((await box.git(clone, ['diff-files', '--name-only'])).stdout).toBe('');
    for (const [name, data] of Object.entries(files)) expect(sha256(await fsp.readFile(path.join(clone, name)))).toBe(sha256(data));
    expect((await box.git(clone, ['status', '--porcelain'])).stdout).toBe('');
    // Records (when the index could not take the stat data itself) live only for the refresh.
    const records = path.join(clone, '.git/gitml/written');
    expect(fs.existsSync(records) ? fs.readdirSync(records) : []).toEqual([]);

    // An edit of the same size after the pull is new content with its own pointer.
    const edited = Buffer.from(files['models/big.pt']!);
    edited[0] = edited[0]! ^ 0xff;
    await fsp.writeFile(path.join(clone, 'models/big.pt'), edited);
    await box.git(clone, ['add', 'models/big.pt']);
    expect(parsePointer((await box.git(clone, ['cat-file', 'blob', ':models/big.pt'])).stdout)?.oid).toBe(sha256(edited));
  });

  test('a file that is already a pointer is stored as it is (cleaning is idempotent)', async () => {
    const data = files['models/big.pt']!;
    const pointer = formatPointer({ oid: sha256(data), size: data.length });
    await fsp.writeFile(path.join(repo, 'models/copy.pt'), pointer);
    await box.git(repo, ['add', 'models/copy.pt']);
    expect((await box.git(repo, ['cat-file', 'blob', ':models/copy.pt'])).stdout).toBe(pointer);
    await box.git(repo, ['commit', '-q', '-m', 'pointer copy']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    const clone = box.path('clone-pointer');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone]);
    expect(sha256(await fsp.readFile(path.join(clone, 'models/copy.pt')))).toBe(sha256(data));
  });

  test('a corrupt object in the store (one byte flipped) fails checkout naming the file, and leaves no corrupt file', async () => {
    const data = randomBytesSeeded(300_000, 77);
    const oid = sha256(data);
    await fsp.writeFile(path.join(repo, 'models/victim.pt'), data);
    await box.git(repo, ['add', 'models/victim.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'victim']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    flipStoredByte(box.path('store'), oid, 12345);
    const bytes = Buffer.from(data);
    bytes[12345] = bytes[12345]! ^ 0xff;

    const clone = box.path('clone-corrupt');
    const r = await box.run(box.root, 'git', ['clone', `gitml::${remote}`, clone]);
    expect(r.stderr).toContain('models/victim.pt');
    expect(r.stderr).toContain(oid.slice(0, 12));
    expect(r.stderr).toMatch(/damaged/);
    // Whatever git left at that path, it is not the damaged bytes.
    const victim = path.join(clone, 'models/victim.pt');
    if (fs.existsSync(victim)) expect(sha256(await fsp.readFile(victim))).not.toBe(sha256(bytes));
    // Nothing damaged entered the clone's cache.
    expect(fs.existsSync(cachedObjectPath(clone, oid))).toBe(false);

    const fsck = await box.gitml(repo, ['fsck', '--store', '--json']);
    expect(fsck.code).toBe(2);
    expect(JSON.parse(fsck.stdout).problems).toEqual([expect.objectContaining({ where: 'store', oid, problem: 'damaged', path: 'models/victim.pt' })]);
  });

  test('the one-file-per-process filters (clean/smudge without filter.process) give the same results', async () => {
    const other = await Sandbox.create({ install: false });
    try {
      await other.git(other.root, ['config', '--global', 'filter.gitml.clean', 'gitml clean -- %f']);
      await other.git(other.root, ['config', '--global', 'filter.gitml.smudge', 'gitml smudge -- %f']);
      await other.git(other.root, ['config', '--global', 'filter.gitml.required', 'true']);
      const r = await makeRepo(other);
      const data = randomBytesSeeded(500_000, 5);
      await fsp.writeFile(path.join(r, 'm.pt'), data);
      await other.git(r, ['add', 'm.pt']);
      expect(parsePointer((await other.git(r, ['cat-file', 'blob', ':m.pt'])).stdout)?.oid).toBe(sha256(data));
      await other.git(r, ['commit', '-q', '-m', 'm']);
      await fsp.rm(path.join(r, 'm.pt'));
      await other.git(r, ['checkout', '--', 'm.pt']);
      expect(sha256(await fsp.readFile(path.join(r, 'm.pt')))).toBe(sha256(data));
    } finally {
      await other.cleanup();
    }
  });
});

describe('direct checkout of large files', () => {
  test('git writes the pointer, the bytes follow when git exits, verified and with their mode; status is clean; not when a hook or a rebase step runs before git exits', async () => {
    const box = await Sandbox.create();
    try {
      await box.git(box.root, ['config', '--global', 'gitml.directcheckout', 'true']);
      const repo = await makeRepo(box);
      const remote = box.path('remote.git');
      await box.git(box.root, ['init', '-q', '--bare', remote]);
      const big = randomBytesSeeded(40 * 1024 * 1024, 77);
      const small = randomBytesSeeded(100_000, 78);
      await fsp.writeFile(path.join(repo, 'big.pt'), big);
      await fsp.writeFile(path.join(repo, 'small.pt'), small);
      await fsp.chmod(path.join(repo, 'big.pt'), 0o755);
      await box.git(repo, ['add', '.']);
      await box.git(repo, ['commit', '-q', '-m', 'big']);
      await box.git(repo, ['remote', 'add', 'origin', `gitml::${remote}`]);
      await box.git(repo, ['push', '-q', 'origin', 'main']);

      // Fetched before the checkout (tips): written from the cache. Fetched by the checkout (none): the
      // download writes the work-tree copy beside the cache's, and it is renamed into place.
      for (const [fetchMode, how] of [['tips', { staged: 0, copied: 1 }], ['none', { staged: 1, copied: 0 }]] as const) {
        const clone = box.path(`direct-${fetchMode}`);
        const log = box.path(`direct-${fetchMode}.log`);
        await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone], { env: { GITML_FETCH: fetchMode, GITML_LOG: 'debug', GITML_LOG_FILE: log } });
        expect(sha256(await fsp.readFile(path.join(clone, 'big.pt')))).toBe(sha256(big));
        expect(sha256(await fsp.readFile(path.join(clone, 'small.pt')))).toBe(sha256(small));
        expect(fs.statSync(path.join(clone, 'big.pt')).mode & 0o111).not.toBe(0);
        // The file's stat data is in the index (gitml recorded it): git reads nothing back. diff-files
        // lists every entry whose stat data differs from its file, without looking at content.
        expect((await box.git(clone, ['diff-files', '--name-only'])).stdout).toBe('');
        expect((await box.git(clone, ['status', '--porcelain'])).stdout).toBe('');
        const lines = (await fsp.readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; staged?: number; copied?: number; recorded?: number });
        const written = lines.filter((l) => l.msg === 'direct checkout: files written');
        expect(written.map((l) => ({ staged: l.staged, copied: l.copied }))).toEqual([how]);
        expect(lines.filter((l) => l.msg === 'stat data recorded in the index').map((l) => l.recorded)).toEqual([1]);
        expect(listFiles(path.join(clone, '.git/gitml/tmp'))).toEqual([]);
      }

      // A split index keeps entries in another file: git refreshes the entry itself, and the filter
      // answers from the record of what gitml wrote (no second hash).
      const split = box.path('direct-split');
      const splitLog = box.path('direct-split.log');
      await box.git(box.root, ['clone', '-q', '--no-checkout', `gitml::${remote}`, split]);
      await box.git(split, ['update-index', '--split-index']);
      await box.git(split, ['checkout', '-q', '-f', 'main'], { env: { GITML_LOG: 'debug', GITML_LOG_FILE: splitLog } });
      expect(sha256(await fsp.readFile(path.join(split, 'big.pt')))).toBe(sha256(big));
      expect((await box.git(split, ['diff-files', '--name-only'])).stdout).toBe('');
      const splitLines = (await fsp.readFile(splitLog, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; recorded?: number; pathname?: string; unchanged?: boolean });
      expect(splitLines.filter((l) => l.msg === 'stat data recorded in the index').map((l) => l.recorded)).toEqual([0]);
      expect(splitLines.filter((l) => l.msg === 'clean of a file gitml wrote').map((l) => [l.pathname, l.unchanged])).toEqual([['big.pt', true]]);

      // A post-checkout hook would run before the bytes are written, so then git gets them as usual.
      const hooked = box.path('hooked');
      await box.git(box.root, ['clone', '-q', '--no-checkout', `gitml::${remote}`, hooked]);
      const seen = box.path('hook-saw');
      await fsp.writeFile(path.join(hooked, '.git/hooks/post-checkout'), `#!/bin/sh\nhead -c 7 big.pt > ${JSON.stringify(seen)}\n`, { mode: 0o755 });
      await box.git(hooked, ['checkout', '-q', 'main']);
      expect(await fsp.readFile(seen)).toEqual(big.subarray(0, 7));

      // The same for every hook git runs after a checkout, inside the same command: a post-merge hook
      // sees the bytes a fast-forward brought.
      const merged = box.path('merged');
      await box.git(box.root, ['clone', '-q', '--no-checkout', `gitml::${remote}`, merged]);
      await box.git(merged, ['checkout', '-q', 'main~1']);
      const mergeSaw = box.path('merge-saw');
      await fsp.writeFile(path.join(merged, '.git/hooks/post-merge'), `#!/bin/sh\nhead -c 7 big.pt > ${JSON.stringify(mergeSaw)}\n`, { mode: 0o755 });
      await box.git(merged, ['merge', '-q', '--ff-only', 'main']);
      expect(await fsp.readFile(mergeSaw)).toEqual(big.subarray(0, 7));

      // A rebase checks out step after step in one git process and runs --exec in between: the command
      // sees the bytes of the commit just picked (here the one that adds big.pt, picked again).
      const rebased = box.path('rebased');
      const rebaseLog = box.path('rebased.log');
      await box.git(box.root, ['clone', '-q', `gitml::${remote}`, rebased]);
      const execSaw = box.path('exec-saw');
      await box.git(rebased, ['rebase', '-q', '--force-rebase', '--exec', `head -c 7 big.pt > ${JSON.stringify(execSaw)}`, 'main~1'], {
        env: { GITML_LOG: 'debug', GITML_LOG_FILE: rebaseLog },
      });
      expect(await fsp.readFile(execSaw)).toEqual(big.subarray(0, 7));
      expect(await fsp.readFile(rebaseLog, 'utf8')).not.toMatch(/direct checkout: files written/);

      // Hooks in configuration (git 2.54: hook.<name>.event) count as well, whether or not this git runs them.
      const configured = box.path('configured');
      const configuredLog = box.path('configured.log');
      await box.git(box.root, ['clone', '-q', '--no-checkout', `gitml::${remote}`, configured]);
      await box.git(configured, ['config', 'hook.tests.event', 'post-merge']);
      await box.git(configured, ['config', 'hook.tests.command', 'true']);
      await box.git(configured, ['checkout', '-q', 'main'], { env: { GITML_LOG: 'debug', GITML_LOG_FILE: configuredLog } });
      expect(sha256(await fsp.readFile(path.join(configured, 'big.pt')))).toBe(sha256(big));
      expect(await fsp.readFile(configuredLog, 'utf8')).not.toMatch(/direct checkout: files written/);

      // Damaged packs: the copy written during the download is thrown away with the download.
      for (const file of listFiles(box.path('store/packs')).filter((f) => f.endsWith('.pack'))) {
        fs.chmodSync(file, 0o644);
        const fd = fs.openSync(file, 'r+');
        fs.writeSync(fd, Buffer.from([0x5a ^ fs.readFileSync(file)[1000]!]), 0, 1, 1000);
        fs.closeSync(fd);
      }
      const damaged = box.path('direct-damaged');
      const r = await box.run(box.root, 'git', ['clone', '-q', `gitml::${remote}`, damaged], { env: { GITML_FETCH: 'none' } });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/damaged|does not match/);
      if (fs.existsSync(path.join(damaged, 'big.pt'))) expect(sha256(await fsp.readFile(path.join(damaged, 'big.pt')))).not.toBe(sha256(big));
      expect(listFiles(path.join(damaged, '.git/gitml/tmp'))).toEqual([]);
      // The same for `gitml pull`, whose download also writes the work-tree copy: the file stays a pointer.
      const pulled = box.path('pull-damaged');
      await box.git(box.root, ['clone', '-q', `gitml::${remote}`, pulled], { env: { GITML_SKIP_SMUDGE: '1', GITML_FETCH: 'none' } });
      const p = await box.gitml(pulled, ['pull']);
      expect(p.code).not.toBe(0);
      expect(p.stderr).toMatch(/big\.pt/);
      expect(parsePointer(await fsp.readFile(path.join(pulled, 'big.pt')))?.oid).toBe(sha256(big));
      expect(listFiles(path.join(pulled, '.git/gitml/tmp'))).toEqual([]);
    } finally {
      await box.cleanup();
    }
  });
});
