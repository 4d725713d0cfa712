import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { digestValue } from '../../src/assets/document';
import { makeAssetRepo, randomBytesSeeded, Sandbox, sha256 } from '../helpers/sandbox';

/**
 * A gitml ahead of the real one on PATH that notes each command it is started with; `commit` runs
 * `git commit` in a repository with it and returns the gitml commands that commit started.
 */
async function notingGitml(box: Sandbox, name: string) {
  const shims = box.path(`noting-shims-${name}`);
  const calls = box.path(`gitml-calls-${name}.txt`);
  await fsp.mkdir(shims, { recursive: true });
  await fsp.writeFile(path.join(shims, 'gitml'), `#!/bin/sh\necho "$1" >> '${calls}'\nexec '${box.path('bin', 'gitml')}' "$@"\n`, { mode: 0o755 });
  const env = { PATH: `${shims}${path.delimiter}${box.env.PATH}` };
  return {
    env,
    commit: async (repo: string, message: string): Promise<string[]> => {
      await fsp.rm(calls, { force: true });
      const r = await box.run(repo, 'git', ['commit', '-q', '-m', message], { env });
      expect(r.code).toBe(0);
      return (await fsp.readFile(calls, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    },
  };
}

/**
 * A registered version stays exactly as first committed (asset.yaml included) and never disappears
 * without a recorded retirement: the pre-commit hook, `gitml verify <range>` and `gitml fsck` each
 * catch every way to break that, and their cost follows what a commit touches.
 */
describe('asset integrity', () => {
  let box: Sandbox;
  let repo: string;
  let remote: string;
  let inputs: string;

  beforeAll(async () => {
    box = await Sandbox.create();
    ({ repo, remote } = await makeAssetRepo(box));
    expect((await box.gitml(repo, ['install', '--hooks'])).code).toBe(0);
    inputs = box.path('inputs');
    await fsp.mkdir(path.join(inputs, 'houses_v1'), { recursive: true });
    await fsp.mkdir(path.join(inputs, 'houses-final'), { recursive: true });
    for (const dir of ['houses_v1', 'houses-final']) {
      await fsp.writeFile(path.join(inputs, dir, 'train.csv'), 'sqft,price\n1000,200000\n');
      await fsp.writeFile(path.join(inputs, dir, 'test.csv'), dir === 'houses_v1' ? 'sqft,price\n900,180000\n' : 'sqft,price\n950,185000\n');
    }
    await fsp.writeFile(path.join(inputs, 'model.pt'), randomBytesSeeded(200_000, 11));
    await fsp.writeFile(path.join(inputs, 'model2.pt'), randomBytesSeeded(200_000, 12));
  });
  afterAll(() => box.cleanup());

  const gitml = async (args: string[], cwd = repo) => {
    const r = await box.gitml(cwd, args);
    if (r.code !== 0) throw new Error(`gitml ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r;
  };
  const git = async (args: string[]) => {
    const r = await box.git(repo, args);
    if (r.code !== 0) throw new Error(`git ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  /** Undo whatever a case left staged or committed on top of `good`. */
  const resetTo = async (good: string) => {
    await git(['reset', '-q', '--hard', good]);
    await git(['clean', '-q', '-fdx', '--', 'datasets', 'models', '.gitml']);
  };

  test('versions hold their folder contents, whatever the source folder was called; gitml diff compares file by file', async () => {
    await gitml(['register', 'dataset', 'houses', path.join(inputs, 'houses_v1'), '--commit']);
    await gitml(['register', 'dataset', 'houses', path.join(inputs, 'houses-final'), '--commit']);
    expect((await git(['ls-files', 'datasets/houses'])).split('\n').filter(Boolean).sort()).toEqual([
      'datasets/houses/1/asset.yaml',
      'datasets/houses/1/test.csv',
      'datasets/houses/1/train.csv',
      'datasets/houses/2/asset.yaml',
      'datasets/houses/2/test.csv',
      'datasets/houses/2/train.csv',
    ]);
    const diff = JSON.parse((await gitml(['diff', 'datasets/houses@1', 'datasets/houses@2', '--json'])).stdout);
    expect(diff).toMatchObject({ sameContent: false, files: ['modified test.csv'] });
    // A single file keeps its name, and the spec says which.
    const m = JSON.parse((await gitml(['register', 'model', 'price', path.join(inputs, 'model.pt'), '--spec', 'settings.instance_count=1', '--spec', 'settings.cuda=true', '--spec', 'flavors.sklearn=1.5', '--commit', '--json'])).stdout);
    expect(m.asset.spec).toMatchObject({ path: 'model.pt', settings: { instance_count: 1, cuda: true }, flavors: { sklearn: '1.5' } });
    expect(await git(['show', 'HEAD:models/price/1/asset.yaml'])).toMatch(/instance_count: 1\n/);
  });

  test('asset.yaml is readable in git show and in review; an outdated -diff -merge rule is replaced', async () => {
    const show = await git(['show', 'HEAD', '--', 'models/price/1/asset.yaml']);
    expect(show).not.toContain('Binary files');
    expect(show).toContain('+type: model');
    expect(show).toContain('+name: price');
    const attributes = await fsp.readFile(path.join(repo, '.gitattributes'), 'utf8');
    expect(attributes).toMatch(/asset\.yaml.*!diff !merge/);
    expect(attributes).not.toMatch(/-diff/);
    // A repository from before: its rule is rewritten on the next registration.
    await fsp.writeFile(path.join(repo, '.gitattributes'), attributes.replace(/!diff !merge/g, '-diff -merge'));
    await git(['commit', '-q', '-am', 'old rule']);
    await gitml(['register', 'model', 'price', path.join(inputs, 'model2.pt'), '--commit']);
    const rewritten = await fsp.readFile(path.join(repo, '.gitattributes'), 'utf8');
    expect(rewritten).not.toMatch(/-diff/);
    expect((await git(['show', 'HEAD', '--', 'models/price/2/asset.yaml']))).toContain('+version: "2"');
  });

  test.each([
    [
      'replacing a file and rewriting the digest to match',
      async () => {
        const forged = 'sqft,price\n1,1\n';
        await fsp.writeFile(path.join(repo, 'datasets/houses/1/test.csv'), forged);
        // What an attacker would do: make asset.yaml agree with the new file.
        const doc = YAML.parse(await fsp.readFile(path.join(repo, 'datasets/houses/1/asset.yaml'), 'utf8'));
        doc.digest.files = doc.digest.files.map((f: { path: string }) => (f.path === 'test.csv' ? { path: 'test.csv', sha256: sha256(forged), size: forged.length } : f));
        doc.digest.value = digestValue(doc.digest.files);
        await fsp.writeFile(path.join(repo, 'datasets/houses/1/asset.yaml'), YAML.stringify(doc));
        await git(['add', '-A', 'datasets/houses/1']);
      },
      /datasets\/houses\/1.*changed: modified asset\.yaml, modified test\.csv/,
    ],
    [
      'editing asset.yaml alone',
      async () => {
        const file = path.join(repo, 'models/price/1/asset.yaml');
        await fsp.writeFile(file, (await fsp.readFile(file, 'utf8')).replace(/^description: .*$/m, 'description: better').replace(/^name: price$/m, 'name: price\ndescription: better'));
        await git(['add', file]);
      },
      /models\/price\/1.*changed: modified asset\.yaml/,
    ],
    [
      'git rm -r of a version',
      async () => {
        await git(['rm', '-r', '-q', 'models/price/1']);
      },
      /models\/price\/1.*removed without being retired/,
    ],
    [
      'adding a file to a version',
      async () => {
        await fsp.writeFile(path.join(repo, 'datasets/houses/2/extra.csv'), 'x\n');
        await git(['add', 'datasets/houses/2/extra.csv']);
      },
      /datasets\/houses\/2.*changed: added extra\.csv/,
    ],
  ])('%s: refused by the pre-commit hook, by gitml verify, and found by gitml fsck', async (_name, damage, message) => {
    const good = (await git(['rev-parse', 'HEAD'])).trim();
    try {
      await damage();
      const commit = await box.run(repo, 'git', ['commit', '-q', '-m', 'sneaky']);
      expect(commit.code).not.toBe(0);
      expect(commit.stderr).toMatch(message);
      expect((await git(['rev-parse', 'HEAD'])).trim()).toBe(good);

      // Past the hook (--no-verify, or a commit made elsewhere): CI and a server hook catch it.
      await git(['commit', '-q', '--no-verify', '-m', 'sneaky']);
      const verify = await box.gitml(repo, ['verify', `${good}..HEAD`, '--json']);
      expect(verify.code).toBe(1);
      const report = JSON.parse(verify.stdout);
      expect(report.ok).toBe(false);
      expect(`${report.problems[0].dir}: ${report.problems[0].problem}`).toMatch(message);
      const fsck = await box.gitml(repo, ['fsck', '--json']);
      expect(fsck.code).toBe(2);
      expect(JSON.stringify(JSON.parse(fsck.stdout).assets)).toMatch(/models\/price\/1|datasets\/houses\/[12]/);
    } finally {
      await resetTo(good);
    }
  });

  test('gitml verify passes honest history and names a bad range clearly', async () => {
    const all = await box.gitml(repo, ['verify', `${(await git(['rev-list', '--max-parents=0', 'HEAD'])).trim()}..HEAD`]);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain('registered versions intact');
    // A new branch in a pre-receive hook: old is all zeros.
    expect((await box.gitml(repo, ['verify', `${'0'.repeat(40)}..HEAD`])).code).toBe(0);
    const bad = await box.gitml(repo, ['verify', 'nosuchbranch..HEAD']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown revision "nosuchbranch"');
    const shape = await box.gitml(repo, ['verify', 'HEAD']);
    expect(shape.code).toBe(1);
    expect(shape.stderr).toContain('expected <old>..<new>');
  });

  test('retiring is explicit and recorded: deprecate, deprecate --remove, @latest skips, numbers are never reused', async () => {
    await gitml(['register', 'model', 'price', path.join(inputs, 'model.pt'), '--commit']);
    expect(JSON.parse((await gitml(['assets', 'show', 'models/price@latest', '--json'])).stdout).ref).toBe('models/price@3');
    const noReason = await box.gitml(repo, ['deprecate', 'models/price@3']);
    expect(noReason.code).toBe(1);
    expect(noReason.stderr).toContain('--reason');

    await gitml(['deprecate', 'models/price@3', '--reason', 'trained on leaked test data', '--commit']);
    expect(JSON.parse((await gitml(['assets', 'show', 'models/price@latest', '--json'])).stdout).ref).toBe('models/price@2');
    // Still there, and marked.
    expect((await gitml(['assets', 'list', 'models'])).stdout).toMatch(/models\/price@3 .*\[retired\]/);
    const record = YAML.parse(await fsp.readFile(path.join(repo, '.gitml/deprecated/models/price.yaml'), 'utf8'));
    expect(record.deprecated[0]).toMatchObject({ version: '3', reason: 'trained on leaked test data', removed: false, by: expect.stringContaining('@') });

    const before = (await git(['rev-parse', 'HEAD'])).trim();
    await gitml(['deprecate', 'models/price@1', '--reason', 'wrong features', '--remove', '--commit']);
    expect(fs.existsSync(path.join(repo, 'models/price/1'))).toBe(false);
    expect((await box.gitml(repo, ['verify', `${before}..HEAD`])).code).toBe(0);
    // History keeps it.
    expect(await git(['show', `${before}:models/price/1/asset.yaml`])).toContain('name: price');

    // The next version is 4: neither 3 (retired) nor 1 (removed) comes back.
    expect(JSON.parse((await gitml(['register', 'model', 'price', path.join(inputs, 'model2.pt'), '--commit', '--json'])).stdout).ref).toBe('models/price@4');
    const reuse = await box.gitml(repo, ['register', 'model', 'price', path.join(inputs, 'model2.pt'), '--version', '1']);
    expect(reuse.code).toBe(1);
    expect(reuse.stderr).toContain('immutable');

    // Editing the record (un-retiring by deleting the entry) or re-adding the removed folder by hand.
    const good = (await git(['rev-parse', 'HEAD'])).trim();
    try {
      await fsp.writeFile(path.join(repo, '.gitml/deprecated/models/price.yaml'), 'deprecated: []\n');
      await git(['add', '-A']);
      const c = await box.run(repo, 'git', ['commit', '-q', '-m', 'forget']);
      expect(c.code).not.toBe(0);
      expect(c.stderr).toMatch(/retirement record was changed or dropped/);
      await resetTo(good);
      await git(['checkout', before, '--', 'models/price/1']);
      const c2 = await box.run(repo, 'git', ['commit', '-q', '-m', 'resurrect']);
      expect(c2.code).not.toBe(0);
      expect(c2.stderr).toMatch(/models\/price\/1.*retired/);
    } finally {
      await resetTo(good);
    }
  });

  test("the pre-commit check's cost follows what a commit touches, not how many versions exist", async () => {
    // Count the git processes the hook starts for a commit that touches no asset, with few and
    // with many registered versions: the same count (each version costs nothing it does not touch).
    const gitCalls = async (label: string) => {
      const trace = box.path(`trace-${label}`);
      await fsp.writeFile(path.join(repo, 'README.md'), `${label}\n`);
      await git(['add', 'README.md']);
      // Files written within the index's own second are racily clean: git would re-clean them through
      // the filter during the commit (processes the hook did not start). A status was not enough (a
      // file could still share the second of the index it wrote). Every file is dated a minute back
      // and the index refreshed, so it is newer than all of them, and only the hook's work is counted.
      const past = new Date(Date.now() - 60_000);
      for (const file of (await git(['ls-files', '-z'])).split('\0').filter(Boolean)) await fsp.utimes(path.join(repo, file), past, past);
      await git(['update-index', '-q', '--refresh']);
      const r = await box.run(repo, 'git', ['commit', '-q', '-m', label], { env: { GIT_TRACE: trace } });
      expect(r.code).toBe(0);
      return (await fsp.readFile(trace, 'utf8')).split('\n').filter((l) => / trace: (built-in|exec|run_command): /.test(l)).length;
    };
    const few = await gitCalls('few');
    for (let i = 0; i < 12; i++) await fsp.writeFile(path.join(inputs, `m${i}.bin`), randomBytesSeeded(1000, 100 + i));
    for (let i = 0; i < 12; i++) await gitml(['register', 'model', `bulk${i}`, path.join(inputs, `m${i}.bin`)]);
    await git(['commit', '-q', '-m', 'twelve more models']);
    const many = await gitCalls('many');
    expect(many).toBe(few);
  });

  test('a first commit, with no HEAD yet, starts gitml pre-commit only when it stages something under the registry folders', async () => {
    const noting = await notingGitml(box, 'first');
    const firstCommit = async (name: string, file: string) => {
      const fresh = box.path(name);
      await box.git(box.root, ['init', '-q', fresh]);
      expect((await box.gitml(fresh, ['install', '--hooks'])).code).toBe(0);
      await fsp.mkdir(path.dirname(path.join(fresh, file)), { recursive: true });
      await fsp.writeFile(path.join(fresh, file), 'first\n');
      await box.git(fresh, ['add', file]);
      return noting.commit(fresh, 'first');
    };
    expect(await firstCommit('first-outside', 'data/train.csv')).not.toContain('pre-commit');
    expect(await firstCommit('first-inside', 'models/README.md')).toContain('pre-commit');
  });

  test('the pre-commit hook starts gitml only for a commit that stages something under the registry folders', async () => {
    const noting = await notingGitml(box, 'later');
    const env = noting.env;
    const commit = async (file: string, label: string) => {
      await fsp.mkdir(path.dirname(path.join(repo, file)), { recursive: true });
      await fsp.writeFile(path.join(repo, file), `${label}\n`);
      await git(['add', file]);
      return noting.commit(repo, label);
    };
    expect(await commit('notes/elsewhere.txt', 'outside the registry')).not.toContain('pre-commit');
    expect(await commit('models/README.md', 'inside the registry')).toContain('pre-commit');
    // A change that breaks a registered version is still refused with the shim in front.
    await gitml(['register', 'model', 'guarded', path.join(inputs, 'model.pt'), '--commit']);
    const good = (await git(['rev-parse', 'HEAD'])).trim();
    try {
      await fsp.appendFile(path.join(repo, 'models/guarded/1/asset.yaml'), '# edited\n');
      await git(['add', 'models/guarded/1/asset.yaml']);
      const r = await box.run(repo, 'git', ['commit', '-q', '-m', 'edit a version'], { env });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/models\/guarded\/1 is a registered version/);
    } finally {
      await resetTo(good);
    }
  });

  test('lineage and assets show of another repository work outside any repository', async () => {
    await git(['push', '-q', 'origin', 'main']);
    const outside = box.path('nowhere');
    await fsp.mkdir(outside);
    const show = JSON.parse((await gitml(['assets', 'show', `${remote}#models/price@2`, '--json'], outside)).stdout);
    expect(show.ref).toBe(`${remote}#models/price@2`);
    const lineage = JSON.parse((await gitml(['lineage', `${remote}#datasets/houses@2`, '--format', 'json'], outside)).stdout);
    expect(lineage.nodes.map((n: { id: string }) => n.id)).toContain(`${remote}#datasets/houses@2`);
    // Inside nothing, a local ref says where to run it.
    const local = await box.gitml(outside, ['assets', 'show', 'models/price@2']);
    expect(local.code).toBe(1);
    expect(local.stderr).toMatch(/not a git repository|<repo-url>#/);
  });

  test('data by reference: the digest covers the data; a change is caught even with size and mtime restored; pull is all or nothing', async () => {
    const share = box.path('share');
    for (const [dir, text] of [['a', 'alpha'], ['b', 'bravo']] as const) {
      await fsp.mkdir(path.join(share, dir, 'sub'), { recursive: true });
      await fsp.writeFile(path.join(share, dir, 'one.txt'), `${text} one\n`);
      await fsp.writeFile(path.join(share, dir, 'sub', 'two.txt'), `${text} two\n`);
    }
    const a = JSON.parse((await gitml(['register', 'dataset', 'ref-a', '--uri', `file://${share}/a`, '--commit', '--json'])).stdout);
    const b = JSON.parse((await gitml(['register', 'dataset', 'ref-b', '--uri', `file://${share}/b`, '--commit', '--json'])).stdout);
    expect(a.asset.digest.value).not.toBe(b.asset.digest.value);
    // A run or a model recording ref-a as input records what identifies its data.
    const m = JSON.parse((await gitml(['register', 'model', 'from-ref', path.join(inputs, 'model.pt'), '--input', 'datasets/ref-a@1', '--commit', '--json'])).stdout);
    expect(m.asset.lineage.inputs[0].digest).toBe(a.asset.digest.value);

    // Same size, mtime set back: still seen (ctime cannot be set back).
    const two = path.join(share, 'a', 'sub', 'two.txt');
    const st = await fsp.stat(two);
    await fsp.writeFile(two, 'ALPHA two\n');
    await fsp.utimes(two, st.atime, st.mtime);
    const pulled = await box.gitml(repo, ['pull', 'datasets/ref-a@1']);
    expect(pulled.code).toBe(2);
    expect(pulled.stderr).toContain('sub/two.txt');
    expect(fs.existsSync(path.join(repo, 'datasets/ref-a/1/data'))).toBe(false);

    // With --hash the bytes decide: a later file that does not match leaves nothing behind, and
    // data pulled before stays as it was.
    await fsp.writeFile(two, 'alpha two\n');
    const h = JSON.parse((await gitml(['register', 'dataset', 'ref-a', '--uri', `file://${share}/a`, '--hash', '--commit', '--json'])).stdout);
    expect(h.ref).toBe('datasets/ref-a@2');
    expect(JSON.parse((await gitml(['pull', 'datasets/ref-a@2', '--json'])).stdout)).toMatchObject({ files: 2 });
    const dataDir = path.join(repo, 'datasets/ref-a/2/data');
    expect(await fsp.readFile(path.join(dataDir, 'sub/two.txt'), 'utf8')).toBe('alpha two\n');
    await fsp.writeFile(two, 'ALPHA two\n');
    await fsp.utimes(two, st.atime, st.mtime);
    await fsp.rm(dataDir, { recursive: true });
    const again = await box.gitml(repo, ['pull', 'datasets/ref-a@2']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/sub\/two\.txt: got 10 bytes hashing to/);
    expect(fs.existsSync(dataDir)).toBe(false);
    expect((await fsp.readdir(path.join(repo, 'datasets/ref-a/2'))).sort()).toEqual(['.gitignore', 'asset.yaml']);
  });
});
