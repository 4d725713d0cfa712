import fsp from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { REPOSITORY_KEYS, type Setting } from '../../src/config';
import { isGitmlError } from '../../src/errors';
import { checkedEndpoint, type SettingsView } from '../../src/store/endpoint';
import { makeRepoWithRemote, randomBytesSeeded, Sandbox } from '../helpers/sandbox';
import { securityReport } from './lib';

/** A host that records every request it gets (an attacker's listener), answering 403. */
async function listener(): Promise<{ url: string; requests: { method: string; url: string; headers: http.IncomingHttpHeaders }[]; close(): Promise<void> }> {
  const requests: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code></Error>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => server.close(() => r())) };
}

function view(values: Record<string, Setting[]>): SettingsView {
  return {
    get: (key) => values[key.toLowerCase()]?.at(-1),
    getAllFromUser: (key) => (values[key.toLowerCase()] ?? []).filter((s) => s.origin === 'user'),
  };
}
const fromRepo = (value: string): Setting => ({ value, source: '.gitmlconfig in 1234abcd', origin: 'repository', baseDir: '/' });
const fromUser = (value: string): Setting => ({ value, source: 'git config (file:/home/me/.gitconfig)', origin: 'user', baseDir: '/' });

describe('security: settings committed in a repository never direct the user\'s credentials', () => {
  let box: Sandbox;
  let repo: string;
  let remote: string;
  beforeAll(async () => {
    box = await Sandbox.create();
    ({ repo, remote } = await makeRepoWithRemote(box));
    await fsp.writeFile(path.join(repo, 'model.pt'), randomBytesSeeded(300_000, 5));
    await box.git(repo, ['add', 'model.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'model']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
  });
  afterAll(() => box.cleanup());

  /** The repository's author points the committed store settings at their own host. */
  async function hostileCommit(lines: [string, string][]): Promise<void> {
    await box.git(repo, ['config', '-f', '.gitmlconfig', '--remove-section', 'gitml']);
    for (const [k, v] of lines) await box.git(repo, ['config', '-f', '.gitmlconfig', k, v]);
    await box.git(repo, ['commit', '-q', '-am', 'move the store']);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
  }

  const cases = [
    {
      name: 'Azure SAS token to a repository-chosen endpoint',
      key: 'gitml.azure.endpoint',
      settings: (url: string): [string, string][] => [
        ['gitml.store', 'azure://victim/models/team'],
        ['gitml.azure.endpoint', `${url}/victim`],
      ],
      env: { AZURE_STORAGE_SAS_TOKEN: 'sv=2024-01-01&ss=b&sig=SECRETSASSIGNATURE' },
      secret: 'SECRETSASSIGNATURE',
    },
    {
      name: 'AWS keys and session token to a repository-chosen endpoint',
      key: 'gitml.s3.endpoint',
      settings: (url: string): [string, string][] => [
        ['gitml.store', 's3://victim-bucket/models'],
        ['gitml.s3.endpoint', url],
      ],
      env: { AWS_ACCESS_KEY_ID: 'AKIAVICTIMKEYID0000', AWS_SECRET_ACCESS_KEY: 'victimsecret', AWS_SESSION_TOKEN: 'SECRETSESSIONTOKEN' },
      secret: 'AKIAVICTIMKEYID0000',
    },
  ];

  test.each(cases)('$name: a plain clone sends nothing, and says how to approve', async (c) => {
    const attacker = await listener();
    try {
      await hostileCommit(c.settings(attacker.url));
      const clone = box.path(`clone-${c.key}`);
      const r = await box.run(box.root, 'git', ['clone', `gitml::${remote}`, clone], { env: { ...c.env, GITML_RETRIES: '0' } });
      const leaked = attacker.requests.filter((q) => JSON.stringify(q).includes(c.secret)).length;
      securityReport({ case: `${c.name} (not approved)`, cases: 1, passed: attacker.requests.length === 0 ? 1 : 0, credentialsSent: leaked, notes: `${attacker.requests.length} request(s) reached the host` });
      expect(attacker.requests).toEqual([]);
      expect(r.stderr).toContain(c.key);
      expect(r.stderr).toMatch(/\.gitmlconfig in [0-9a-f]{12}/);
      expect(r.stderr).toContain(`gitml allow-endpoint ${attacker.url}`);
      expect(r.stderr).not.toContain(c.secret);
      expect(r.code).not.toBe(0);

      // The same clone once the person approved the host: now (and only now) it is contacted.
      const approved = box.path(`approved-${c.key}`);
      await box.ok(box.root, 'gitml', ['allow-endpoint', attacker.url]);
      await box.run(box.root, 'git', ['clone', `gitml::${remote}`, approved], { env: { ...c.env, GITML_RETRIES: '0' } });
      expect(attacker.requests.length).toBeGreaterThan(0);
      await box.ok(box.root, 'gitml', ['allow-endpoint', '--remove', attacker.url]);
    } finally {
      await attacker.close();
    }
  });

  test('gitml.s3.profile (which identity signs) is never read from the repository', async () => {
    await hostileCommit([
      ['gitml.store', 's3://victim-bucket/models'],
      ['gitml.s3.profile', 'production-admin'],
    ]);
    const env = JSON.parse((await box.ok(repo, 'gitml', ['env', '--json'])).stdout);
    securityReport({ case: 'gitml.s3.profile from .gitmlconfig', cases: 1, passed: env.settings['gitml.s3.profile'] === undefined ? 1 : 0, credentialsSent: 0 });
    expect(env.settings['gitml.s3.profile']).toBeUndefined();
    expect(env.settings['gitml.store'].origin).toBe('repository');
  });

  test('the endpoint policy: cloud domains pass, plain http only to loopback, approvals only from the user', () => {
    const ok = (kind: 's3' | 'azure', s: Setting, approvals: Setting[] = []) => checkedEndpoint(kind, `gitml.${kind}.endpoint`, view({ [`gitml.${kind}.endpoint`]: [s], 'gitml.allowedendpoint': approvals }));
    const refused = (f: () => unknown) => {
      try {
        f();
        return false;
      } catch (e) {
        return isGitmlError(e);
      }
    };
    const checks: [string, boolean][] = [
      ['repo: AWS domain', ok('s3', fromRepo('https://s3.eu-west-1.amazonaws.com')) === 'https://s3.eu-west-1.amazonaws.com'],
      ['repo: AWS China domain', ok('s3', fromRepo('https://s3.cn-north-1.amazonaws.com.cn')) !== undefined],
      ['repo: Azure blob domain', ok('azure', fromRepo('https://acct.blob.core.windows.net')) !== undefined],
      ['repo: Azure US Gov domain', ok('azure', fromRepo('https://acct.blob.core.usgovcloudapi.net')) !== undefined],
      ['repo: look-alike domain', refused(() => ok('s3', fromRepo('https://amazonaws.com.evil.example')))],
      ['repo: Azure domain for S3', refused(() => ok('s3', fromRepo('https://acct.blob.core.windows.net')))],
      ['repo: plain http to a cloud domain', refused(() => ok('s3', fromRepo('http://s3.amazonaws.com')))],
      ['repo: any other host', refused(() => ok('s3', fromRepo('https://minio.example.com')))],
      ['repo: approved by the user', ok('s3', fromRepo('https://minio.example.com:9000/'), [fromUser('https://minio.example.com:9000')]) !== undefined],
      ['repo: approval of another port', refused(() => ok('s3', fromRepo('https://minio.example.com:9000'), [fromUser('https://minio.example.com')]))],
      ['repo: "approval" written in the repository itself', refused(() => ok('s3', fromRepo('https://minio.example.com'), [fromRepo('https://minio.example.com')]))],
      ['user: own https endpoint', ok('s3', fromUser('https://minio.internal:9000')) !== undefined],
      ['user: plain http to another host', refused(() => ok('s3', fromUser('http://minio.internal:9000')))],
      ['user: plain http to loopback', ok('s3', fromUser('http://127.0.0.1:9000')) !== undefined],
      ['user: credentials in the endpoint URL', refused(() => ok('s3', fromUser('https://key:secret@minio.internal')))],
    ];
    const failed = checks.filter(([, pass]) => !pass).map(([name]) => name);
    securityReport({ case: 'endpoint policy decisions', cases: checks.length, passed: checks.length - failed.length, credentialsSent: 0 });
    expect(failed).toEqual([]);
  });

  test('the keys a repository may set are an explicit list, and none names a program or a credential', () => {
    // Adding a key here is a decision: read docs/security.md first.
    expect(REPOSITORY_KEYS.map((r) => r.source)).toEqual([
      '^gitml\\.store$',
      '^gitml\\.fetch$',
      '^gitml\\.concurrency$',
      '^gitml\\.retries$',
      '^gitml\\.chunking$',
      '^gitml\\.directcheckout$',
      '^gitml\\.s3\\.region$',
      '^gitml\\.s3\\.forcepathstyle$',
      '^gitml\\.s3\\.endpoint$',
      '^gitml\\.azure\\.endpoint$',
      '^gitml\\.stage\\.[a-z0-9._-]+\\.branch$',
    ]);
    for (const r of REPOSITORY_KEYS) expect(r.source).not.toMatch(/helper|command|cmd|program|exec|hook|editor|pager|proxy|ssh|profile|credential|token|key|cachedir|allowed/i);
  });
});
