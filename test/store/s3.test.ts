import { S3Store } from '../../src/store/s3';
import { S3_CREDENTIALS } from '../../scripts/servers';
import { createBucket, s3Endpoint, uniqueName } from '../helpers/stores';
import { bodyOf, describeStoreContract, readAll } from './contract';

// The SDK reads credentials from the environment, as it would for a user.
Object.assign(process.env, S3_CREDENTIALS);

let bucket: string;
beforeAll(async () => {
  bucket = uniqueName('contract');
  await createBucket(bucket);
});

describeStoreContract('s3 (s3rver)', async () => ({
  store: new S3Store({ bucket, prefix: uniqueName('p'), endpoint: s3Endpoint() }),
  cleanup: async () => undefined,
}));

describe('s3 specifics', () => {
  test('large objects go up in parts and come back whole (ranged reads too)', async () => {
    const store = new S3Store({ bucket, prefix: 'multi', endpoint: s3Endpoint(), multipartThreshold: 6 << 20, partSize: 5 << 20, partConcurrency: 3 });
    const data = Buffer.alloc(13 << 20);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i * 2654435761 >>> 0, i);
    const key = 'objects/aa/bb/' + 'ab'.repeat(32);
    expect(await store.put(key, bodyOf(data))).toBe('created');
    expect(await store.stat(key)).toMatchObject({ size: data.length });
    expect((await readAll(await store.get(key))).equals(data)).toBe(true);
    const part = await readAll(await store.get(key, { range: { start: (5 << 20) - 10, end: (5 << 20) + 10 } }));
    expect(part.equals(data.subarray((5 << 20) - 10, (5 << 20) + 10))).toBe(true);
    await store.close();
  });

  test('a missing bucket is one clear error naming the store and what to do', async () => {
    const store = new S3Store({ bucket: 'no-such-bucket-here', prefix: '', endpoint: s3Endpoint() });
    await expect(store.put('objects/aa/bb/' + 'cd'.repeat(32), bodyOf(Buffer.from('x')))).rejects.toMatchObject({
      code: 'E_STORE_IO',
      message: expect.stringContaining('s3://no-such-bucket-here'),
      hint: expect.stringContaining('Create the bucket'),
    });
    await store.close();
  });
});
