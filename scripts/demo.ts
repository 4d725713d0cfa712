import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { formatBytes } from '../src/progress';
import { createMachine as machine, dirBytes, run } from './machine';

/**
 * `npm run demo`: the whole job on the embedded default, with the real git, in a temp directory.
 * A repo tracks *.pt, commits a 64 MiB "model" and an edit of it, pushes through gitml:: to a bare
 * repo with a directory store, and a second "machine" (its own HOME and cache) clones it; every byte
 * is checked. Pass --keep to leave the directory for a look around.
 */
const MODEL_SIZE = 64 * 1024 * 1024;

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    fs.createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

async function main(): Promise<void> {
  const keep = process.argv.includes('--keep');
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-demo-'));
  const timings: [string, number][] = [];
  const step = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    const r = await fn();
    timings.push([label, Date.now() - t]);
    console.log(`  ✓ ${label} (${((Date.now() - t) / 1000).toFixed(2)} s)`);
    return r;
  };
  console.log(`gitml demo in ${root}`);
  try {
    const alice = await machine(root, 'alice');
    const bob = await machine(root, 'bob');
    const store = path.join(root, 'ml-store');
    const remote = path.join(root, 'server', 'my-ml-repo.git');
    const repo = path.join(root, 'alice', 'my-ml-repo');
    await fsp.mkdir(store);
    await run(alice, root, 'git', ['init', '-q', '--bare', remote]);

    await step('gitml install (global git config)', () => run(alice, root, 'gitml', ['install']));
    await step('git init, gitml track "*.pt", store in .gitmlconfig', async () => {
      await run(alice, root, 'git', ['init', '-q', repo]);
      await run(alice, repo, 'gitml', ['track', '*.pt']);
      await run(alice, repo, 'git', ['config', '-f', '.gitmlconfig', 'gitml.store', `file://${store}`]);
    });
    const model = path.join(repo, 'model.pt');
    await fsp.writeFile(model, randomBytes(MODEL_SIZE));
    const v1 = await sha256File(model);
    await step(`git add + commit of a ${formatBytes(MODEL_SIZE)} model`, async () => {
      await run(alice, repo, 'git', ['add', '.']);
      await run(alice, repo, 'git', ['commit', '-q', '-m', 'model v1']);
    });
    // Fine-tuning touches part of the weights.
    const h = await fsp.open(model, 'r+');
    await h.write(randomBytes(4 * 1024 * 1024), 0, 4 * 1024 * 1024, 10 * 1024 * 1024);
    await h.close();
    const v2 = await sha256File(model);
    await step('git commit -a of the edited model (v2)', () => run(alice, repo, 'git', ['commit', '-q', '-am', 'model v2']));
    await run(alice, repo, 'git', ['remote', 'add', 'origin', `gitml::${remote}`]);
    await step('git push origin main (bytes to the store, then refs)', () => run(alice, repo, 'git', ['push', '-q', 'origin', 'main']));

    const clone = path.join(root, 'bob', 'my-ml-repo');
    await step('git clone gitml::… on another machine (own HOME, own cache)', async () => {
      await run(bob, root, 'gitml', ['install']);
      await run(bob, root, 'git', ['clone', '-q', `gitml::${remote}`, clone]);
    });
    const got2 = await sha256File(path.join(clone, 'model.pt'));
    await step('git checkout HEAD~1 (v1) in the clone', () => run(bob, clone, 'git', ['checkout', '-q', 'HEAD~1']));
    const got1 = await sha256File(path.join(clone, 'model.pt'));
    const ok = got1 === v1 && got2 === v2;

    const storeUse = await dirBytes(store);
    const remoteUse = await dirBytes(remote);
    const pointer = await run(bob, clone, 'git', ['cat-file', 'blob', 'main:model.pt']);
    console.log('\nWhat is where:');
    console.log(`  git server (${remote}): ${formatBytes(remoteUse.bytes)} in ${remoteUse.files} files — git holds pointers only (model.pt on main):`);
    console.log(pointer.replace(/^/gm, '      '));
    console.log(`  store (${store}): ${formatBytes(storeUse.bytes)} in ${storeUse.files} files for v1 and v2 together (chunked: v2 added only what changed)`);
    console.log(`  bob's clone: model.pt v2 sha256 ${got2.slice(0, 16)}… ${got2 === v2 ? 'matches' : 'DIFFERS'}; v1 ${got1 === v1 ? 'matches' : 'DIFFERS'}`);
    console.log(`\nTotal ${(timings.reduce((n, [, ms]) => n + ms, 0) / 1000).toFixed(2)} s. ${ok ? 'All bytes verified.' : 'VERIFICATION FAILED'}`);
    if (!ok) process.exitCode = 1;
  } finally {
    if (keep) console.log(`(kept ${root})`);
    else await fsp.rm(root, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
