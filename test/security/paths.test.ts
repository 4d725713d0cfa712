import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { digestValue } from '../../src/assets/document';
import { unsafeReason } from '../../src/safe-path';
import { formatPointer } from '../../src/pointer';
import { listFiles, randomBytesSeeded, Sandbox, sha256 } from '../helpers/sandbox';
import { securityReport } from './lib';

/** Issue: a tree, a manifest, a YAML file or an argument must never make gitml write outside its target. */
describe('security: paths from outside stay inside their target', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await Sandbox.create();
  });
  afterAll(() => box.cleanup());

  test('the one confinement rule refuses every form git itself refuses', () => {
    const refused = [
      '',
      '/etc/passwd',
      'C:/x',
      'a\\b',
      'a/../b',
      '..',
      '.',
      'a//b',
      'a/./b',
      '.git/config',
      '.GIT/hooks/x',
      'sub/.git/x',
      '.git./x',
      '.git /x',
      '.git.. /x',
      'git~1/config',
      'GIT~2/x',
      '.g\u200cit/x',
      '.git\ufeff/x',
      'a\0b',
    ];
    const allowed = ['model.pt', 'a/b/c.bin', '.gitignore', '.github/x', 'git~x', 'x.git', 'new\nline', 'über/ß.bin', '..a', 'a..'];
    const wronglyAllowed = refused.filter((p) => unsafeReason(p) === null);
    const wronglyRefused = allowed.filter((p) => unsafeReason(p) !== null);
    securityReport({ case: 'path forms', cases: refused.length + allowed.length, passed: refused.length + allowed.length - wronglyAllowed.length - wronglyRefused.length });
    expect(wronglyAllowed).toEqual([]);
    expect(wronglyRefused).toEqual([]);
  });

  /** A bare repository whose registered model's tree holds a hostile entry, built with git mktree. */
  type Git = (args: string[], input?: string) => Promise<string>;
  /** The hostile entry of the version folder: a whole `git mktree` line, and what asset.yaml claims for it. */
  type Hostile = (git: Git) => Promise<{ entry: string; digestPath: string; content: Buffer }>;

  async function hostileAssetRepo(name: string, hostile: Hostile): Promise<string> {
    const remote = box.path(`${name}.git`);
    await box.git(box.root, ['init', '-q', '--bare', remote]);
    await box.git(remote, ['config', 'uploadpack.allowFilter', 'true']);
    const git: Git = async (args, input) => (await box.git(remote, args, { input })).stdout.trim();
    const h = await hostile(git);
    const doc = {
      type: 'model',
      name: 'm',
      version: '1',
      description: '',
      tags: {},
      created: { time: '2026-01-01T00:00:00.000Z', author: 'attacker' },
      spec: { type: 'custom_model', path: '.' },
      digest: { algorithm: 'sha256', value: digestValue([{ path: h.digestPath, sha256: sha256(h.content), size: h.content.length }]), files: [{ path: h.digestPath, sha256: sha256(h.content), size: h.content.length }] },
      lineage: { commit: null, inputs: [] },
    };
    const yamlBlob = await git(['hash-object', '-w', '--stdin'], YAML.stringify(doc));
    const version = await git(['mktree'], `100644 blob ${yamlBlob}\tasset.yaml\n${h.entry}\n`);
    const m = await git(['mktree'], `040000 tree ${version}\t1\n`);
    const models = await git(['mktree'], `040000 tree ${m}\tm\n`);
    const root = await git(['mktree'], `040000 tree ${models}\tmodels\n`);
    const commit = await git(['commit-tree', root, '-m', 'hostile'], '');
    await git(['update-ref', 'refs/heads/main', commit]);
    await git(['symbolic-ref', 'HEAD', 'refs/heads/main']);
    return remote;
  }

  const victimDir = () => box.path('victim');

  test('gitml get of an asset tree with ".." entries exits non-zero and writes nothing anywhere', async () => {
    await fsp.mkdir(victimDir(), { recursive: true });
    const payload = Buffer.from('echo pwned\n');
    const remote = await hostileAssetRepo('dotdot', async (git) => {
      const blob = await git(['hash-object', '-w', '--stdin'], payload.toString());
      let tree = await git(['mktree'], `100644 blob ${blob}\tPWNED.txt\n`);
      tree = await git(['mktree'], `040000 tree ${tree}\tvictim\n`);
      for (let i = 0; i < 4; i++) tree = await git(['mktree'], `040000 tree ${tree}\t..\n`);
      return { entry: `040000 tree ${tree}\t..`, digestPath: '../../../../../victim/PWNED.txt', content: payload };
    });
    const work = box.path('getter');
    await fsp.mkdir(work);
    const r = await box.gitml(work, ['get', `${remote}#models/m@1`, '--to', 'out']);
    const written = listFiles(box.root).filter((f) => f.endsWith('PWNED.txt'));
    securityReport({ case: 'get: ".." tree entries', cases: 1, passed: r.code !== 0 && written.length === 0 ? 1 : 0, bytesOutside: written.length });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/refusing tree entry.*"\.\." component.*nothing was written/);
    expect(r.stderr).toContain(remote);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(written).toEqual([]);
    expect(fs.existsSync(path.join(work, 'out'))).toBe(false);
    expect(fs.readdirSync(work)).toEqual([]);
  });

  test('gitml get refuses ".git" components, their NTFS/HFS spellings, and non-regular entries (links)', async () => {
    const cases: [string, Hostile][] = [
      [
        '.git',
        async (git) => {
          const content = Buffer.from('[core]\n\tfsmonitor = "touch /tmp/x"\n');
          const blob = await git(['hash-object', '-w', '--stdin'], content.toString());
          const tree = await git(['mktree'], `100644 blob ${blob}\tconfig\n`);
          return { entry: `040000 tree ${tree}\t.GIT`, digestPath: '.GIT/config', content };
        },
      ],
      [
        'git~1',
        async (git) => {
          const content = Buffer.from('x');
          const blob = await git(['hash-object', '-w', '--stdin'], 'x');
          const tree = await git(['mktree'], `100644 blob ${blob}\tconfig\n`);
          return { entry: `040000 tree ${tree}\tgit~1`, digestPath: 'git~1/config', content };
        },
      ],
      [
        'symlink',
        async (git) => {
          const content = Buffer.from('/etc/passwd');
          const blob = await git(['hash-object', '-w', '--stdin'], '/etc/passwd');
          return { entry: `120000 blob ${blob}\tlink`, digestPath: 'link', content };
        },
      ],
    ];
    let passed = 0;
    for (const [name, make] of cases) {
      const remote = await hostileAssetRepo(`hostile-${name.replace(/\W/g, '')}`, make);
      const work = box.path(`get-${name.replace(/\W/g, '')}`);
      await fsp.mkdir(work);
      const r = await box.gitml(work, ['get', `${remote}#models/m@1`, '--to', 'out']);
      if (r.code !== 0 && /refusing tree entry/.test(r.stderr) && fs.readdirSync(work).length === 0) passed++;
      else throw new Error(`${name}: exit ${r.code}\n${r.stderr}\n${fs.readdirSync(work).join(',')}`);
    }
    securityReport({ case: 'get: .git, git~1, symbolic-link entries', cases: cases.length, passed, bytesOutside: 0 });
    expect(passed).toBe(cases.length);
  });

  test('gitml pull never writes through a symbolic link in the work tree', async () => {
    const store = box.path('pull-store');
    await fsp.mkdir(store);
    const repo = box.path('pull-repo');
    const remote = box.path('pull-remote.git');
    await box.git(box.root, ['init', '-q', '--bare', remote]);
    await box.git(box.root, ['init', '-q', repo]);
    await box.ok(repo, 'gitml', ['track', 'data/**']);
    await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.store', store]);
    await fsp.mkdir(path.join(repo, 'data'));
    await fsp.writeFile(path.join(repo, 'data', 'x.bin'), randomBytesSeeded(40_000, 3));
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'data']);
    await box.git(repo, ['remote', 'add', 'origin', `gitml::${remote}`]);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    const clone = box.path('pull-clone');
    await box.git(box.root, ['clone', '-q', `gitml::${remote}`, clone], { env: { GITML_SKIP_SMUDGE: '1' } });
    // Someone (a script, another user) replaced data/ by a link to a folder outside the clone.
    const outside = box.path('pull-outside');
    await fsp.mkdir(outside);
    const pointer = await fsp.readFile(path.join(clone, 'data', 'x.bin'));
    await fsp.rm(path.join(clone, 'data'), { recursive: true });
    await fsp.symlink(outside, path.join(clone, 'data'));
    // What the link leads to looks like the pointer file: only the link check stands in the way.
    await fsp.writeFile(path.join(outside, 'x.bin'), pointer);
    const r = await box.gitml(clone, ['pull']);
    const after = await fsp.readFile(path.join(outside, 'x.bin'));
    const overwritten = after.equals(pointer) ? 0 : 1;
    securityReport({ case: 'pull: symbolic link in the work tree', cases: 1, passed: r.code !== 0 && !overwritten ? 1 : 0, bytesOutside: overwritten });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/data is a symbolic link/);
    expect(after.equals(pointer)).toBe(true);
    expect(fs.readdirSync(outside)).toEqual(['x.bin']);
  });

  test('a dataset by reference whose asset.yaml names "../" keys is refused before anything is read or written', async () => {
    const repo = box.path('ref-repo');
    await box.git(box.root, ['init', '-q', repo]);
    const data = box.path('ref-data');
    await fsp.mkdir(data);
    await fsp.writeFile(path.join(data, 'a.csv'), 'x,y\n1,2\n');
    await box.ok(repo, 'gitml', ['register', 'dataset', 'd', '--uri', `file://${data}`, '--commit']);
    // The committed record is edited by a hostile hand to name a key outside the data folder.
    const yamlPath = path.join(repo, 'datasets', 'd', '1', 'asset.yaml');
    const text = await fsp.readFile(yamlPath, 'utf8');
    await fsp.writeFile(yamlPath, text.replace('key: a.csv', 'key: ../../../../escaped.csv'));
    const r = await box.gitml(repo, ['pull', 'datasets/d@1']);
    const escaped = listFiles(box.root).filter((f) => f.endsWith('escaped.csv'));
    securityReport({ case: 'data by reference: "../" object keys', cases: 1, passed: r.code !== 0 && escaped.length === 0 ? 1 : 0, bytesOutside: escaped.length });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/refusing object key "\.\.\/\.\.\/\.\.\/\.\.\/escaped\.csv".*asset\.yaml/);
    expect(escaped).toEqual([]);
  });

  test('gitml run --register-outputs refuses an output path outside the repository and stages nothing', async () => {
    const repo = box.path('run-repo');
    await box.git(box.root, ['init', '-q', repo]);
    const secret = box.path('outside-secret');
    await fsp.mkdir(secret);
    await fsp.writeFile(path.join(secret, 'id_rsa'), 'PRIVATE KEY\n');
    await fsp.writeFile(
      path.join(repo, 'experiment.yml'),
      'name: steal\ncommand: "true"\noutputs:\n  model:\n    path: ../outside-secret\n    register: models/stolen\n',
    );
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'exp']);
    const r = await box.gitml(repo, ['run', '--experiment', 'experiment.yml', '--register-outputs']);
    const staged = (await box.git(repo, ['diff', '--cached', '--name-only'])).stdout;
    const registered = fs.existsSync(path.join(repo, 'models'));
    securityReport({ case: 'run: output path outside the repository', cases: 1, passed: r.code !== 0 && staged === '' && !registered ? 1 : 0, bytesOutside: 0 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/refusing output path of model "\.\.\/outside-secret".*"\.\." component/);
    expect(staged).toBe('');
    expect(registered).toBe(false);
  });

  test('gitml register refuses a folder named .git (it would become an embedded repository)', async () => {
    const repo = box.path('reg-repo');
    await box.git(box.root, ['init', '-q', repo]);
    const src = box.path('reg-src');
    await fsp.mkdir(path.join(src, 'weights', '.git'), { recursive: true });
    await fsp.writeFile(path.join(src, 'weights', '.git', 'config'), '[core]\n');
    await fsp.writeFile(path.join(src, 'weights', 'w.bin'), formatPointer({ oid: 'a'.repeat(64), size: 1 }));
    const r = await box.gitml(repo, ['register', 'model', 'w', path.join(src, 'weights')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/refusing file name "\.git"/);
    expect(fs.existsSync(path.join(repo, 'models'))).toBe(false);
  });
});
