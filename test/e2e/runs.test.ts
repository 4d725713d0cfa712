import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { parsePointer } from '../../src/pointer';
import type { HttpGitServer } from '../helpers/http-git';
import { randomBytesSeeded, Sandbox } from '../helpers/sandbox';
import { serveTrainingRemote, writeTrainingProject } from '../helpers/training';

const TOKEN = 'ghp_s3cr3tT0kenValue0123456789abcdef';

/** Every process command line containing `needle`, sampled until stopped (a token must never be there). */
function watchArgs(needle: string): { stop: () => string[] } {
  const seen: string[] = [];
  const timer = setInterval(() => {
    for (const pid of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        if (cmd.includes(needle)) seen.push(cmd);
      } catch {
        // gone
      }
    }
  }, 5);
  return {
    stop: () => {
      clearInterval(timer);
      return seen;
    },
  };
}

describe('gitml run', () => {
  let box: Sandbox;
  let repo: string;
  let bare: string;
  let server: HttpGitServer;
  let first: string;
  let second: string;
  const big = randomBytesSeeded(300_000, 5);

  beforeAll(async () => {
    box = await Sandbox.create();
    ({ bare, server } = await serveTrainingRemote(box, TOKEN));

    repo = box.path('repo');
    await box.git(box.root, ['init', '-q', repo]);
    await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.store', `file://${box.path('store')}`]);
    await box.gitml(repo, ['track', 'blobs/**']);
    await fsp.mkdir(path.join(repo, 'blobs'));
    await fsp.writeFile(path.join(repo, 'blobs', 'unrelated.bin'), big);
    await writeTrainingProject(box, repo, {
      name: 'digits-cnn',
      data: 'datasets/digits@latest',
      script: [
        'echo "lr=$2 data=$(cat "$1")"',
        'mkdir -p "$3"',
        'printf "weights for lr=%s from %s\\n" "$2" "$(cat "$1")" > "$3/model.bin"',
        'echo "{\\"accuracy\\": 0.91}" > "$3/metrics.json"',
        '[ "$2" != "fail" ] || { echo "diverged" >&2; exit 3; }',
      ],
    });
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'code']);
    const ok = async (args: string[]) => {
      const r = await box.gitml(repo, args);
      if (r.code !== 0) throw new Error(r.stderr);
    };
    await ok(['register', 'dataset', 'digits', box.path('digits.csv'), '--commit']);
    await ok(['register', 'environment', 'py', box.path('env.yaml'), '--commit']);
    first = (await box.git(repo, ['rev-parse', 'HEAD'])).stdout.trim();
    await box.git(repo, ['tag', 'v1']);
    await fsp.appendFile(path.join(repo, 'train', 'train.sh'), '# second version\n');
    await box.git(repo, ['commit', '-q', '-am', 'second']);
    second = (await box.git(repo, ['rev-parse', 'HEAD'])).stdout.trim();
    // The served repository is filled through its path (the HTTP side wants the token).
    await box.git(repo, ['remote', 'add', 'origin', `gitml::${bare}`]);
    await box.git(repo, ['push', '-q', 'origin', 'main', 'v1']);
  });
  afterAll(async () => {
    await server.close();
    await box.cleanup();
  });

  async function gitconfig(name: string, fields: Record<string, string>): Promise<string> {
    const file = box.path(`${name}.json`);
    await fsp.writeFile(file, JSON.stringify({ repo: `${server.url}/train.git`, ...fields }));
    return file;
  }

  async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
    return box.gitml(box.root, ['run', '--source-directory', 'train', '--experiment', 'experiment.yml', ...args], { env });
  }

  test.each([
    ['commitSha', () => ({ commitSha: first, token: TOKEN }), () => first],
    ['tag only', () => ({ tag: 'v1', token: TOKEN }), () => first],
    ['branch only', () => ({ branch: 'main', token: TOKEN }), () => second],
  ])('git config with %s runs exactly that commit', async (name, fields, expected) => {
    const ws = box.path(`ws-${name.replace(/\s/g, '-')}`);
    const r = await run(['--git-config', await gitconfig(name.replace(/\s/g, '-'), fields()), '--workspace', ws, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout.slice(r.stdout.indexOf('{\n')));
    expect(result.record.commit).toBe(expected());
    expect((await box.git(ws, ['rev-parse', 'HEAD'])).stdout.trim()).toBe(expected());
    expect(result.record.repo).toBe(`${server.url}/train.git`);
  });

  test('a wrong commitSha fails clearly', async () => {
    const r = await run(['--git-config', await gitconfig('wrong', { commitSha: 'deadbeefdeadbeef', token: TOKEN }), '--workspace', box.path('ws-wrong')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('has no commit deadbeefdeadbeef');
    expect(r.stderr).toContain('hint:');
    // The half-made workspace is gone.
    expect(fs.existsSync(box.path('ws-wrong'))).toBe(false);
  });

  test.each([
    ['a tag on another commit', () => ({ commitSha: second, tag: 'v1' }), /names commit .* and tag v1, but the tag is commit/],
    ['a tag that does not exist', () => ({ commitSha: second, tag: 'v9' }), /there is no tag v9|has no tag v9/],
    ['a branch that does not hold the commit', () => ({ commitSha: second, branch: 'nosuch' }), /branch nosuch/],
  ])('commitSha with %s is refused, not recorded untruthfully', async (name, fields, message) => {
    const ws = box.path(`ws-contra-${name.split(' ').join('-')}`);
    const r = await run(['--git-config', await gitconfig(`contra-${name.split(' ').length}`, { ...fields(), token: TOKEN }), '--workspace', ws]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(fs.existsSync(ws)).toBe(false);
  });

  test('commitSha and the tag that names it: both recorded', async () => {
    const ws = box.path('ws-agree');
    const r = await run(['--git-config', await gitconfig('agree', { commitSha: first, tag: 'v1', token: TOKEN }), '--workspace', ws, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.slice(r.stdout.indexOf('{\n'))).record).toMatchObject({ commit: first, tag: 'v1' });
  });

  test('without the token the private repository is refused with a clear error', async () => {
    const r = await run(['--git-config', await gitconfig('notoken', { branch: 'main' }), '--workspace', box.path('ws-notoken')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot clone/);
    expect(r.stderr).toMatch(/token/);
  });

  test('the token appears nowhere: logs, run record, git config, child process arguments, output', async () => {
    const ws = box.path('ws-secret');
    const logFile = box.path('gitml-debug.log');
    const watcher = watchArgs(TOKEN);
    // From the environment this time (GITML_GIT_TOKEN), at debug level.
    const r = await run(['--git-config', await gitconfig('secret', { branch: 'main' }), '--workspace', ws, '--register-outputs', '--push'], {
      GITML_GIT_TOKEN: TOKEN,
      GITML_LOG: 'debug',
      GITML_LOG_FILE: logFile,
    });
    const argsSeen = watcher.stop();
    expect(r.code).toBe(0);
    expect(argsSeen).toEqual([]);
    expect(server.requests).toBeGreaterThan(0);
    const places: [string, string][] = [
      ['stdout', r.stdout],
      ['stderr', r.stderr],
      ['debug log', await fsp.readFile(logFile, 'utf8').catch(() => '')],
      ['.git/config', await fsp.readFile(path.join(ws, '.git', 'config'), 'utf8')],
    ];
    for (const f of await fsp.readdir(path.join(ws, 'experiments', 'digits-cnn', 'runs'), { recursive: true })) {
      const p = path.join(ws, 'experiments', 'digits-cnn', 'runs', f as string);
      if (fs.statSync(p).isFile()) places.push([p, await fsp.readFile(p, 'utf8')]);
    }
    for (const [where, text] of places) expect({ where, leaked: text.includes(TOKEN) }).toEqual({ where, leaked: false });
    // The run branch arrived on the token-protected remote, with its record.
    const branches = (await box.git(bare, ['for-each-ref', '--format=%(refname)', 'refs/heads/runs'])).stdout;
    expect(branches).toMatch(/refs\/heads\/runs\/\d{8}-\d{6}-[0-9a-f]{6}/);
  });

  test('inputs are pulled (only them) and verified, params substitute, outputs register with lineage to the run', async () => {
    const ws = box.path('ws-lineage');
    const r = await run(['--git-config', await gitconfig('lineage', { branch: 'main', token: TOKEN }), '--workspace', ws, '-P', 'lr=0.5', '--register-outputs', '--json']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('lr=0.5 data=pixels,label');
    const { record, registered } = JSON.parse(r.stdout.slice(r.stdout.indexOf('{\n')));
    expect(record.params).toEqual({ lr: '0.5' });
    expect(record.command).toBe(`./train.sh ${path.join(ws, 'datasets/digits/1/digits.csv')} 0.5 ${path.join(ws, 'train/out/model')}`);
    expect(record.inputs).toEqual([expect.objectContaining({ name: 'data', ref: 'datasets/digits@latest', version: '1' })]);
    expect(record.environment).toMatchObject({ ref: 'environments/py@1', version: '1' });
    expect(record.metrics).toEqual({ accuracy: 0.91 });
    expect(record.outputs[0].files.map((f: { path: string }) => f.path)).toEqual(['metrics.json', 'model.bin']);
    expect(registered).toEqual(['models/digits-cnn@1']);
    // The undeclared large file was never downloaded: still a pointer in the workspace.
    expect(parsePointer(await fsp.readFile(path.join(ws, 'blobs', 'unrelated.bin')))).not.toBeNull();
    const lineage = JSON.parse((await box.gitml(ws, ['lineage', 'models/digits-cnn@latest', '--format', 'json'])).stdout);
    const ids = lineage.nodes.map((n: { id: string }) => n.id);
    expect(ids).toEqual(expect.arrayContaining([`run:${record.id}`, `commit:${second}`, 'datasets/digits@1', 'environments/py@1']));
    expect(lineage.edges).toEqual(expect.arrayContaining([{ from: `run:${record.id}`, to: 'models/digits-cnn@1', label: 'produced' }, { from: 'datasets/digits@1', to: `run:${record.id}`, label: 'input' }]));
    // The model knows the environment it was trained in (gitml get bundles it), and its run.
    const model = YAML.parse(await fsp.readFile(path.join(ws, 'models/digits-cnn/1/asset.yaml'), 'utf8'));
    expect(model.spec).toMatchObject({ environment: 'environments/py@1', path: '.' });
    expect(model.lineage.run).toEqual({ id: record.id, experiment: 'digits-cnn', commit: second });
  });

  test('a run of a registered experiment names its version; a single-file output keeps its file name; a failed input leaves no run folder', async () => {
    const exp = YAML.stringify({
      name: 'tiny',
      command: 'mkdir -p ${{outputs.model}} && echo weights > ${{outputs.model}}/w.bin',
      environment: 'environments/py@1',
      outputs: { model: { path: 'out', register: 'models/tiny' } },
    });
    await fsp.writeFile(box.path('tiny.yml'), exp);
    const reg = await box.gitml(repo, ['register', 'experiment', 'tiny', box.path('tiny.yml'), '--commit', '--json']);
    expect(reg.code).toBe(0);
    const r = await box.gitml(repo, ['run', '--source-directory', 'experiments/tiny/1', '--experiment', 'tiny.yml', '--register-outputs', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { record } = JSON.parse(r.stdout.slice(r.stdout.indexOf('{\n')));
    expect(record.experimentRef).toBe('experiments/tiny@1');
    const model = YAML.parse(await fsp.readFile(path.join(repo, 'models/tiny/1/asset.yaml'), 'utf8'));
    expect(model.spec).toMatchObject({ path: 'w.bin', environment: 'environments/py@1' });
    expect(model.lineage.run.experiment).toBe('experiments/tiny@1');
    await box.git(repo, ['reset', '-q', '--hard']);
    await box.git(repo, ['clean', '-q', '-fdx']);

    await fsp.writeFile(path.join(repo, 'train', 'broken.yml'), YAML.stringify({ name: 'broken', command: 'true', inputs: { data: 'datasets/nosuch@1' } }));
    await box.git(repo, ['add', 'train/broken.yml']);
    await box.git(repo, ['commit', '-q', '-m', 'broken experiment']);
    const failed = await box.gitml(repo, ['run', '--source-directory', 'train', '--experiment', 'broken.yml']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('datasets/nosuch@1');
    expect(fs.existsSync(path.join(repo, 'experiments', 'broken'))).toBe(false);
  });

  test('a failing command still writes its record, and gitml exits non-zero', async () => {
    const ws = box.path('ws-fail');
    const r = await run(['--git-config', await gitconfig('fail', { branch: 'main', token: TOKEN }), '--workspace', ws, '-P', 'lr=fail']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('diverged');
    expect(r.stderr).toMatch(/failed with exit code 3/);
    const runs = await fsp.readdir(path.join(ws, 'experiments', 'digits-cnn', 'runs'));
    const record = YAML.parse(await fsp.readFile(path.join(ws, 'experiments', 'digits-cnn', 'runs', runs[0]!, 'run.yaml'), 'utf8'));
    expect(record).toMatchObject({ status: 'failed', exitCode: 3 });
    expect(await fsp.readFile(path.join(ws, 'experiments', 'digits-cnn', 'runs', runs[0]!, 'log.txt'), 'utf8')).toContain('diverged');
  });

  test('from the current repository: refuses a dirty tree unless --allow-dirty, then records it; runs list/show', async () => {
    await fsp.appendFile(path.join(repo, 'train', 'train.sh'), '# local edit\n');
    const dirty = await box.gitml(repo, ['run', '--source-directory', 'train', '--experiment', 'experiment.yml']);
    expect(dirty.code).toBe(1);
    expect(dirty.stderr).toMatch(/uncommitted changes/);
    const r = await box.gitml(repo, ['run', '--source-directory', 'train', '--experiment', 'experiment.yml', '--allow-dirty', '--json']);
    expect(r.code).toBe(0);
    const { record } = JSON.parse(r.stdout.slice(r.stdout.indexOf('{\n')));
    expect(record.dirty).toBe(true);
    const list = JSON.parse((await box.gitml(repo, ['runs', 'list', '--json'])).stdout);
    expect(list.runs.map((x: { id: string }) => x.id)).toContain(record.id);
    const show = JSON.parse((await box.gitml(repo, ['runs', 'show', record.id, '--json'])).stdout);
    expect(show).toMatchObject({ id: record.id, experiment: 'digits-cnn', status: 'completed' });
    await box.git(repo, ['checkout', '--', 'train/train.sh']);
  });

  test('a local sweep runs each value in turn: one record each, linked by the sweep id, compared by runs list', async () => {
    const r = await box.gitml(repo, ['run', '--source-directory', 'train', '--experiment', 'experiment.yml', '--sweep', 'lr=0.1,0.2,0.3', '--json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout.slice(r.stdout.indexOf('{\n')));
    expect(result.runs.map((x: { record: { params: Record<string, string> } }) => x.record.params)).toEqual([{ lr: '0.1' }, { lr: '0.2' }, { lr: '0.3' }]);
    const listed = JSON.parse((await box.gitml(repo, ['runs', 'list', '--sweep', result.sweep, '--json'])).stdout).runs;
    expect(listed).toHaveLength(3);
    expect(listed.every((x: { metrics?: { accuracy: number } }) => x.metrics?.accuracy === 0.91)).toBe(true);
    await box.git(repo, ['clean', '-q', '-fdx', 'experiments']);
  });

  test('-- command overrides the experiment command, with substitution', async () => {
    const r = await box.gitml(repo, ['run', '--source-directory', 'train', '--experiment', 'experiment.yml', '-P', 'lr=7', '--', 'echo', 'rate=${{params.lr}}']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('rate=7');
  });
});
