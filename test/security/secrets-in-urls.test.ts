import fsp from 'node:fs/promises';
import path from 'node:path';
import { credentialsIn, redactText, redactUrl } from '../../src/url-secrets';
import { makeRepo, Sandbox } from '../helpers/sandbox';
import { securityReport } from './lib';

const TOKEN = 'ghp_SECRETTOKEN1234567890';
const SAS = 'sv=2024-01-01&ss=b&srt=co&sp=rl&se=2099-01-01&sig=SECRETSIG%3D';

describe('security: credentials in URLs are refused where gitml takes a URL, and redacted wherever one is printed', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await Sandbox.create();
  });
  afterAll(() => box.cleanup());

  test('what counts as a credential in a URL', () => {
    const secret = [
      `http://${TOKEN}@git.example.com/train.git`,
      `https://user:${TOKEN}@git.example.com/train.git`,
      `https://git.example.com/train.git?access_token=${TOKEN}`,
      `https://acct.blob.core.windows.net/c/p?${SAS}`,
      `https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Credential=def`,
      `s3://key:secret@bucket/prefix`,
      `azure://acct/container/prefix?${SAS}`,
    ];
    const clean = ['https://git.example.com/train.git', 'git@github.com:org/repo.git', 'ssh://git@host/repo.git', 's3://bucket/prefix', 'file:///srv/store', '/srv/git/repo.git'];
    expect(secret.filter((u) => credentialsIn(u) === null)).toEqual([]);
    expect(clean.filter((u) => credentialsIn(u) !== null)).toEqual([]);
    for (const u of secret) {
      expect(redactUrl(u)).not.toContain(TOKEN);
      expect(redactUrl(u)).not.toContain('SECRETSIG');
    }
    expect(redactText(`fatal: unable to access 'https://x:${TOKEN}@host/r.git/': 403`)).not.toContain(TOKEN);
  });

  test('a run repository with a token as its user name is refused, and the token is printed nowhere', async () => {
    const file = box.path('gitconfig.json');
    let passed = 0;
    for (const repo of [`http://${TOKEN}@127.0.0.1:9/train.git`, `https://127.0.0.1:9/train.git?access_token=${TOKEN}`]) {
      await fsp.writeFile(file, JSON.stringify({ repo, branch: 'main' }));
      const r = await box.gitml(box.root, ['run', '--git-config', file, '--', 'true']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/"repo" .* is refused: (it contains a user name|its query string holds a credential)/);
      expect(r.stderr).toContain('"token"');
      expect(r.stderr + r.stdout).not.toContain(TOKEN);
      passed++;
    }
    securityReport({ case: 'run: token in the repository URL', cases: 2, passed, credentialsSent: 0 });
  });

  test('a SAS written into a store URL is refused (never a key prefix), and neither the error nor gitml env shows it', async () => {
    const repo = await makeRepo(box, 'sas');
    await fsp.writeFile(path.join(repo, 'm.pt'), 'weights\n');
    await box.git(repo, ['add', 'm.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'm']);
    let passed = 0;
    for (const url of [`azure://devstoreaccount1/models/team?${SAS}`, `https://devstoreaccount1.blob.core.windows.net/models/team?${SAS}`, `abfss://models@devstoreaccount1.dfs.core.windows.net/team?${SAS}`]) {
      await box.git(repo, ['config', 'gitml.store', url]);
      const env = await box.gitml(repo, ['env']);
      const envJson = await box.gitml(repo, ['env', '--json']);
      const fetch = await box.gitml(repo, ['fetch']);
      expect(fetch.code).toBe(1);
      expect(fetch.stderr).toMatch(/store URL .* is refused: its query string holds a credential/);
      expect(fetch.stderr).toContain('AZURE_STORAGE_SAS_TOKEN');
      for (const out of [env.stdout, env.stderr, envJson.stdout, fetch.stdout, fetch.stderr]) expect(out).not.toContain('SECRETSIG');
      passed++;
    }
    await box.git(repo, ['config', '--unset', 'gitml.store']);
    securityReport({ case: 'store URL with a SAS query', cases: 3, passed, credentialsSent: 0 });
  });

  test('a token in a git remote URL never reaches gitml\'s messages', async () => {
    const repo = await makeRepo(box, 'remote-token');
    await fsp.writeFile(path.join(repo, 'x.pt'), 'model\n');
    await box.git(repo, ['add', 'x.pt']);
    await box.git(repo, ['commit', '-q', '-m', 'x']);
    await box.git(repo, ['remote', 'add', 'origin', `gitml::http://oauth2:${TOKEN}@127.0.0.1:9/nothing.git`]);
    const push = await box.run(repo, 'git', ['push', 'origin', 'main']);
    const gitmlPush = await box.gitml(repo, ['push', 'origin']);
    expect(push.code).not.toBe(0);
    expect(gitmlPush.code).not.toBe(0);
    const ours = [push.stderr, gitmlPush.stderr, gitmlPush.stdout].join('\n').split('\n').filter((l) => l.startsWith('gitml'));
    securityReport({ case: 'token in a git remote URL (messages)', cases: 1, passed: ours.every((l) => !l.includes(TOKEN)) ? 1 : 0, credentialsSent: 0 });
    for (const line of ours) expect(line).not.toContain(TOKEN);
  });
});
