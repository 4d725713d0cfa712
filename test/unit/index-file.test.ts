import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { entriesOf, recordStatData, withStatData, type StatUpdate } from '../../src/git/index-file';
import { Sandbox, randomBytesSeeded } from '../helpers/sandbox';

/**
 * gitml records the stat data of files it wrote in git's index itself (git/index-file.ts). Indexes
 * here are written by the real git in each form it has; the proof that git reads the result as meant
 * is git's own: `git diff-files` lists every entry whose stat data does not match its file (it does
 * not look at content), and git verifies the index checksum on every read.
 */
describe("git's index: recording stat data", () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await Sandbox.create({ install: false });
  });
  afterAll(() => box.cleanup());

  const files = ['a.bin', 'dir/b.bin', 'dir/sub/c with space.bin', 'dir/ünï.bin', `long/${'x'.repeat(250)}.bin`];
  /** Longer than an entry's 12-bit name length can say (git writes 0xfff and a NUL-terminated name). */
  const deep = `deep/${Array.from({ length: 20 }, () => 'd'.repeat(240)).join('/')}/f.bin`;

  /** An entry with the `deep` path that has no file: skip-worktree, so git expects none (and writes extended flags). */
  async function addDeepEntry(repo: string): Promise<void> {
    const blob = (await box.git(repo, ['hash-object', '-w', '--stdin'], { input: 'deep\n' })).stdout.trim();
    await box.git(repo, ['update-index', '--add', '--cacheinfo', `100644,${blob},${deep}`]);
    await box.git(repo, ['update-index', '--skip-worktree', deep]);
    await box.git(repo, ['commit', '-q', '-m', 'deep']);
  }

  /** A repository with `files` committed, whose files were then rewritten (same bytes) a minute back. */
  async function repoWith(name: string, setup: (repo: string) => Promise<void> = async () => undefined, init: string[] = [], afterCommit: (repo: string) => Promise<void> = async () => undefined): Promise<string> {
    const repo = box.path(name);
    await box.git(box.root, ['init', '-q', ...init, repo]);
    await setup(repo);
    for (const [i, f] of files.entries()) {
      await fsp.mkdir(path.dirname(path.join(repo, f)), { recursive: true });
      await fsp.writeFile(path.join(repo, f), randomBytesSeeded(1000 + i, i));
    }
    await fsp.writeFile(path.join(repo, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    await box.git(repo, ['add', '-A']);
    await box.git(repo, ['commit', '-q', '-m', 'files']);
    await afterCommit(repo);
    const past = new Date(Date.now() - 60_000);
    for (const f of [...files, 'run.sh']) {
      const p = path.join(repo, f);
      const data = await fsp.readFile(p);
      await fsp.rm(p);
      await fsp.writeFile(p, data, { mode: f === 'run.sh' ? 0o755 : 0o644 });
      await fsp.utimes(p, past, past);
    }
    return repo;
  }

  const statDirty = async (repo: string) => (await box.git(repo, ['diff-files', '--name-only', '-z'])).stdout.split('\0').filter(Boolean).sort();
  const blobOf = async (repo: string, f: string) => (await box.git(repo, ['rev-parse', `:${f}`])).stdout.trim();
  const updateFor = async (repo: string, f: string): Promise<StatUpdate> => {
    const st = await fsp.lstat(path.join(repo, f), { bigint: true });
    const ns = 1_000_000_000n;
    return {
      path: f,
      blob: await blobOf(repo, f),
      stat: { ctimeSec: st.ctimeNs / ns, ctimeNsec: st.ctimeNs % ns, mtimeSec: st.mtimeNs / ns, mtimeNsec: st.mtimeNs % ns, dev: st.dev, ino: st.ino, mode: st.mode, uid: st.uid, gid: st.gid, size: st.size },
    };
  };

  const forms: [string, (repo: string) => Promise<void>, string[]][] = [
    ['version 2', async () => undefined, []],
    ['version 3 (an entry with extended flags)', async () => undefined, []],
    ['version 4 (prefix-compressed paths)', async (repo) => void (await box.git(repo, ['config', 'index.version', '4'])), []],
    ['a SHA-256 repository', async () => undefined, ['--object-format=sha256']],
  ];
  test.each(forms)('%s: the named entries match their files, everything else is as git left it', async (form, setup, init) => {
    const repo = await repoWith(form.replace(/\W+/g, '-'), setup, init, async (r) => {
      if (form.startsWith('version 3')) await box.git(r, ['update-index', '--skip-worktree', 'dir/b.bin']);
      if (form.startsWith('version 3') || form.startsWith('version 4')) await addDeepEntry(r);
    });
    const index = path.join(repo, '.git', 'index');
    const version = fs.readFileSync(index).readUInt32BE(4);
    expect(version).toBe(form.startsWith('version 3') ? 3 : form.startsWith('version 4') ? 4 : 2);
    expect(await statDirty(repo)).toEqual([...files.filter((f) => f !== 'dir/b.bin' || !form.startsWith('version 3')), 'run.sh'].sort());

    const named = files.filter((f) => f !== 'dir/b.bin');
    const before = await fsp.stat(index, { bigint: true });
    const { recorded, smudged } = await recordStatData(index, [...(await Promise.all(named.map((f) => updateFor(repo, f)))), await updateFor(repo, 'run.sh')]);
    expect(smudged).toBe(0);
    expect(recorded.sort()).toEqual([...named, 'run.sh'].sort());
    // git's racy-clean check is against the index's own time: it is kept (never later than before).
    const after = await fsp.stat(index, { bigint: true });
    expect(after.mtimeNs <= before.mtimeNs && before.mtimeNs - after.mtimeNs < 1_000_000n).toBe(true);
    expect(await statDirty(repo)).toEqual(form.startsWith('version 3') ? [] : ['dir/b.bin']);
    expect((await box.git(repo, ['status', '--porcelain'])).stdout).toBe('');
    expect(fs.existsSync(`${index}.lock`)).toBe(false);
    expect(fs.readFileSync(index).readUInt32BE(4)).toBe(version);
    const body = fs.readFileSync(index);
    const hashSize = init.length > 0 ? 32 : 20;
    const paths = entriesOf(body.subarray(0, body.length - hashSize), hashSize)!.map((e) => e.path);
    expect(paths).toEqual((await box.git(repo, ['ls-files', '-z'])).stdout.split('\0').filter(Boolean));
    if (version >= 3) expect(paths).toContain(deep);
  });

  test('an entry naming another blob, an executable bit that differs, an unmerged entry: left to git', async () => {
    const repo = await repoWith('declined');
    const index = path.join(repo, '.git', 'index');
    const wrongBlob = { ...(await updateFor(repo, 'a.bin')), blob: await blobOf(repo, 'dir/b.bin') };
    const exec = await updateFor(repo, 'dir/b.bin');
    exec.stat.mode |= 0o111n;
    expect((await recordStatData(index, [wrongBlob, exec, await updateFor(repo, 'dir/ünï.bin')])).recorded).toEqual(['dir/ünï.bin']);
    expect(await statDirty(repo)).toEqual(files.filter((f) => f !== 'dir/ünï.bin').concat('run.sh').sort());

    // Stages 1-3 of a conflict are never touched.
    await box.git(repo, ['checkout', '-q', '-b', 'other']);
    await fsp.writeFile(path.join(repo, 'a.bin'), 'theirs\n');
    await box.git(repo, ['commit', '-q', '-am', 'theirs']);
    await box.git(repo, ['checkout', '-q', '-']);
    await fsp.writeFile(path.join(repo, 'a.bin'), 'ours\n');
    await box.git(repo, ['commit', '-q', '-am', 'ours']);
    expect((await box.run(repo, 'git', ['merge', '-q', 'other'])).code).not.toBe(0);
    const ours = (await box.git(repo, ['rev-parse', ':2:a.bin'])).stdout.trim();
    const body = fs.readFileSync(index);
    const entries = entriesOf(body.subarray(0, body.length - 20), 20)!;
    expect(entries.filter((e) => e.path === 'a.bin').map((e) => e.stage)).toEqual([1, 2, 3]);
    expect((await recordStatData(index, [{ ...(await updateFor(repo, 'dir/b.bin')), path: 'a.bin', blob: ours }])).recorded).toEqual([]);
    expect(fs.readFileSync(index).equals(body)).toBe(true);
  });

  test('a split index, a held lock, a damaged checksum, a file written this instant: nothing is written', async () => {
    const split = await repoWith('split');
    await box.git(split, ['update-index', '--split-index']);
    const splitIndex = path.join(split, '.git', 'index');
    const bytes = fs.readFileSync(splitIndex);
    expect((await recordStatData(splitIndex, [await updateFor(split, 'a.bin')])).recorded).toEqual([]);
    expect(fs.readFileSync(splitIndex).equals(bytes)).toBe(true);

    const repo = await repoWith('refused');
    const index = path.join(repo, '.git', 'index');
    const update = await updateFor(repo, 'a.bin');
    await fsp.writeFile(`${index}.lock`, '');
    expect((await recordStatData(index, [update])).recorded).toEqual([]);
    expect(fs.readFileSync(`${index}.lock`, 'utf8')).toBe(''); // git's lock is git's
    await fsp.rm(`${index}.lock`);

    const good = fs.readFileSync(index);
    const damaged = Buffer.from(good);
    damaged[damaged.length - 1] ^= 1;
    expect(withStatData(damaged, [update])).toBeNull();
    expect(withStatData(good.subarray(0, 30), [update])).toBeNull();

    // Written this instant: an index written now could not be later than it in seconds.
    const now = new Date();
    await fsp.utimes(path.join(repo, 'a.bin'), now, now);
    expect((await recordStatData(index, [await updateFor(repo, 'a.bin')])).recorded).toEqual([]);
    expect(fs.readFileSync(index).equals(good)).toBe(true);
  });

  test('a file newer than the index (gitml pull on an old index): recorded; the index gets a newer time, and an entry racily clean against the old one is smudged, so git still sees its change', async () => {
    const repo = await repoWith('newer');
    await box.git(repo, ['config', 'core.trustctime', 'false']); // a change that keeps mtime, size and inode: only git's racy check sees it
    const index = path.join(repo, '.git', 'index');
    const at = (secondsAgo: number) => new Date(Date.now() - secondsAgo * 1000);
    await box.git(repo, ['update-index', '-q', '--refresh']); // every entry: its file's stat, a minute back
    // One entry recorded 40 s back, then the index dated 50 s back: that entry is racily clean against it.
    const racy = 'dir/sub/c with space.bin';
    await fsp.utimes(path.join(repo, racy), at(40), at(40));
    await box.git(repo, ['update-index', '-q', '--refresh']);
    await fsp.utimes(index, at(50), at(50));
    expect(await statDirty(repo)).toEqual([]);
    // The racy file changes in place, same size, its mtime put back: only its content says so.
    const racyStat = await fsp.stat(path.join(repo, racy));
    const fd = fs.openSync(path.join(repo, racy), 'r+');
    fs.writeSync(fd, Buffer.from('changed'), 0, 7, 0);
    fs.closeSync(fd);
    await fsp.utimes(path.join(repo, racy), racyStat.atime, racyStat.mtime);
    // a.bin is written again (same bytes) 10 s back: newer than the index.
    const data = await fsp.readFile(path.join(repo, 'a.bin'));
    await fsp.rm(path.join(repo, 'a.bin'));
    await fsp.writeFile(path.join(repo, 'a.bin'), data);
    await fsp.utimes(path.join(repo, 'a.bin'), at(10), at(10));
    expect(await statDirty(repo)).toEqual(['a.bin', racy].sort());

    const before = await fsp.stat(index, { bigint: true });
    const { recorded, smudged } = await recordStatData(index, [await updateFor(repo, 'a.bin')]);
    expect(recorded).toEqual(['a.bin']);
    expect(smudged).toBe(1);
    expect((await fsp.stat(index, { bigint: true })).mtimeNs > before.mtimeNs).toBe(true);
    expect(await statDirty(repo)).toEqual([racy]);
    expect((await box.git(repo, ['status', '--porcelain'])).stdout).toBe(` M "${racy}"\n`);
  });

  test('an index without a checksum (index.skipHash) keeps none', async () => {
    const repo = await repoWith('skiphash');
    const good = fs.readFileSync(path.join(repo, '.git', 'index'));
    const unhashed = Buffer.from(good);
    unhashed.fill(0, unhashed.length - 20);
    const out = withStatData(unhashed, [await updateFor(repo, 'a.bin')])!;
    expect(out.recorded).toEqual(['a.bin']);
    expect(out.index.subarray(out.index.length - 20).every((b) => b === 0)).toBe(true);
    expect(out.index.equals(unhashed)).toBe(false);
  });
});
