import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { LooseObjects, parseLoose } from '../../src/git/loose-objects';
import { scanRangeForPointers, scanTreeForPointers } from '../../src/git/scan';
import { formatPointer } from '../../src/pointer';
import { Sandbox, randomBytesSeeded, sha256 } from '../helpers/sandbox';

const LIMIT = 1023;

describe('reading small objects from their loose files', () => {
  let box: Sandbox;
  let repo: string;
  const ctx = () => ({ cwd: repo, env: box.env });
  beforeAll(async () => {
    box = await Sandbox.create({ install: false });
    repo = box.path('repo');
    await box.git(box.root, ['init', '-q', repo]);
  });
  afterAll(() => box.cleanup());

  const write = async (data: Buffer | string): Promise<string> => (await box.git(repo, ['hash-object', '-w', '--stdin'], { input: data })).stdout.trim();
  const looseFile = (oid: string) => path.join(repo, '.git', 'objects', oid.slice(0, 2), oid.slice(2));

  test('a loose blob is answered whole, with its type; a tree and a commit too', async () => {
    const text = formatPointer({ oid: sha256('a'), size: 1 });
    const blob = await write(text);
    const loose = await LooseObjects.open(ctx(), LIMIT);
    expect(loose.read(blob)).toEqual({ type: 'blob', content: Buffer.from(text) });
    const tree = (await box.git(repo, ['mktree'], { input: `100644 blob ${blob}\tp.pt\n` })).stdout.trim();
    const tread = loose.read(tree);
    expect(tread && tread !== 'large' && tread.type).toBe('tree');
    const commit = (await box.git(repo, ['commit-tree', tree, '-m', 'x'])).stdout.trim();
    const cread = loose.read(commit);
    expect(cread && cread !== 'large' && cread.type).toBe('commit');
    expect(loose.read(await write(''))).toEqual({ type: 'blob', content: Buffer.alloc(0) });
  });

  test('an object over the limit is "large", however well it compresses; only its start is read', async () => {
    const loose = await LooseObjects.open(ctx(), LIMIT);
    expect(loose.read(await write(Buffer.alloc(LIMIT + 1, 0x61)))).toBe('large');
    expect(loose.read(await write(Buffer.alloc(50 * 1024 * 1024)))).toBe('large');
    expect(loose.read(await write(randomBytesSeeded(100_000, 3)))).toBe('large');
    expect(loose.read(await write(Buffer.alloc(LIMIT, 0x62)))).toEqual({ type: 'blob', content: Buffer.alloc(LIMIT, 0x62) });
  });

  test('what the file does not answer plainly is left to git: no file, a damaged or truncated file, a wrong size, a name that is not an oid', async () => {
    const loose = await LooseObjects.open(ctx(), LIMIT);
    expect(loose.read(sha256('nothing').slice(0, 40))).toBeNull();
    expect(loose.read('../../../../etc/passwd')).toBeNull();
    expect(loose.read('ABCDEF' + '0'.repeat(34))).toBeNull();
    const damaged = await write('damaged soon');
    await fsp.chmod(looseFile(damaged), 0o644);
    await fsp.writeFile(looseFile(damaged), 'not zlib at all');
    expect(loose.read(damaged)).toBeNull();
    expect(parseLoose(zlib.deflateSync('blob 10\0short'), LIMIT)).toBeNull();
    expect(parseLoose(zlib.deflateSync('blob 3\0longer than three'), LIMIT)).toBeNull();
    expect(parseLoose(zlib.deflateSync('weird 3\0abc'), LIMIT)).toBeNull();
    expect(parseLoose(zlib.deflateSync('blob 03\0abc'), LIMIT)).toBeNull();
    expect(parseLoose(zlib.deflateSync('blob 3\0abc').subarray(0, 6), LIMIT)).toBeNull();
    expect(parseLoose(zlib.deflateSync('blob 3\0abc'), LIMIT)).toEqual({ type: 'blob', content: Buffer.from('abc') });
  });

  test('a reader that keeps missing (a packed repository) looks for one object in 32, and for every one again after a hit', async () => {
    const loose = await LooseObjects.open(ctx(), LIMIT);
    const there = await write('there');
    expect(loose.read(there)).not.toBeNull();
    for (let i = 0; i < 300; i++) expect(loose.read(sha256(`absent ${i}`).slice(0, 40))).toBeNull();
    expect(loose.sampling).toBe(true);
    let tries = 1;
    while (loose.read(there) === null) tries++;
    expect(tries).toBeGreaterThan(1);
    expect(tries).toBeLessThanOrEqual(32);
    expect(loose.sampling).toBe(false);
    expect(loose.read(there)).not.toBeNull();
  });

  test('scans find every pointer, loose, packed, or loose in a repository whose objects live elsewhere; tree scans keep the tree\'s order', async () => {
    const work = box.path('mixed');
    await box.git(box.root, ['init', '-q', work]);
    const pointers = Array.from({ length: 40 }, (_, i) => formatPointer({ oid: sha256(`object ${i}`), size: i + 1 }));
    const add = async (from: number, to: number) => {
      for (let i = from; i < to; i++) await fsp.writeFile(path.join(work, `f${String(i).padStart(2, '0')}.pt`), pointers[i]!);
      await fsp.writeFile(path.join(work, `big-${from}.bin`), randomBytesSeeded(5000, from));
      await box.git(work, ['add', '.']);
      await box.git(work, ['commit', '-q', '-m', `${from}`]);
    };
    await add(0, 20);
    await box.git(work, ['repack', '-adq']);
    await box.git(work, ['prune-packed']);
    await add(20, 40);
    const names = (list: { path: string }[]) => list.map((p) => p.path);
    const expected = pointers.map((_, i) => `f${String(i).padStart(2, '0')}.pt`);
    const wctx = { cwd: work, env: box.env };
    expect(names(await scanTreeForPointers(wctx, 'HEAD'))).toEqual(expected);
    expect(names(await scanRangeForPointers(wctx, ['HEAD'], [])).sort()).toEqual(expected);
    expect((await scanRangeForPointers(wctx, ['HEAD'], ['HEAD~1'])).map((p) => p.pointer.size).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 21));
    // GIT_OBJECT_DIRECTORY elsewhere: the loose files are looked for there.
    const moved = box.path('moved-objects');
    await fsp.rename(path.join(work, '.git', 'objects'), moved);
    const menv = { cwd: work, env: { ...box.env, GIT_OBJECT_DIRECTORY: moved } };
    expect(fs.existsSync(path.join(work, '.git', 'objects'))).toBe(false);
    expect(names(await scanTreeForPointers(menv, 'HEAD'))).toEqual(expected);
    expect(names(await scanRangeForPointers(menv, ['HEAD'], [])).sort()).toEqual(expected);
  });
});
