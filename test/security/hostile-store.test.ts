import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import { RssWatcher } from '../../scripts/rss';
import { formatPointer, parsePointer } from '../../src/pointer';
import { DIST, listFiles, makeRepoWithRemote, randomBytesSeeded, Sandbox } from '../helpers/sandbox';
import { securityReport } from './lib';
import { storedAt } from '../helpers/store-layout';

/**
 * A bucket someone else can write: hostile or damaged manifests, pack indexes, packs and keys. Each
 * case must end with an error that names the file and the store key, use bounded memory, and never
 * retry damage as if it were a network fault (retries are read from the debug log: no timing here).
 */
const RSS_LIMIT_MIB = 256;
const fan = (oid: string) => [oid.slice(0, 2), oid.slice(2, 4), oid];

interface World {
  box: Sandbox;
  repo: string;
  remote: string;
  store: string;
  big: { oid: string; size: number };
  small: { oid: string; size: number };
}

async function world(): Promise<World> {
  const box = await Sandbox.create();
  const { repo, remote } = await makeRepoWithRemote(box);
  await fsp.writeFile(path.join(repo, 'model.pt'), randomBytesSeeded(2 * 1024 * 1024 + 17, 41));
  await fsp.writeFile(path.join(repo, 'small.pt'), randomBytesSeeded(100_000, 42));
  await box.git(repo, ['add', '.']);
  await box.git(repo, ['commit', '-q', '-m', 'models']);
  await box.git(repo, ['push', '-q', 'origin', 'main']);
  const pointer = async (p: string) => parsePointer((await box.git(repo, ['cat-file', 'blob', `HEAD:${p}`])).stdout)!;
  return { box, repo, remote, store: box.path('store'), big: await pointer('model.pt'), small: await pointer('small.pt') };
}

async function writeStoreFile(file: string, data: Buffer | Readable): Promise<void> {
  await fsp.rm(file, { force: true, recursive: true });
  await fsp.mkdir(path.dirname(file), { recursive: true });
  if (Buffer.isBuffer(data)) await fsp.writeFile(file, data);
  else await pipeline(data, fs.createWriteStream(file));
}

/** A stream of `bytes` zero bytes, gzipped: a small file that unpacks to a lot. */
function gzipBomb(bytes: number): Readable {
  const block = Buffer.alloc(1 << 20, 0x20);
  let left = bytes;
  const source = new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const n = Math.min(left, block.length);
      left -= n;
      this.push(block.subarray(0, n));
    },
  });
  return source.pipe(createGzip({ level: 9 }));
}

/** Runs a gitml-driven git command with debug logging, watching the memory of every gitml process. */
async function runWatched(w: World, cwd: string, args: string[]): Promise<{ code: number; stderr: string; log: string; peakMiB: number; seconds: number }> {
  const logFile = w.box.path(`log-${Date.now()}.txt`);
  const watcher = new RssWatcher(DIST);
  watcher.start();
  const started = Date.now();
  const r = await w.box.run(cwd, 'git', args, { env: { GITML_LOG: 'debug', GITML_LOG_FILE: logFile } });
  const seconds = (Date.now() - started) / 1000;
  watcher.stop();
  const log = await fsp.readFile(logFile, 'utf8').catch(() => '');
  return { code: r.code, stderr: r.stderr, log, peakMiB: watcher.maxMiB(), seconds };
}

