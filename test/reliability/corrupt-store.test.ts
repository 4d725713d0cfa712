import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { cachedObjectPath, makeRepo, randomBytesSeeded, Sandbox, sha256 } from '../helpers/sandbox';
import { flipStoredByte, storedAt } from '../helpers/store-layout';
import { checkRemote, report } from './lib';

function objectFile(store: string, oid: string): string {
  return path.join(store, 'objects', oid.slice(0, 2), oid.slice(2, 4), oid);
}

async function overwrite(file: string, data: Buffer): Promise<void> {
  await fsp.chmod(file, 0o644);
  await fsp.writeFile(file, data);
}

/**
 * Damage in the store: one byte flipped, a truncated object, another object's bytes under a name, a
 * damaged pack. Each is detected on download and named, `gitml fsck --store` reports it, nothing
 * damaged reaches a work tree or a cache, and `gitml push --repair` from a clone with good copies
 * repairs the store.
 */
describe('reliability: damaged objects in the store', () => {
  test('flipped byte, truncation, swapped bytes, damaged pack: detected, reported, repaired', async () => {
    const box = await Sandbox.create();
    try {
      const store = box.path('store');
      const repo = await makeRepo(box);
      const remote = box.path('remote.git');
      await box.git(box.root, ['init', '-q', '--bare', remote]);
      const files = {
        'flip.pt': randomBytesSeeded(200_000, 1),
        'trunc.pt': randomBytesSeeded(200_000, 2),
        'swap.pt': randomBytesSeeded(200_000, 3),
        'other.pt': randomBytesSeeded(200_000, 4),
        'chunked.pt': randomBytesSeeded(3_000_000, 5),
        'packed.pt': randomBytesSeeded(150_000, 6),
      };
      await box.git(repo, ['remote', 'add', 'origin', `gitml::${remote}`]);
      // Whole objects (chunking off, or a store from before packing), then a chunked and a packed one.
      const whole = ['flip.pt', 'trunc.pt', 'swap.pt', 'other.pt'];
      for (const name of whole) await fsp.writeFile(path.join(repo, name), files[name as keyof typeof files]);
      await box.git(repo, ['add', '.']);
      await box.git(repo, ['commit', '-q', '-m', 'whole files']);
      await box.git(repo, ['push', '-q', 'origin', 'main'], { env: { GITML_CHUNKING: 'false' } });
      for (const name of ['chunked.pt', 'packed.pt']) await fsp.writeFile(path.join(repo, name), files[name as keyof typeof files]);
      await box.git(repo, ['add', '.']);
      await box.git(repo, ['commit', '-q', '-m', 'chunked and packed']);
      await box.git(repo, ['push', '-q', 'origin', 'main']);

      const flip = await fsp.readFile(objectFile(store, sha256(files['flip.pt'])));
      flip[777] = flip[777]! ^ 0x01;
      await overwrite(objectFile(store, sha256(files['flip.pt'])), flip);
      await overwrite(objectFile(store, sha256(files['trunc.pt'])), files['trunc.pt'].subarray(0, 150_000));
      await overwrite(objectFile(store, sha256(files['swap.pt'])), files['other.pt']);
      // One pack holds the packed object and the chunks: a byte flipped in each.
      const packed = storedAt(store, sha256(files['packed.pt']));
      if (packed?.kind !== 'packed') throw new Error('packed.pt is not packed');
      flipStoredByte(store, sha256(files['packed.pt']), 4321);
      const inChunks = packed.offset === 0 ? packed.length + 100 : 100;
      const packBytes = await fsp.readFile(packed.file);
      packBytes[inChunks] = packBytes[inChunks]! ^ 0xff;
      await overwrite(packed.file, packBytes);
      const damaged = ['flip.pt', 'trunc.pt', 'swap.pt', 'chunked.pt', 'packed.pt'];

      const clone = box.path('clone');
      const c = await box.run(box.root, 'git', ['clone', `gitml::${remote}`, clone]);
      let detected = 0;
      for (const name of damaged) {
        if (c.stderr.includes(`'${name}'`) && c.stderr.includes(sha256(files[name as keyof typeof files]).slice(0, 12))) detected++;
        const oid = sha256(files[name as keyof typeof files]);
        // Nothing damaged in the work tree or the cache.
        const onDisk = await fsp.readFile(path.join(clone, name)).catch(() => null);
        if (onDisk && onDisk.length === files[name as keyof typeof files].length) expect(sha256(onDisk)).toBe(oid);
        expect(fs.existsSync(cachedObjectPath(clone, oid))).toBe(false);
      }
      expect(sha256(await fsp.readFile(path.join(clone, 'other.pt')))).toBe(sha256(files['other.pt']));

      const fsck = await box.gitml(repo, ['fsck', '--store', '--json']);
      expect(fsck.code).toBe(2);
      const reported = JSON.parse(fsck.stdout).problems.map((p: { path: string }) => p.path).sort();
      expect(reported).toEqual([...damaged].sort());

      const before = await checkRemote(remote, `file://${store}`, box.env);
      const repair = await box.gitml(repo, ['push', '--repair', '--json']);
      expect(repair.code).toBe(0);
      const repaired = JSON.parse(repair.stdout).repaired.map((r: { path: string }) => r.path).sort();
      expect(repaired).toEqual([...damaged].sort());
      expect((await box.gitml(repo, ['fsck', '--store'])).code).toBe(0);
      const after = await checkRemote(remote, `file://${store}`, box.env);
      expect(after.dangling).toEqual([]);
      const clone2 = box.path('clone2');
      await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone2]);
      for (const [name, data] of Object.entries(files)) expect(sha256(await fsp.readFile(path.join(clone2, name)))).toBe(sha256(data));
      report({
        fault: 'damaged objects in the store (flipped byte, truncated, swapped bytes, damaged pack: chunked and packed)',
        cases: damaged.length,
        passed: Math.min(detected, repaired.length),
        bytesLost: 0,
        danglingPointers: after.dangling.length,
        secretsLeaked: 0,
        notes: `detected on clone ${detected}/5, fsck --store ${reported.length}/5, repaired ${repaired.length}/5; before repair ${before.dangling.length} unreadable`,
      });
      expect(detected).toBe(damaged.length);
    } finally {
      await box.cleanup();
    }
  });
});
