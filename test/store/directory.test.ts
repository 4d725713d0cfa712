import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DirectoryStore } from '../../src/store/directory';
import { parseStoreUrl } from '../../src/store/open';
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

  test('store URLs: file://, absolute and relative paths; unknown schemes are refused with the forms', () => {
    expect(parseStoreUrl({ url: 'file:///mnt/nfs/store', baseDir: '/repo' })).toEqual({ kind: 'directory', root: '/mnt/nfs/store' });
    expect(parseStoreUrl({ url: '/srv/store', baseDir: '/repo' })).toEqual({ kind: 'directory', root: '/srv/store' });
    expect(parseStoreUrl({ url: '../store', baseDir: '/work/repo' })).toEqual({ kind: 'directory', root: '/work/store' });
    expect(() => parseStoreUrl({ url: 'ftp://host/x', baseDir: '/' })).toThrow(/not supported/);
    expect(() => parseStoreUrl({ url: 'file://otherhost/x', baseDir: '/' })).toThrow(/invalid store URL/);
    expect(() => parseStoreUrl({ url: '  ', baseDir: '/' })).toThrow(/empty/);
  });
});