const cases: { name: string; file: 'model.pt' | 'small.pt'; damage: (w: World) => Promise<string>; expect: RegExp }[] = [
  {
    name: 'a gzip bomb as a manifest (200 MiB unpacked)',
    file: 'model.pt',
    damage: async (w) => {
      const key = `manifests/${fan(w.big.oid).join('/')}`;
      await writeStoreFile(path.join(w.store, key), gzipBomb(200 * 1024 * 1024));
      return key;
    },
    expect: /larger than the \d+ bytes it can be|unpacks to more than/,
  },
  {
    name: 'a small gzip bomb as a manifest (15 KiB that unpack to 15 MiB)',
    file: 'model.pt',
    damage: async (w) => {
      const key = `manifests/${fan(w.big.oid).join('/')}`;
      await writeStoreFile(path.join(w.store, key), gzipBomb(15 * 1024 * 1024));
      expect(fs.statSync(path.join(w.store, key)).size).toBeLessThan(21_000);
      return key;
    },
    expect: /unpacks to more than the \d+ bytes it can need/,
  },
  {
    name: 'a manifest of a million one-byte runs',
    file: 'model.pt',
    damage: async (w) => {
      const key = `manifests/${fan(w.big.oid).join('/')}`;
      const pack = listFiles(path.join(w.store, 'packs')).find((f) => f.endsWith('.pack'))!;
      const runs = Array.from({ length: 1_000_000 }, (_, i) => [0, i % 1000, 1]);
      await writeStoreFile(path.join(w.store, key), gzipSync(JSON.stringify({ version: 1, oid: w.big.oid, size: 1_000_000, packs: [path.basename(pack, '.pack')], runs })));
      return key;
    },
    expect: /larger than the \d+ bytes it can be|unpacks to more than|runs/,
  },
  {
    name: 'a pointer and manifest claiming 2^53-1 bytes',
    file: 'model.pt',
    damage: async (w) => {
      const huge = Number.MAX_SAFE_INTEGER;
      const pointer = formatPointer({ oid: w.big.oid, size: huge });
      await fsp.writeFile(path.join(w.repo, 'model.pt'), pointer);
      // git add would clean it (it is a pointer: it stays as it is).
      await w.box.git(w.repo, ['add', 'model.pt']);
      await w.box.git(w.repo, ['commit', '-q', '-m', 'huge claim']);
      await w.box.git(w.repo, ['push', '-q', 'origin', 'main'], { env: { GITML_STORE: w.store } }).catch(() => undefined);
      // The push refuses (nothing of that size is cached): the attacker writes the ref directly.
      const sha = (await w.box.git(w.repo, ['rev-parse', 'HEAD'])).stdout.trim();
      await w.box.git(w.repo, ['push', '-q', '--no-verify', w.remote, `${sha}:refs/heads/main`]);
      const key = `manifests/${fan(w.big.oid).join('/')}`;
      const pack = path.basename(listFiles(path.join(w.store, 'packs')).find((f) => f.endsWith('.pack'))!, '.pack');
      const runs = [[0, 0, 2 ** 52], [0, 0, huge - 2 ** 52]];
      await writeStoreFile(path.join(w.store, key), gzipSync(JSON.stringify({ version: 1, oid: w.big.oid, size: huge, packs: [pack], runs })));
      return key;
    },
    expect: /reads packs\/[0-9a-f]{64}\.pack up to byte 4503599627370496/,
  },
  {
    name: 'a pack cut short (its runs go past its end)',
    file: 'model.pt',
    damage: async (w) => {
      const pack = listFiles(path.join(w.store, 'packs')).find((f) => f.endsWith('.pack'))!;
      const data = await fsp.readFile(pack);
      await writeStoreFile(pack, data.subarray(0, 1000));
      return `manifests/${fan(w.big.oid).join('/')}`;
    },
    expect: /up to byte \d+, but that pack is 1000 bytes/,
  },
  {
    name: 'a pack that is gone',
    file: 'model.pt',
    damage: async (w) => {
      const pack = listFiles(path.join(w.store, 'packs')).find((f) => f.endsWith('.pack'))!;
      await fsp.rm(pack);
      return `manifests/${fan(w.big.oid).join('/')}`;
    },
    expect: /which is not in the store/,
  },
  {
    name: 'a key that is a directory',
    file: 'model.pt',
    damage: async (w) => {
      const key = `manifests/${fan(w.big.oid).join('/')}`;
      await fsp.rm(path.join(w.store, key), { force: true });
      await fsp.mkdir(path.join(w.store, key, 'x'), { recursive: true });
      return key;
    },
    expect: /is a directory/,
  },
];

