import fs from 'node:fs';
import path from 'node:path';
import { hooksPresent, installHooks } from '../../src/install';
import { Sandbox } from '../helpers/sandbox';

/** Whether a clone has gitml's hooks: what every filter process asks before it installs them. */
describe('gitml hooks in a repository', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await Sandbox.create({ install: false });
  });
  afterAll(() => box.cleanup());

  const repo = async (name: string) => {
    const dir = box.path(name);
    await box.git(box.root, ['init', '-q', dir]);
    return { ctx: { cwd: dir, env: box.env }, commonDir: path.join(dir, '.git') };
  };

  test('absent, then present once installed; where they are, the hook file alone answers (no git process)', async () => {
    const { ctx, commonDir } = await repo('plain');
    expect(await hooksPresent(ctx, commonDir)).toBe(false);
    await installHooks(ctx);
    expect(await hooksPresent(ctx, commonDir)).toBe(true);
    expect(await hooksPresent(ctx)).toBe(true);
    // With no git to be found, only the file can answer.
    const noGit = { ...ctx, env: { ...box.env, PATH: path.join(box.root, 'no-such-dir') } };
    expect(await hooksPresent(noGit, commonDir)).toBe(true);
    await expect(hooksPresent(noGit)).rejects.toThrow();
  });

  test('a pre-push hook of someone else is not gitml\'s; a core.hooksPath the user manages counts as present', async () => {
    const { ctx, commonDir } = await repo('foreign');
    fs.mkdirSync(path.join(commonDir, 'hooks'), { recursive: true });
    fs.writeFileSync(path.join(commonDir, 'hooks', 'pre-push'), '#!/bin/sh\necho theirs\n', { mode: 0o755 });
    expect(await hooksPresent(ctx, commonDir)).toBe(false);
    await box.git(ctx.cwd, ['config', 'core.hooksPath', '.husky']);
    expect(await hooksPresent(ctx, commonDir)).toBe(true);
  });
});
