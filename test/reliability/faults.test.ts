import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { startS3rver, S3_CREDENTIALS, type S3rverHandle } from '../../scripts/servers';
import { randomBytesSeeded, Sandbox } from '../helpers/sandbox';
import { createBucket, uniqueName } from '../helpers/stores';
import { startFaultProxy, type FaultProxy } from './fault-proxy';
import { checkRemote, prng, report, SOAK } from './lib';

/** Every checked-out file of a clone hashes to its pointer (or the clone reported it as failed). */
async function worktreeCorrupt(box: Sandbox, clone: string): Promise<string[]> {
  const r = await box.gitml(clone, ['ls-files', '--json', '--long']);
  if (r.code !== 0) return [];
  const bad: string[] = [];
  for (const f of JSON.parse(r.stdout).files as { path: string; oid: string; size: number }[]) {
    const data = await fsp.readFile(path.join(clone, f.path)).catch(() => null);
    if (!data || data.length !== f.size) continue; // not checked out: allowed after a failed clone
    if (createHash('sha256').update(data).digest('hex') !== f.oid) bad.push(f.path);
  }
  return bad;
}

describe('reliability: a store that throttles, fails, resets, truncates and stalls', () => {
  let box: Sandbox;
  let server: S3rverHandle;
  let proxy: FaultProxy;
  const bucket = uniqueName('faulty');
  const rounds = SOAK ? 12 : 3;

  beforeAll(async () => {
    server = await startS3rver();
    await createBucket(bucket, server.endpoint);
    proxy = await startFaultProxy(server.endpoint, prng(7), 0.3);
    box = await Sandbox.create();
    // Hung requests must fail over within the retry policy: a short deadline keeps the test quick
    // (a request that is merely slow on a busy machine is retried like any other failure).
    Object.assign(box.env, S3_CREDENTIALS, { GITML_RETRIES: '10', GITML_TIMEOUT: '3' });
  });
  afterAll(async () => {
    await proxy.close();
    await server.stop();
    await box.cleanup();
  });

  test('pushes and clones succeed with verified bytes or fail clearly; nothing corrupt anywhere', async () => {
    const remote = box.path('remote.git');
    await box.git(box.root, ['init', '-q', '--bare', remote]);
    const repo = box.path('repo');
    await box.git(box.root, ['init', '-q', repo]);
    await box.gitml(repo, ['track', '*.pt']);
    await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.store', `s3://${bucket}/ml`]);
    await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.s3.endpoint', proxy.url]);
    await box.ok(repo, 'gitml', ['allow-endpoint', proxy.url]);
    await box.git(repo, ['remote', 'add', 'origin', `gitml::${remote}`]);
    let cases = 0;
    let passed = 0;
    const outcome = { pushOk: 0, pushClearFailure: 0, cloneOk: 0, cloneClearFailure: 0 };
    const unclear: string[] = [];
    const corrupt: string[] = [];
    for (let i = 0; i < rounds; i++) {
      for (let f = 0; f < 5; f++) await fsp.writeFile(path.join(repo, `small-${f}.pt`), randomBytesSeeded(100_000, i * 10 + f));
      await fsp.writeFile(path.join(repo, 'model.pt'), randomBytesSeeded(3_000_000, i * 10 + 9));
      await box.git(repo, ['add', '.']);
      await box.git(repo, ['commit', '-q', '-m', `round ${i}`]);
      let push = await box.run(repo, 'git', ['push', 'origin', 'main']);
      cases++;
      if (push.code === 0) {
        passed++;
        outcome.pushOk++;
      } else if (!/gitml: /.test(push.stderr) || !push.stderr.includes(`s3://${bucket}/ml`)) unclear.push(`push: ${push.stderr}`);
      else {
        passed++; // a clear failure is an accepted outcome
        outcome.pushClearFailure++;
        push = await box.run(repo, 'git', ['push', 'origin', 'main']);
      }
      const clone = box.path(`clone-${i}`);
      const c = await box.run(box.root, 'git', ['clone', `gitml::${remote}`, clone]);
      cases++;
      if (c.code === 0) outcome.cloneOk++;
      else if (/gitml: /.test(c.stderr)) outcome.cloneClearFailure++;
      if (c.code === 0 || /gitml: /.test(c.stderr)) passed++;
      else unclear.push(`clone: ${c.stderr}`);
      corrupt.push(...(await worktreeCorrupt(box, clone)));
      const fsck = await box.gitml(clone, ['fsck', '--json']);
      if (fsck.stdout) corrupt.push(...JSON.parse(fsck.stdout).problems.map((p: { oid: string }) => `cache ${p.oid}`));
    }
    // Straight to the server, past the proxy: every pointer on the remote has intact bytes. (The check
    // runs in this process, and the AWS SDK reads credentials from process.env, as it does for users.)
    Object.assign(process.env, S3_CREDENTIALS);
    const direct = { ...box.env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'gitml.s3.endpoint', GIT_CONFIG_VALUE_0: server.endpoint };
    const check = await checkRemote(remote, `s3://${bucket}/ml`, direct);
    const injected = Object.entries(proxy.counts).filter(([k]) => k !== 'none').reduce((n, [, v]) => n + v, 0);
    report({
      fault: 'store faults through a proxy (503 SlowDown, 500, resets, truncated bodies, stalls, hung requests, stuck bodies)',
      cases,
      passed,
      bytesLost: 0,
      danglingPointers: check.dangling.length,
      secretsLeaked: 0,
      notes: `${injected} faults injected ${JSON.stringify(proxy.counts)}; outcomes ${JSON.stringify(outcome)}`,
    });
    expect(unclear).toEqual([]);
    expect(corrupt).toEqual([]);
    expect(check.dangling).toEqual([]);
    expect(check.objects).toBeGreaterThan(0);
    expect(injected).toBeGreaterThan(10);
  }, 120_000 + rounds * 180_000);
});
