import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeRepoWithRemote, randomBytesSeeded, Sandbox } from '../helpers/sandbox';
import { checkRemote, findInGroup, killGroup, killProcess, prng, report, SOAK } from './lib';

/**
 * kill -9 of `git push` (whole process group) and of the remote helper alone, at random points
 * during upload. Afterwards the remote's refs must point only at commits whose every object the store
 * gives back intact, and a re-run must complete.
 */
/**
 * With a local remote, git's own receive-pack runs in the pushing process group, so a kill of the group
 * (the kill under test, or the harness's own after a kill of the helper alone) kills it too, and a
 * kill landing while it updates a ref leaves that ref's lock file (git's behaviour
 * under kill -9, with or without gitml). A server's receive-pack is beyond the reach of a client's kill:
 * its leftover locks are cleared here, so the re-run tests gitml, not a stale lock of git's.
 */
async function clearServerLocks(bare: string): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.lock')) await fsp.rm(p, { force: true });
    }
  };
  await fsp.rm(path.join(bare, 'HEAD.lock'), { force: true });
  await fsp.rm(path.join(bare, 'packed-refs.lock'), { force: true });
  await walk(path.join(bare, 'refs'));
}

describe('reliability: kill -9 during push', () => {
  const iterations = SOAK ? 100 : 20;
  let box: Sandbox;
  let repo: string;
  let remote: string;

  beforeAll(async () => {
    box = await Sandbox.create();
    ({ repo, remote } = await makeRepoWithRemote(box));
  });
  afterAll(() => box.cleanup());

  test(`${iterations} pushes killed at random points: no dangling pointer, every re-run completes`, async () => {
    const random = prng(20261129);
    let passed = 0;
    let dangling = 0;
    let killedMidway = 0;
    const problems: string[] = [];
    let typical = 400;
    for (let i = 0; i < iterations; i++) {
      // New content every time: several whole objects and one chunked one.
      for (let f = 0; f < 6; f++) await fsp.writeFile(path.join(repo, `w${f}.pt`), randomBytesSeeded(200_000, i * 100 + f));
      await fsp.writeFile(path.join(repo, 'big.pt'), randomBytesSeeded(1_500_000, i * 100 + 99));
      await box.git(repo, ['add', '.']);
      await box.git(repo, ['commit', '-q', '-m', `iteration ${i}`]);

      const child = spawn('git', ['push', '-q', 'origin', 'main'], { cwd: repo, env: box.env, detached: true, stdio: 'ignore' });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const started = Date.now();
      const delay = Math.floor(random() * typical);
      const helperOnly = i % 2 === 1;
      const outcome = await Promise.race([exited.then(() => 'finished' as const), sleep(delay).then(() => 'timer' as const)]);
      if (outcome === 'timer') {
        if (helperOnly) for (const pid of findInGroup(child.pid!, 'git-remote-gitml')) killProcess(pid);
        else killGroup(child.pid!);
        killedMidway++;
      }
      await exited;
      if (outcome === 'finished') typical = Math.max(100, Math.round((typical + (Date.now() - started)) / 2));
      killGroup(child.pid!); // nothing of it may linger
      // After a kill of the helper alone, git's inner push (the helper's child, in the same group) may
      // still be updating the remote's ref when the line above kills it: the same leftover lock of
      // git's as a kill of the whole group leaves, so it is cleared the same way.
      if (outcome === 'timer') await clearServerLocks(remote);

      const after = await checkRemote(remote, `file://${box.path('store')}`, box.env);
      dangling += after.dangling.length;
      const rerun = await box.run(repo, 'git', ['push', '-q', 'origin', 'main']);
      const final = await checkRemote(remote, `file://${box.path('store')}`, box.env);
      const remoteHead = (await box.git(remote, ['rev-parse', 'main'])).stdout;
      const localHead = (await box.git(repo, ['rev-parse', 'main'])).stdout;
      if (after.dangling.length === 0 && rerun.code === 0 && final.dangling.length === 0 && remoteHead === localHead) passed++;
      else problems.push(`iteration ${i}: dangling ${after.dangling.join('; ')} rerun ${rerun.code} ${rerun.stderr}`);
    }
    report({ fault: 'kill -9 of git push / of the helper during upload', cases: iterations, passed, bytesLost: 0, danglingPointers: dangling, secretsLeaked: 0, notes: `${killedMidway} killed mid-push` });
    expect(problems).toEqual([]);
    expect(dangling).toBe(0);
    // The schedule must really interrupt pushes, or the test proves nothing.
    expect(killedMidway).toBeGreaterThan(iterations / 3);
  }, 120_000 + iterations * 45_000);
});
