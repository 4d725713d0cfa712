import { PutObjectCommand } from '@aws-sdk/client-s3';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { githubRepoOf } from '../../src/assets/promote';
import { makeAssetRepo, makeRepo, randomBytesSeeded, Sandbox, sha256 } from '../helpers/sandbox';
import { createBucket, s3Client, s3Endpoint, s3Env, uniqueName } from '../helpers/stores';

describe('ML assets', () => {
  let box: Sandbox;
  let repo: string;
  let remote: string;
  let inputs: string;
  const model = randomBytesSeeded(1_500_000, 7);

  beforeAll(async () => {
    box = await Sandbox.create();
    ({ repo, remote } = await makeAssetRepo(box));
    await box.git(remote, ['config', 'uploadpack.allowFilter', 'true']);
    await box.git(repo, ['push', '-q', '-u', 'origin', 'main']);
    inputs = box.path('inputs');
    await fsp.mkdir(path.join(inputs, 'images'), { recursive: true });
    await fsp.writeFile(path.join(inputs, 'images', 'a.png'), randomBytesSeeded(5000, 1));
    await fsp.writeFile(path.join(inputs, 'images', 'b.png'), randomBytesSeeded(6000, 2));
    await fsp.writeFile(path.join(inputs, 'conda.yaml'), 'dependencies: [python=3.11, pytorch]\n');
    await fsp.writeFile(path.join(inputs, 'model.pt'), model);
  });
  afterAll(() => box.cleanup());

  const gitml = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = await box.gitml(repo, args, { env });
    if (r.code !== 0) throw new Error(`gitml ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r;
  };

  test('register, list, show; versions are immutable and numbered automatically', async () => {
    const d = JSON.parse((await gitml(['register', 'dataset', 'digits', path.join(inputs, 'images'), '--description', 'handwritten digits', '--tag', 'source=mnist', '--commit', '--json'])).stdout);
    expect(d.ref).toBe('datasets/digits@1');
    // One folder registered: its contents are the version (datasets/digits/1/a.png), as Azure ML stores it.
    expect(d.asset.digest.files.map((f: { path: string }) => f.path)).toEqual(['a.png', 'b.png']);
    expect(d.asset.spec).toMatchObject({ type: 'uri_folder', path: '.' });
    await gitml(['register', 'environment', 'torch', path.join(inputs, 'conda.yaml'), '--spec', 'conda_file=conda.yaml', '--spec', 'image=pytorch/pytorch:2.3', '--commit']);
    const m = JSON.parse(
      (await gitml(['register', 'model', 'mnist', path.join(inputs, 'model.pt'), '--input', 'datasets/digits@latest', '--input', 'environments/torch@1', '--spec', 'environment=environments/torch@1', '--spec', 'flavors.pytorch=2.3', '--commit', '--json'])).stdout,
    );
    expect(m.ref).toBe('models/mnist@1');
    expect(m.asset.lineage.inputs.map((i: { ref: string }) => i.ref)).toEqual(['datasets/digits@1', 'environments/torch@1']);
    expect(m.asset.spec.flavors).toEqual({ pytorch: '2.3' });
    // Files inside asset folders go through gitml; asset.yaml stays plain text.
    expect((await box.git(repo, ['cat-file', 'blob', 'HEAD:models/mnist/1/model.pt'])).stdout).toContain(`oid sha256:${sha256(model)}`);
    expect((await box.git(repo, ['cat-file', 'blob', 'HEAD:models/mnist/1/asset.yaml'])).stdout).toContain('type: model');

    const again = await box.gitml(repo, ['register', 'model', 'mnist', path.join(inputs, 'model.pt'), '--version', '1']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('immutable');
    expect(JSON.parse((await gitml(['register', 'model', 'mnist', path.join(inputs, 'model.pt'), '--commit', '--json'])).stdout).ref).toBe('models/mnist@2');

    const list = JSON.parse((await gitml(['assets', 'list', '--json'])).stdout).assets.map((a: { ref: string }) => a.ref);
    expect(list).toEqual(['datasets/digits@1', 'environments/torch@1', 'models/mnist@1', 'models/mnist@2']);
    expect(JSON.parse((await gitml(['assets', 'list', 'models', '--json'])).stdout).assets).toHaveLength(2);
    const show = JSON.parse((await gitml(['assets', 'show', 'models/mnist@latest', '--json'])).stdout);
    expect(show).toMatchObject({ ref: 'models/mnist@2', resolved: 'latest → 2' });
    const diff = JSON.parse((await gitml(['assets', 'diff', 'models/mnist@1', 'models/mnist@2', '--json'])).stdout);
    expect(diff.sameContent).toBe(true);
    expect(diff.specChanged).toBe(true);
  });

  test.each([
    ['Bad', 'upper case'],
    ['a/b', 'slash'],
    ['..', 'dot-dot'],
    ['-x', 'leading dash'],
    ['x'.repeat(129), 'over-long'],
    ['has space', 'space'],
  ])('refuses the name %j (%s) and writes nothing', async (name) => {
    const before = (await box.git(repo, ['status', '--porcelain'])).stdout;
    const r = await box.gitml(repo, ['register', 'model', name, path.join(inputs, 'model.pt')]);
    expect(r.code).toBe(1);
    // A name that looks like an option is read as one: then no name is given at all.
    expect(r.stderr).toMatch(name.startsWith('-') ? /unknown option -x.*write -- before it/ : /invalid asset name/);
    expect((await box.git(repo, ['status', '--porcelain'])).stdout).toBe(before);
  });

  test.each(['0', '01', '../x', '/abs', 'a/b', 'runs', 'UP'])('refuses the version %j', async (version) => {
    const r = await box.gitml(repo, ['register', 'model', 'mnist', path.join(inputs, 'model.pt'), '--version', version]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/invalid asset version/);
  });

  test('editing a registered version: fsck reports it and the pre-commit hook refuses it', async () => {
    expect((await gitml(['install', '--hooks'])).code).toBe(0);
    await fsp.writeFile(path.join(repo, 'datasets/digits/1/a.png'), 'tampered');
    const fsck = await box.gitml(repo, ['fsck', '--json']);
    expect(fsck.code).toBe(2);
    expect(JSON.parse(fsck.stdout).assets).toEqual([expect.objectContaining({ dir: 'datasets/digits/1' })]);
    await box.git(repo, ['add', 'datasets/digits/1/a.png']);
    const commit = await box.run(repo, 'git', ['commit', '-m', 'sneaky edit']);
    expect(commit.code).not.toBe(0);
    expect(commit.stderr).toContain('datasets/digits/1 is a registered version and must not change');
    await box.git(repo, ['reset', '-q', '--hard']);
    expect((await box.gitml(repo, ['fsck'])).code).toBe(0);
  });

  test('lineage of a model registered from a dataset and an environment: text, json and mermaid', async () => {
    const json = JSON.parse((await gitml(['lineage', 'models/mnist@1', '--format', 'json'])).stdout);
    expect(json.root).toBe('models/mnist@1');
    const ids = json.nodes.map((n: { id: string }) => n.id);
    expect(ids).toEqual(expect.arrayContaining(['models/mnist@1', 'datasets/digits@1', 'environments/torch@1']));
    expect(json.edges).toEqual(expect.arrayContaining([{ from: 'datasets/digits@1', to: 'models/mnist@1', label: 'input' }, { from: 'environments/torch@1', to: 'models/mnist@1', label: 'input' }]));
    const mermaid = (await gitml(['lineage', 'models/mnist@1', '--format', 'mermaid'])).stdout;
    expect(mermaid.startsWith('flowchart LR')).toBe(true);
    expect(mermaid).toMatch(/n\d+\["datasets\/digits@1"\]/);
    expect(mermaid).toMatch(/-->\|input\|/);
    const dot = (await gitml(['lineage', 'models/mnist@1', '--format', 'dot'])).stdout;
    expect(dot).toContain('"datasets/digits@1" -> "models/mnist@1" [label="input"]');
  });

  test('promote dev → staging → production by pull requests, merged branches kept; history; aliases', async () => {
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    const dry = await gitml(['promote', 'models/mnist@1', '--to', 'production', '--dry-run']);
    expect(dry.stdout).toContain('Would promote models/mnist@1 to production');
    expect((await box.run(remote, 'git', ['rev-parse', '--verify', 'refs/heads/promote/production/models/mnist/1'])).code).not.toBe(0);

    // Without gh: the branch is pushed and the exact command printed.
    const noGh = await gitml(['promote', 'models/mnist@1', '--to', 'staging']);
    expect(noGh.stdout).toContain("gh pr create --base staging --head promote/staging/models/mnist/1 --title 'Promote models/mnist@1 to staging'");
    // The stage record and the version folder are on the promotion branch, and nothing else of main.
    const files = (await box.git(remote, ['ls-tree', '-r', '--name-only', 'refs/heads/promote/staging/models/mnist/1'])).stdout.split('\n').filter(Boolean);
    expect(files).toEqual(expect.arrayContaining(['.gitml/stages/models/mnist.yaml', 'models/mnist/1/model.pt', 'models/mnist/1/asset.yaml', '.gitattributes', '.gitmlconfig']));
    expect(files.some((f) => f.startsWith('datasets/'))).toBe(false);
    // The reviewer merges it; the hosting service keeps the merged branch, as GitHub does.
    await box.git(remote, ['update-ref', 'refs/heads/staging', 'refs/heads/promote/staging/models/mnist/1']);

    // The next stage is a branch of its own: the kept staging branch is not in its way.
    const toProd = await gitml(['promote', 'models/mnist@1', '--to', 'production']);
    expect(toProd.stdout).toContain('--head promote/production/models/mnist/1');
    await box.git(remote, ['update-ref', 'refs/heads/production', 'refs/heads/promote/production/models/mnist/1']);
    expect((await box.git(remote, ['rev-parse', '--verify', 'refs/heads/promote/staging/models/mnist/1'])).code).toBe(0);
    await box.git(repo, ['fetch', '-q', 'origin']);
    const inProd = JSON.parse((await gitml(['assets', 'show', 'models/mnist@production', '--json'])).stdout);
    expect(inProd.ref).toBe('models/mnist@1');
    expect(inProd.resolved).toMatch(/^production .* → 1$/);

    // A fake gh that records its arguments: pr create with --repo when the remote is on GitHub.
    const log = box.path('gh-calls.log');
    const fake = box.path('fakebin');
    await fsp.mkdir(fake, { recursive: true });
    await fsp.writeFile(
      path.join(fake, 'gh'),
      `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done >> ${JSON.stringify(log)}\necho ---- >> ${JSON.stringify(log)}\nif [ -n "$GH_FAIL" ]; then echo 'HTTP 401: Bad credentials (https://api.github.com/graphql)' >&2; exit 1; fi\necho https://github.com/acme/models/pull/7\n`,
      { mode: 0o755 },
    );
    const withGh = await gitml(['promote', 'models/mnist@2', '--to', 'staging', '--json'], { PATH: `${fake}:${box.env.PATH}` });
    const plan = JSON.parse(withGh.stdout);
    expect(plan.pullRequest).toMatchObject({ created: true, url: 'https://github.com/acme/models/pull/7' });
    const calls = () => fs.readFileSync(log, 'utf8').split('----\n').filter(Boolean).map((c) => c.trim().split('\n'));
    expect(calls()).toHaveLength(1);
    expect(calls()[0]!.slice(0, 8)).toEqual(['pr', 'create', '--base', 'staging', '--head', 'promote/staging/models/mnist/2', '--title', 'Promote models/mnist@2 to staging']);
    expect(calls()[0]![8]).toBe('--body');
    expect(calls()[0]!.slice(9).join('\n')).toContain('Digest: sha256:');

    // gh fails: its own message, a non-zero exit, and how to finish by hand.
    const failed = await box.gitml(repo, ['promote', 'models/mnist@2', '--to', 'production'], { env: { PATH: `${fake}:${box.env.PATH}`, GH_FAIL: '1' } });
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain('gh pr create failed');
    expect(failed.stderr).toContain('Bad credentials');
    expect(failed.stderr).toContain('promote/production/models/mnist/2 is pushed');

    // An alias is a stage without review: champion.
    await gitml(['promote', 'models/mnist@2', '--to', 'champion', '--merge']);
    expect(JSON.parse((await gitml(['assets', 'show', 'models/mnist@champion', '--json'])).stdout).ref).toBe('models/mnist@2');

    // Who held which stage, and since when.
    const history = JSON.parse((await gitml(['assets', 'history', 'models/mnist', '--json'])).stdout);
    const held = history.events.map((e: { stage: string; version: string; current: boolean }) => `${e.stage}:${e.version}:${e.current}`).sort();
    expect(held).toEqual(['champion:2:true', 'production:1:true', 'staging:1:true']);
    expect(history.events[0]).toMatchObject({ by: expect.stringContaining('@') });

    // A fresh clone of the production branch has the model, checked out through gitml.
    const prod = box.path('prod');
    await box.git(box.root, ['clone', '-q', '-b', 'production', `gitml::${remote}`, prod]);
    expect(sha256(await fsp.readFile(path.join(prod, 'models/mnist/1/model.pt')))).toBe(sha256(model));
  });

  test('gh is told the repository: --repo owner/name from a gitml:: GitHub URL', () => {
    expect(githubRepoOf('https://github.com/acme/models.git')).toBe('acme/models');
    expect(githubRepoOf('git@github.com:acme/models.git')).toBe('acme/models');
    expect(githubRepoOf('/srv/git/models.git')).toBeNull();
  });

  test('gitml get from another repository: exactly that asset and its environment, atomically, verified', async () => {
    const other = await Sandbox.create();
    try {
      await fsp.mkdir(other.path('work'));
      const r = await other.gitml(other.path('work'), ['get', `${remote}#models/mnist@1`, '--to', other.path('serving/model'), '--json']);
      expect(r.code).toBe(0);
      const result = JSON.parse(r.stdout);
      // model.pt, and environments/torch@1's conda.yaml: two objects from the store, nothing else.
      expect(result.downloaded).toBe(2);
      expect(result.assets).toEqual(['models/mnist/1', 'environments/torch/1']);
      expect(sha256(await fsp.readFile(other.path('serving/model/model.pt')))).toBe(sha256(model));
      expect(fs.existsSync(other.path('serving/model/_deps/environments/torch/1/conda.yaml'))).toBe(true);
      expect(YAML.parse(await fsp.readFile(other.path('serving/model/asset.yaml'), 'utf8')).name).toBe('mnist');
      // No half-written directory was ever visible beside it, and nothing is left over.
      expect((await fsp.readdir(other.path('serving'))).filter((n) => n !== 'model')).toEqual([]);
      const again = await other.gitml(other.path('work'), ['get', `${remote}#models/mnist@1`, '--to', other.path('serving/model')]);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('--force');
    } finally {
      await other.cleanup();
    }
  });

  test('a cross-repository input: lineage follows it into the other repository', async () => {
    const second = await makeRepo(box, 'second', box.path('store'), []);
    await fsp.writeFile(box.path('inputs', 'ft.pt'), randomBytesSeeded(2000, 3));
    const r = await box.gitml(second, ['register', 'model', 'finetuned', box.path('inputs', 'ft.pt'), '--input', `${remote}#models/mnist@production`, '--commit', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).asset.lineage.inputs[0]).toMatchObject({ ref: `${remote}#models/mnist@1`, repo: remote, version: '1' });
    const lineage = JSON.parse((await box.gitml(second, ['lineage', 'models/finetuned@1', '--format', 'json'])).stdout);
    expect(lineage.nodes.map((n: { id: string }) => n.id)).toEqual(expect.arrayContaining([`${remote}#models/mnist@1`, `${remote}#datasets/digits@1`]));
  });

  test('a dataset by reference (s3rver): register, pull verified, then a changed object makes pull fail', async () => {
    const bucket = uniqueName('refdata');
    await createBucket(bucket);
    const c = s3Client();
    await c.send(new PutObjectCommand({ Bucket: bucket, Key: 'raw/part-0.csv', Body: 'a,b\n1,2\n' }));
    await c.send(new PutObjectCommand({ Bucket: bucket, Key: 'raw/sub/part-1.csv', Body: 'a,b\n3,4\n' }));
    const env = { ...s3Env() };
    await box.git(repo, ['config', 'gitml.s3.endpoint', s3Endpoint()]);
    const reg = JSON.parse((await gitml(['register', 'dataset', 'raw', '--uri', `s3://${bucket}/raw/`, '--hash', '--commit', '--json'], env)).stdout);
    expect(reg.asset.spec.source.objects.map((o: { key: string }) => o.key)).toEqual(['part-0.csv', 'sub/part-1.csv']);
    expect(reg.asset.spec.source.objects[0].sha256).toBe(sha256('a,b\n1,2\n'));
    // Nothing of the data is in git.
    const tracked = (await box.git(repo, ['ls-files', 'datasets/raw'])).stdout.split('\n').filter(Boolean);
    expect(tracked.sort()).toEqual(['datasets/raw/1/.gitignore', 'datasets/raw/1/asset.yaml']);

    const pull = JSON.parse((await gitml(['pull', 'datasets/raw@1', '--json'], env)).stdout);
    expect(pull).toMatchObject({ files: 2, bytes: 16 });
    expect(await fsp.readFile(path.join(repo, 'datasets/raw/1/data/sub/part-1.csv'), 'utf8')).toBe('a,b\n3,4\n');
    expect((await box.git(repo, ['status', '--porcelain'])).stdout).toBe('');

    await c.send(new PutObjectCommand({ Bucket: bucket, Key: 'raw/sub/part-1.csv', Body: 'a,b\n9,9\n' }));
    c.destroy();
    await fsp.rm(path.join(repo, 'datasets/raw/1/data'), { recursive: true });
    const changed = await box.gitml(repo, ['pull', 'datasets/raw@1'], { env });
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain('sub/part-1.csv');
    expect(changed.stderr).toMatch(/changed since it was registered/);
    expect(fs.existsSync(path.join(repo, 'datasets/raw/1/data'))).toBe(false);
  });
});
