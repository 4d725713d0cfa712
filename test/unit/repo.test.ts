import fs from 'node:fs';
import path from 'node:path';
import { openRepo } from '../../src/git/repo';
import { Sandbox } from '../helpers/sandbox';

/** Where gitml finds a repository, for every place a gitml process can start in (the real git). */
describe('opening the repository around a directory', () => {
  let box: Sandbox;
  let main: string;
  beforeAll(async () => {
    box = await Sandbox.create({ install: false });
    main = box.path('main');
    await box.git(box.root, ['init', '-q', main]);
    fs.mkdirSync(path.join(main, 'src', 'deep'), { recursive: true });
    fs.writeFileSync(path.join(main, 'README'), 'x\n');
    await box.git(main, ['add', 'README']);
    await box.git(main, ['commit', '-q', '-m', 'one']);
    await box.git(main, ['worktree', 'add', '-q', box.path('linked')]);
    await box.git(box.root, ['init', '-q', '--bare', box.path('bare.git')]);
  });
  afterAll(() => box.cleanup());

  test('the top of a work tree, from its top or from a folder below', async () => {
    for (const cwd of [main, path.join(main, 'src', 'deep')]) {
      const repo = await openRepo(cwd, box.env);
      expect(repo).toMatchObject({ gitDir: path.join(main, '.git'), commonDir: path.join(main, '.git'), workTree: main, git: { cwd: main } });
    }
  });

  test('a linked worktree: its own git dir, the main one shared', async () => {
    const repo = await openRepo(box.path('linked'), box.env);
    expect(repo.gitDir).toBe(path.join(main, '.git', 'worktrees', 'linked'));
    expect(repo.commonDir).toBe(path.join(main, '.git'));
    expect(repo.workTree).toBe(box.path('linked'));
  });

  test('no work tree: a bare repository, inside a git dir, or when told not to look (the remote helper)', async () => {
    expect(await openRepo(box.path('bare.git'), box.env)).toMatchObject({ gitDir: box.path('bare.git'), commonDir: box.path('bare.git'), workTree: null });
    const inside = await openRepo(path.join(main, '.git'), box.env);
    expect(inside).toMatchObject({ gitDir: path.join(main, '.git'), workTree: null, git: { cwd: path.join(main, '.git') } });
    const helper = await openRepo(box.root, { ...box.env, GIT_DIR: path.join(main, '.git') }, { workTree: false });
    expect(helper).toMatchObject({ gitDir: path.join(main, '.git'), commonDir: path.join(main, '.git'), workTree: null });
  });

  test('outside any repository: a usage error that says what to do', async () => {
    fs.mkdirSync(box.path('plain'), { recursive: true });
    await expect(openRepo(box.path('plain'), { ...box.env, GIT_CEILING_DIRECTORIES: box.root })).rejects.toMatchObject({ code: 'E_NOT_A_REPO', hint: expect.stringContaining('git init') });
  });
});