describe('security: hostile or damaged store content ends quickly, in bounded memory, as damage', () => {
  test.each(cases)('$name', async (c) => {
    const w = await world();
    try {
      const key = await c.damage(w);
      const clone = w.box.path('clone');
      const r = await runWatched(w, w.box.root, ['clone', `gitml::${w.remote}`, clone]);
      const retried = (r.log.match(/retrying/g) ?? []).length;
      const ok = r.code !== 0 && r.stderr.includes(c.file) && r.stderr.includes(key) && retried === 0 && r.peakMiB < RSS_LIMIT_MIB;
      securityReport({ case: `store: ${c.name}`, cases: 1, passed: ok ? 1 : 0, peakRssMiB: Math.round(r.peakMiB), seconds: Math.round(r.seconds * 10) / 10, notes: `${retried} retries` });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(c.file);
      expect(r.stderr).toContain(key);
      expect(r.stderr).toMatch(c.expect);
      expect(r.stderr).toContain('gitml fsck --store');
      expect(retried).toBe(0);
      expect(r.peakMiB).toBeLessThan(RSS_LIMIT_MIB);
      // Nothing wrong was written: the file is absent or still its pointer.
      const written = await fsp.readFile(path.join(clone, c.file)).catch(() => null);
      if (written) expect(parsePointer(written)).not.toBeNull();
    } finally {
      await w.box.cleanup();
    }
  });

  test('a bomb of a pack index is skipped, the push stores the chunks again, and a clone verifies', async () => {
    const w = await world();
    try {
      const idx = listFiles(path.join(w.store, 'packs')).find((f) => f.endsWith('.idx'))!;
      const pack = path.basename(idx, '.idx');
      const entries = Array.from({ length: 600_000 }, (_, i) => ['a'.repeat(64), i * 16, 16]);
      await writeStoreFile(idx, gzipSync(JSON.stringify({ version: 1, pack, chunks: entries })));
      // A new version that shares most chunks with the first.
      const data = randomBytesSeeded(2 * 1024 * 1024 + 17, 41);
      data[100] = data[100]! ^ 1;
      await fsp.writeFile(path.join(w.repo, 'model.pt'), data);
      await w.box.git(w.repo, ['commit', '-q', '-am', 'v2']);
      const r = await runWatched(w, w.repo, ['push', 'origin', 'main']);
      const retried = (r.log.match(/retrying/g) ?? []).length;
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`pack index ${pack.slice(0, 12)}`);
      expect(r.stderr).toContain('gitml fsck --store');
      expect(retried).toBe(0);
      expect(r.peakMiB).toBeLessThan(RSS_LIMIT_MIB);
      const clone = w.box.path('clone-after');
      await w.box.git(w.box.root, ['clone', '-q', `gitml::${w.remote}`, clone]);
      expect((await fsp.readFile(path.join(clone, 'model.pt'))).equals(data)).toBe(true);
      securityReport({ case: 'store: a bomb of a pack index (push)', cases: 1, passed: 1, peakRssMiB: Math.round(r.peakMiB), seconds: Math.round(r.seconds * 10) / 10, notes: 'skipped with a warning; chunks stored again' });
    } finally {
      await w.box.cleanup();
    }
  });

  test("a pack index deleted or garbled: packed objects are found through the pack's own copy", async () => {
    const w = await world();
    try {
      const idx = listFiles(path.join(w.store, 'packs')).find((f) => f.endsWith('.idx'))!;
      const real = storedAt(w.store, w.small.oid);
      if (real?.kind !== 'packed') throw new Error('small.pt is not packed');
      await fsp.rm(idx);
      const clone = w.box.path('clone-noidx');
      await w.box.git(w.box.root, ['clone', '-q', `gitml::${w.remote}`, clone]);
      expect((await fsp.readFile(path.join(clone, 'small.pt'))).equals(randomBytesSeeded(100_000, 42))).toBe(true);
      // An index that lies (an entry for the small object pointing at other bytes) is caught by the
      // object's hash, never handed to git.
      const pack = path.basename(idx, '.idx');
      const packSize = fs.statSync(path.join(w.store, 'packs', `${pack}.pack`)).size;
      const wrong = real.offset === 0 ? 1 : 0;
      await writeStoreFile(idx, gzipSync(JSON.stringify({ version: 1, pack, chunks: [[w.small.oid, wrong, w.small.size]] })));
      expect(packSize).toBeGreaterThan(w.small.size);
      const other = await Sandbox.create();
      try {
        const r = await other.run(other.root, 'git', ['clone', `gitml::${w.remote}`, other.path('lied')]);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain('small.pt');
        expect(r.stderr).toMatch(/damaged|other bytes/);
        expect(fs.existsSync(other.path('lied', 'small.pt')) && fs.readFileSync(other.path('lied', 'small.pt')).length === w.small.size).toBe(false);
      } finally {
        await other.cleanup();
      }
      securityReport({ case: "store: pack index gone or lying (packed objects)", cases: 2, passed: 2, notes: "gone: the pack's own copy is used; lying: the object's hash refuses it" });
    } finally {
      await w.box.cleanup();
    }
  });

  test('dedup never trusts an index whose pack is gone: the push uploads the chunks again and a fresh clone works', async () => {
    const w = await world();
    try {
      const pack = listFiles(path.join(w.store, 'packs')).find((f) => f.endsWith('.pack'))!;
      await fsp.rm(pack); // a lifecycle rule, an operator: the .idx stays
      const data = randomBytesSeeded(2 * 1024 * 1024 + 17, 41);
      data[5] = data[5]! ^ 1;
      await fsp.writeFile(path.join(w.repo, 'variant.pt'), data); // shares every chunk of model.pt but one
      await w.box.git(w.repo, ['add', '.']);
      await w.box.git(w.repo, ['commit', '-q', '-m', 'variant']);
      const push = await w.box.run(w.repo, 'git', ['push', 'origin', 'main']);
      expect(push.code).toBe(0);
      expect(push.stderr).toContain('its pack is not in the store');
      // The new file is whole in a fresh clone; model.pt, damaged before this push, is named as such.
      const clone = w.box.path('clone-pack');
      const r = await w.box.run(w.box.root, 'git', ['clone', `gitml::${w.remote}`, clone]);
      expect((await fsp.readFile(path.join(clone, 'variant.pt'))).equals(data)).toBe(true);
      expect(r.stderr).not.toContain('variant.pt');
      expect(r.stderr).toMatch(/model\.pt.*which is not in the store/);
      // And the damage it found is repairable from the clone that has the bytes.
      await w.box.ok(w.repo, 'gitml', ['push', '--repair']);
      const again = w.box.path('clone-repaired');
      await w.box.git(w.box.root, ['clone', '-q', `gitml::${w.remote}`, again]);
      data[5] = data[5]! ^ 1;
      expect((await fsp.readFile(path.join(again, 'model.pt'))).equals(data)).toBe(true);
      securityReport({ case: 'store: pack gone, index stays (dedup)', cases: 1, passed: 1, notes: 'new file stored again, 0 dangling pointers; old damage named and repaired' });
    } finally {
      await w.box.cleanup();
    }
  });
});
