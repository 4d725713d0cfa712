import fsp from 'node:fs/promises';
import path from 'node:path';
import { parsePointer } from '../../src/pointer';
import { makeRepoWithRemote, Sandbox } from '../helpers/sandbox';
import { securityReport } from './lib';

describe('security: git\'s and gitml\'s own files never become pointers', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await Sandbox.create();
  });
  afterAll(() => box.cleanup());

  test('gitml track refuses patterns that would catch .gitattributes, .gitmlconfig and friends, and writes nothing', async () => {
    const repo = box.path('track');
    await box.git(box.root, ['init', '-q', repo]);
    await fsp.writeFile(path.join(repo, '.gitattributes'), '*.txt text\n');
    const refused = ['*', '**', '.*', '.git*', '*config', '*attributes', '.gitmlconfig', '[.]gitignore'];
    let passed = 0;
    for (const p of refused) {
      const r = await box.gitml(repo, ['track', p]);
      if (r.code === 1 && /would also send/.test(r.stderr)) passed++;
      else throw new Error(`track ${p}: exit ${r.code} ${r.stderr}`);
    }
    expect(await fsp.readFile(path.join(repo, '.gitattributes'), 'utf8')).toBe('*.txt text\n');
    const fine = await box.gitml(repo, ['track', '*.pt', 'data/**', '*.config.bin']);
    expect(fine.code).toBe(0);
    securityReport({ case: 'track patterns catching control files', cases: refused.length + 1, passed: passed + 1 });
  });

  test('even a hand-written "* filter=gitml" keeps .gitattributes and .gitmlconfig plain, and clones still work', async () => {
    const { repo, remote } = await makeRepoWithRemote(box);
    await fsp.writeFile(path.join(repo, '.gitattributes'), '* filter=gitml diff=gitml merge=gitml -text\n');
    await fsp.writeFile(path.join(repo, 'weights.bin'), 'weights\n');
    await box.git(repo, ['add', '-A']);
    await box.git(repo, ['commit', '-q', '-m', 'everything through gitml']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    const blob = async (p: string) => (await box.git(repo, ['cat-file', 'blob', `HEAD:${p}`])).stdout;
    expect(parsePointer(await blob('.gitattributes'))).toBeNull();
    expect(parsePointer(await blob('.gitmlconfig'))).toBeNull();
    expect(parsePointer(await blob('weights.bin'))).not.toBeNull();
    const clone = box.path('clone-star');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone]);
    expect(await fsp.readFile(path.join(clone, 'weights.bin'), 'utf8')).toBe('weights\n');
    securityReport({ case: 'clean of control files under "*"', cases: 1, passed: 1 });
  });
});
