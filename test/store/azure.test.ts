import { AzureStore } from '../../src/store/azure';
import { parseStoreUrl } from '../../src/store/open';
import { azureEndpoint, azureEnv, createContainer, uniqueName } from '../helpers/stores';
import { bodyOf, describeStoreContract, readAll } from './contract';

let container: string;
beforeAll(async () => {
  container = uniqueName('contract');
  await createContainer(container);
});

function store(prefix: string, extra: Partial<ConstructorParameters<typeof AzureStore>[0]> = {}): AzureStore {
  return new AzureStore({ account: 'devstoreaccount1', container, prefix, endpoint: azureEndpoint(), display: `azure://devstoreaccount1/${container}/${prefix}`, ...extra }, azureEnv());
}

describeStoreContract('azure blob (azurite)', async () => ({ store: store(uniqueName('p')), cleanup: async () => undefined }));

describe('azure specifics', () => {
  test('large objects are staged as blocks and come back whole', async () => {
    const s = store('blocks', { multipartThreshold: 6 << 20, partSize: 4 << 20, partConcurrency: 3 });
    const data = Buffer.alloc(11 << 20);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i * 2246822519 >>> 0, i);
    const key = 'objects/aa/bb/' + 'ef'.repeat(32);
    expect(await s.put(key, bodyOf(data))).toBe('created');
    expect((await readAll(await s.get(key))).equals(data)).toBe(true);
  });

  test('account key and SAS-less shared key credentials work too', async () => {
    const key = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
    const s = new AzureStore(
      { account: 'devstoreaccount1', container, prefix: 'viakey', endpoint: azureEndpoint(), display: 'azure://devstoreaccount1/x' },
      { AZURE_STORAGE_KEY: key },
    );
    expect(await s.put('objects/aa/bb/' + '12'.repeat(32), bodyOf(Buffer.from('hello')))).toBe('created');
  });

  test('a wrong key is a clear credentials error', async () => {
    const s = new AzureStore(
      { account: 'devstoreaccount1', container, prefix: 'badkey', endpoint: azureEndpoint(), display: 'azure://devstoreaccount1/x' },
      { AZURE_STORAGE_KEY: Buffer.from('wrong key wrong key wrong key!!').toString('base64') },
    );
    await expect(s.stat('objects/aa/bb/' + '34'.repeat(32))).rejects.toMatchObject({ code: 'E_STORE_IO', hint: expect.stringContaining('AZURE_STORAGE') });
  });

  test('a missing container names the container', async () => {
    const s = store('x', { container: 'no-such-container' });
    await expect(s.put('objects/aa/bb/' + '56'.repeat(32), bodyOf(Buffer.from('x')))).rejects.toMatchObject({ hint: expect.stringContaining('Create the container') });
  });

  test('azure://, https blob and abfss URLs name the same account and container', () => {
    const forms = [
      'azure://acct1/models/team/a',
      'https://acct1.blob.core.windows.net/models/team/a',
      'abfss://models@acct1.dfs.core.windows.net/team/a',
      'abfs://models@acct1.dfs.core.windows.net/team/a/',
    ];
    for (const url of forms) expect(parseStoreUrl({ url, baseDir: '/' })).toEqual({ kind: 'azure', account: 'acct1', container: 'models', prefix: 'team/a' });
    expect(parseStoreUrl({ url: 's3://my-bucket/ml/store', baseDir: '/' })).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: 'ml/store' });
    expect(() => parseStoreUrl({ url: 's3://B/x', baseDir: '/' })).toThrow(/bucket/);
    expect(() => parseStoreUrl({ url: 'azure://acct1/models/../x', baseDir: '/' })).toThrow(/segment/);
    expect(() => parseStoreUrl({ url: 'azure://Bad_Account/models', baseDir: '/' })).toThrow(/storage account/);
  });
});

describe('azure SAS token', () => {
  test('a SAS token from AZURE_STORAGE_SAS_TOKEN is used as the credential', async () => {
    const { generateAccountSASQueryParameters, AccountSASPermissions, AccountSASResourceTypes, AccountSASServices, StorageSharedKeyCredential } = await import('@azure/storage-blob');
    const key = new StorageSharedKeyCredential('devstoreaccount1', 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==');
    const sas = generateAccountSASQueryParameters(
      {
        expiresOn: new Date(Date.now() + 3600_000),
        permissions: AccountSASPermissions.parse('rwdlac'),
        resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
        services: AccountSASServices.parse('b').toString(),
      },
      key,
    ).toString();
    const s = new AzureStore({ account: 'devstoreaccount1', container, prefix: 'viasas', endpoint: azureEndpoint(), display: 'azure://devstoreaccount1/x' }, { AZURE_STORAGE_SAS_TOKEN: sas });
    const k = 'objects/aa/bb/' + '78'.repeat(32);
    expect(await s.put(k, bodyOf(Buffer.from('via sas')))).toBe('created');
    expect((await readAll(await s.get(k))).toString()).toBe('via sas');
  });
});
