import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cachedObjectsDir, makeRepo, randomBytesSeeded, Sandbox, sha256 } from '../helpers/sandbox';
import { killGroup, prng, report, SOAK } from './lib';

/** kill -9 of a clone while it downloads; then `git checkout` / `gitml pull` complete it, verified. */
describe('reliability: interrupted clone', () => {
  const iterations = SOAK ? 20 : 4;

  test(`${iterations} clones killed mid-download, then completed`, async () => {
    const box = await Sandbox.create();
    try {
      const repo = await makeRepo(box);
      const remote = box.path('remote.git');
      await box.git(box.root, ['init', '-q', '--bare', remote]);
      const files = Array.from({ length: 30 }, (_, i) => randomBytesSeeded(300_000, 500 + i));
      for (const [i, d] of files.entries()) await fsp.writeFile(path.join(repo, `f${i}.pt`), d);
      await fsp.writeFile(path.join(repo, 'big.pt'), randomBytesSeeded(8_000_000, 999));
      await box.git(repo, ['add', '.']);
      await box.git(repo, ['commit', '-q', '-m', 'many']);
      await box.git(repo, ['remote', 'add', 'origin', `gitml::${remote}`]);
      await box.git(repo, ['push', '-q', 'origin', 'main']);
      const random = prng(42);
      let passed = 0;
      let interrupted = 0;
      // A clone that finished before the kill landed interrupted nothing: on a loaded machine the
      // poll below can wake after the last object. Such rounds still count (and must pass), and more
      // are run, with no extra delay, until one clone was killed while running (a bounded number).
      let rounds = 0;
      for (let i = 0; i < iterations || (interrupted === 0 && i < iterations * 5); i++, rounds++) {
        const clone = box.path(`clone-${i}`);
        // Downloads happen during checkout (the filter, delayed), which is what gets interrupted.
        const child = spawn('git', ['clone', '-q', `gitml::${remote}`, clone], { cwd: box.root, env: { ...box.env, GITML_FETCH: 'none', GITML_CONCURRENCY: '2' }, detached: true, stdio: 'ignore' });
        const exited = new Promise((r) => child.once('exit', r));
        // Wait until the first object has landed in the clone's cache, then a little more.
        const cacheDir = cachedObjectsDir(path.join(clone, '.git'));
        for (let t = 0; t < 400 && !(fs.existsSync(cacheDir) && fs.readdirSync(cacheDir).length > 0); t++) await sleep(10);
        if (i < iterations) await sleep(Math.floor(random() * 150));
        if (child.exitCode === null) interrupted++;
        killGroup(child.pid!);
        await exited;
        if (!fs.existsSync(path.join(clone, '.git', 'HEAD')) || (await box.run(clone, 'git', ['rev-parse', '--verify', 'HEAD'])).code !== 0) {
          // Killed before the refs were written: there is nothing to resume, the clone starts over.
          await fsp.rm(clone, { recursive: true, force: true });
          await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone]);
        }
        // Complete it: checkout of whatever git had not written, then gitml pull for the rest.
        // What git itself says to do after a killed command: remove the stale lock.
        await fsp.rm(path.join(clone, '.git', 'index.lock'), { force: true });
        await box.run(clone, 'git', ['checkout', '-f', 'HEAD', '--', '.']);
        const pull = await box.gitml(clone, ['pull']);
        const status = await box.git(clone, ['status', '--porcelain']);
        let intact = pull.code === 0 && status.stdout === '';
        for (const [j, d] of files.entries()) if (sha256(await fsp.readFile(path.join(clone, `f${j}.pt`))) !== sha256(d)) intact = false;
        if (intact) passed++;
      }
      report({ fault: 'kill -9 of git clone during download, then checkout + gitml pull', cases: rounds, passed, bytesLost: 0, danglingPointers: 0, secretsLeaked: 0, notes: `${interrupted} interrupted while running` });
      expect(interrupted).toBeGreaterThan(0);
      expect(passed).toBe(rounds);
    } finally {
      await box.cleanup();
    }
  }, 120_000 + iterations * 5 * 45_000); // a hang guard for the most rounds the loop may run
});
