import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DirectoryStore } from '../../src/store/directory';
import { parseStoreUrl } from '../../src/store/open';
import type { BodySource } from '../../src/store/store';
import { bodyOf, describeStoreContract } from './contract';

describeStoreContract('directory', async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-store-'));
  return { store: new DirectoryStore(root), cleanup: () => fsp.rm(root, { recursive: true, force: true }) };
});

describe('directory store specifics', () => {
  test('a store directory that does not exist is a clear error, never created silently (an unmounted NFS)', async () => {
    const store = new DirectoryStore(path.join(os.tmpdir(), 'gitml-no-such-dir-' + process.pid));
    await expect(store.stat('objects/aa/bb/x')).rejects.toMatchObject({ code: 'E_STORE_IO', message: expect.stringContaining('does not exist') });
    await expect(store.put('objects/aa/bb/x', bodyOf(Buffer.from('x')))).rejects.toMatchObject({ code: 'E_STORE_IO' });
  });

  test('keys are validated: no traversal, no absolute paths', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-store-'));
    const store = new DirectoryStore(root);
    for (const key of ['../x', '/etc/passwd', 'objects/../../x', '.git/config', '', 'a//b']) {
      await expect(store.stat(key)).rejects.toMatchObject({ code: 'E_UNSAFE_PATH' });
    }
    await fsp.rm(root, { recursive: true });
  });

  test('a sealed local file never passes through the process: linked on its file system, copied by the kernel across', async () => {
    const bytes = Buffer.from('a sealed pack\n'.repeat(1000));
    // open() is the streaming path: it must not be taken while the file can be linked or copied.
    const sealed = (file: string): BodySource => ({
      size: bytes.length,
      localFile: file,
      open: () => {
        throw new Error('the bytes were streamed');
      },
    });
    const dirs: string[] = [];
    const tempDir = async (parent: string) => {
      const dir = await fsp.mkdtemp(path.join(parent, 'gitml-local-'));
      dirs.push(dir);
      return dir;
    };
    try {
      const root = await tempDir(os.tmpdir());
      const store = new DirectoryStore(root);
      const here = path.join(await tempDir(os.tmpdir()), 'pack');
      await fsp.writeFile(here, bytes);
      expect(await store.put('packs/linked', sealed(here))).toBe('created');
      expect((await fsp.stat(path.join(root, 'packs/linked'))).ino).toBe((await fsp.stat(here)).ino);
      // Another file system where the machine has one (tmpfs on Linux): a copy, not a link.
      if (fs.existsSync('/dev/shm') && (await fsp.stat('/dev/shm')).dev !== (await fsp.stat(root)).dev) {
        const there = path.join(await tempDir('/dev/shm'), 'pack');
        await fsp.writeFile(there, bytes);
        expect(await store.put('packs/copied', sealed(there))).toBe('created');
        const stored = await fsp.stat(path.join(root, 'packs/copied'));
        expect(stored.ino).not.toBe((await fsp.stat(there)).ino);
        expect((await fsp.readFile(path.join(root, 'packs/copied'))).equals(bytes)).toBe(true);
        expect(stored.mode & 0o222).toBe(0);
      }
      // Neither possible (the file is gone): the bytes are streamed from open().
      expect(await store.put('packs/streamed', { ...bodyOf(bytes), localFile: path.join(root, 'no-such-pack') })).toBe('created');
      expect((await fsp.readFile(path.join(root, 'packs/streamed'))).equals(bytes)).toBe(true);
    } finally {
      for (const dir of dirs) await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  test('store URLs: file://, absolute and relative paths; unknown schemes are refused with the forms', () => {
    expect(parseStoreUrl({ url: 'file:///mnt/nfs/store', baseDir: '/repo' })).toEqual({ kind: 'directory', root: '/mnt/nfs/store' });
    expect(parseStoreUrl({ url: '/srv/store', baseDir: '/repo' })).toEqual({ kind: 'directory', root: '/srv/store' });
    expect(parseStoreUrl({ url: '../store', baseDir: '/work/repo' })).toEqual({ kind: 'directory', root: '/work/store' });
    expect(() => parseStoreUrl({ url: 'ftp://host/x', baseDir: '/' })).toThrow(/not supported/);
    expect(() => parseStoreUrl({ url: 'file://otherhost/x', baseDir: '/' })).toThrow(/invalid store URL/);
    expect(() => parseStoreUrl({ url: '  ', baseDir: '/' })).toThrow(/empty/);
  });
});
