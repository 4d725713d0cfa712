import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { Job } from 'kubernetes-models/batch/v1';
import { slurmUnavailable, startSlurm, type SlurmCluster } from '../../scripts/slurm';
import { jobCancelled } from '../../src/runs/slurm';
import type { HttpGitServer } from '../helpers/http-git';
import { Sandbox } from '../helpers/sandbox';
import { serveTrainingRemote, writeTrainingProject } from '../helpers/training';

const TOKEN = 'ghp_sLurmT0kenValue0123456789abcdefXYZ';

/** Every process command line containing `needle`, sampled until stopped. */
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
  return { stop: () => (clearInterval(timer), seen) };
}

/** Every file under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const out: string[] = [];
  for (const e of fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true, recursive: true }) : []) {
    const p = path.join(e.parentPath, e.name);
    if (e.isFile() && fs.readFileSync(p).includes(needle)) out.push(p);
  }
  return out;
}

/**
 * gitml run on a real single-node Slurm cluster (Debian's slurm-wlm and munge, started for these
 * tests: scripts/slurm.ts). No mock: sbatch, scontrol and scancel talk to slurmctld, slurmd runs the
 * jobs, and the jobs run gitml against a token-protected git http-backend on 127.0.0.1.
 */
describe('gitml run --on slurm: a real single-node cluster', () => {
  let box: Sandbox;
  let cluster: SlurmCluster;
  let server: HttpGitServer;
  let bare: string;
  let commit: string;
  let config: string;
  const jobs = () => path.join(box.env.HOME!, '.cache', 'gitml', 'jobs');

  beforeAll(async () => {
    const why = slurmUnavailable();
    if (why) throw new Error(`cannot start the test cluster: ${why} (.ci/run installs slurm-wlm and munge)`);
    box = await Sandbox.create();
    // The jobs clone into $TMPDIR (gitml-run-<id>, left for the user to look at): inside the sandbox,
    // so the test leaves nothing in the machine's /tmp.
    box.env.TMPDIR = box.path('tmp');
    await fsp.mkdir(box.env.TMPDIR);
    cluster = await startSlurm();
    Object.assign(box.env, cluster.env);
    ({ bare, server } = await serveTrainingRemote(box, TOKEN));

    const repo = box.path('repo');
    await box.git(box.root, ['init', '-q', repo]);
    await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.store', `file://${box.path('store')}`]);
    await writeTrainingProject(box, repo, {
      name: 'digits',
      data: 'datasets/digits@1',
      script: [
        'echo "training lr=$2 on $(cat "$1") with WORLD_SIZE=$WORLD_SIZE RANK=$RANK MASTER_ADDR=$MASTER_ADDR"',
        'mkdir -p "$3"',
        'echo "weights lr=$2" > "$3/model.bin"',
        'echo "{\\"accuracy\\": 0.$(echo "$2" | tr -d .)}" > "$3/metrics.json"',
      ],
    });
    await box.git(repo, ['add', '.']);
    await box.git(repo, ['commit', '-q', '-m', 'code']);
    for (const args of [
      ['register', 'dataset', 'digits', box.path('digits.csv'), '--commit'],
      ['register', 'environment', 'py', box.path('env.yaml'), '--spec', 'image=python:3.12', '--commit'],
    ]) {
      const r = await box.gitml(repo, args);
      if (r.code !== 0) throw new Error(r.stderr);
    }
    commit = (await box.git(repo, ['rev-parse', 'HEAD'])).stdout.trim();
    await box.git(repo, ['remote', 'add', 'origin', `gitml::${bare}`]);
    await box.git(repo, ['push', '-q', 'origin', 'main']);
    config = box.path('gitconfig.json');
    await fsp.writeFile(config, JSON.stringify({ repo: `${server.url}/train.git`, commitSha: commit, token: TOKEN }));
  });
  afterAll(async () => {
    await server?.close();
    await cluster?.stop();
    await box?.cleanup();
  });

  /** States a run does not leave: gitml's record, or Slurm's while the record is not written. */
  const ENDED = /^(completed|failed|cancelled)$|^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)/;
  const submit = (args: string[]) => box.gitml(box.root, ['run', '--on', 'slurm', '--git-config', config, '--source-directory', 'train', ...args]);
  const list = async (sweep?: string) => JSON.parse((await box.ok(box.root, 'gitml', ['runs', 'list', '--json', ...(sweep ? ['--sweep', sweep] : [])])).stdout).runs as { id: string; status: string; params: Record<string, string>; metrics?: Record<string, number>; jobId?: string; sweep?: string }[];
  /**
   * Polls `gitml runs list` until `ok` (no deadline: the test budget ends a hang). Each status seen is
   * said on stderr, so a run that hangs shows where it stopped; a run that ended otherwise fails at once.
   */
  const waitFor = async (id: string, what: string, ok: (status: string) => boolean) => {
    let last: string | undefined;
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      const run = (await list()).find((r) => r.id === id);
      if (run && ok(run.status)) return run;
      if (run?.status !== last) {
        last = run?.status;
        process.stderr.write(`slurm test: run ${id} is ${last ?? 'not listed yet'} (waiting for ${what})\n`);
      }
      if (run && ENDED.test(run.status)) throw new Error(`run ${id} ended as ${run.status} while the test waited for ${what}`);
      await new Promise((r) => setTimeout(r, delay));
    }
  };

  test('a run from gitconfig.json completes on the node, with the provenance of a local run, and the token is nowhere', async () => {
    const watcher = watchArgs(TOKEN);
    const r = await submit(['--experiment', 'experiment.yml', '-P', 'lr=0.5', '--register-outputs', '--push', '--wait', '--json']);
    const seenInArgs = watcher.stop();
    expect(r.stderr).toMatch(/submitted run .* as Slurm job \d+_0/);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout.slice(r.stdout.indexOf('{\n')));
    expect(result.status).toEqual([expect.objectContaining({ status: 'completed' })]);
    const runId = result.runs[0].runId as string;
    const jobId = result.jobId as string;
    // The job's output is the command's (followed by --wait).
    expect(r.stdout).toContain('training lr=0.5 on pixels,label with WORLD_SIZE=1 RANK=0 MASTER_ADDR=gitmlnode');

    // The record, as the node wrote it: same commit, inputs, environment as a local run; the executor.
    const record = YAML.parse(fs.readFileSync(path.join(result.spool, 'records', `${runId}.yaml`), 'utf8'));
    expect(record).toMatchObject({ id: runId, status: 'completed', commit, repo: `${server.url}/train.git`, executor: { kind: 'slurm', jobId: `${jobId}_0`, nodes: 1 }, params: { lr: '0.5' } });
    expect(record.inputs).toEqual([expect.objectContaining({ ref: 'datasets/digits@1', version: '1' })]);
    expect(record.environment).toMatchObject({ ref: 'environments/py@1' });
    // Pushed from the node: the run branch with the record and the registered model, whose lineage
    // is model <- run <- commit + input versions + environment.
    const shown = await box.run(bare, 'git', ['show', `refs/heads/runs/${runId}:models/digits/1/asset.yaml`]);
    if (shown.code !== 0) throw new Error(`the run branch is not on the server; the job's output:\n${r.stdout}\n${r.stderr}\n${fs.readdirSync(result.spool).map((f) => f.endsWith('.out') ? fs.readFileSync(path.join(result.spool, f), 'utf8') : '').join('\n')}`);
    const model = YAML.parse(shown.stdout);
    expect(model.lineage.run).toEqual({ id: runId, experiment: 'digits', commit });
    expect(model.lineage.inputs.map((i: { ref: string }) => i.ref)).toEqual(['datasets/digits@1', 'environments/py@1']);
    expect(model.spec.environment).toBe('environments/py@1');

    // The token: not in any argument, the batch script, the spool, Slurm's state, logs or output.
    expect(seenInArgs).toEqual([]);
    expect(fs.existsSync(path.join(result.spool, 'token-0'))).toBe(false);
    expect(filesContaining(result.spool, TOKEN)).toEqual([]);
    expect(filesContaining(path.join(cluster.root, 'log'), TOKEN)).toEqual([]);
    const show = spawnSync('scontrol', ['show', 'job', '-dd', jobId], { env: { ...process.env, ...cluster.env } }).stdout.toString();
    expect(show).toContain(`JobId=${jobId}`);
    expect(show).not.toContain(TOKEN);
    expect(filesContaining(path.join(cluster.root, 'state'), TOKEN)).toEqual([]);
    expect(JSON.stringify(record)).not.toContain(TOKEN);
    // And gitml runs list/show see it from here.
    expect((await list()).find((x) => x.id === runId)).toMatchObject({ status: 'completed', jobId: `${jobId}_0` });
  });

  test('a sweep is one job array: three runs, three records, compared by gitml runs list --sweep', async () => {
    const r = await submit(['--experiment', 'experiment.yml', '--sweep', 'lr=0.1,0.2,0.3', '--wait', '--json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout.slice(r.stdout.indexOf('{\n')));
    expect(result.runs.map((x: { target: string }) => x.target)).toEqual([0, 1, 2].map((i) => `${result.jobId}_${i}`));
    const runs = await list(result.sweep);
    expect(runs.map((x) => [x.params.lr, x.status, x.metrics?.accuracy])).toEqual([
      ['0.1', 'completed', 0.01],
      ['0.2', 'completed', 0.02],
      ['0.3', 'completed', 0.03],
    ]);
    expect(new Set(runs.map((x) => x.jobId!.split('_')[0]))).toEqual(new Set([result.jobId]));
    const text = (await box.ok(box.root, 'gitml', ['runs', 'list', '--sweep', result.sweep])).stdout;
    expect(text).toMatch(/lr=0\.3 +accuracy=0\.03/);
  });

  test('gitml runs cancel stops a running job; its record says cancelled; logs show what it printed', async () => {
    // `&&`: Slurm signals the job's processes one by one, so the shell may see its sleep die a moment
    // before its own signal arrives; it must still not go on to the rest of the command.
    const r = await submit(['--json', '--', 'sh', '-c', 'echo started; sleep 600 && echo never']);
    expect(r.code).toBe(0);
    const { runs } = JSON.parse(r.stdout);
    const id = runs[0].runId as string;
    await waitFor(id, 'RUNNING', (s) => s === 'RUNNING');
    // Running, and (once the clone is done) printing.
    for (let delay = 100; !(await box.run(box.root, 'gitml', ['runs', 'logs', id])).stdout.includes('started'); delay = Math.min(delay * 2, 1000)) {
      const status = (await list()).find((x) => x.id === id)?.status ?? 'not listed';
      if (ENDED.test(status)) throw new Error(`run ${id} ended as ${status} before it printed 'started'`);
      await new Promise((res) => setTimeout(res, delay));
    }
    const cancel = await box.gitml(box.root, ['runs', 'cancel', id]);
    expect(cancel.code).toBe(0);
    const ended = await waitFor(id, 'its end', (s) => s === 'cancelled' || /CANCELLED|no record/.test(s));
    // What the node asks when its command dies of scancel's SIGTERM before gitml's own arrives.
    expect(await jobCancelled(ended.jobId!, { ...process.env, ...cluster.env })).toBe(true);
    expect(ended.status).toBe('cancelled');
    const logs = (await box.ok(box.root, 'gitml', ['runs', 'logs', id])).stdout;
    expect(logs).toContain('started');
    expect(logs).not.toContain('never');
    const again = await box.gitml(box.root, ['runs', 'cancel', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('has ended');
  });

  test('a failing command: the job fails, the record says failed, --wait exits non-zero', async () => {
    const r = await submit(['--wait', '--', 'sh', '-c', 'echo diverged >&2; exit 3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/did not complete: .* failed/);
    expect(r.stdout + r.stderr).toContain('diverged');
  });

  test('a command killed by a SIGTERM of its own is failed, not cancelled: only Slurm says cancelled', async () => {
    const r = await submit(['--wait', '--json', '--', 'sh', '-c', 'echo going; kill -TERM $$']);
    expect(r.code).toBe(1);
    const result = JSON.parse(r.stdout.slice(r.stdout.indexOf('{\n')));
    const run = (await list()).find((x) => x.id === result.runs[0].runId)!;
    expect(run.status).toBe('failed');
    expect(await jobCancelled(run.jobId!, { ...process.env, ...cluster.env })).toBe(false);
    const record = YAML.parse(fs.readFileSync(path.join(result.spool, 'records', `${run.id}.yaml`), 'utf8'));
    expect(record).toMatchObject({ status: 'failed', exitCode: 143 });
  });

  test('usage errors stop before anything is submitted', async () => {
    const before = fs.existsSync(jobs()) ? fs.readdirSync(jobs()).length : 0;
    for (const args of [['--time', 'soon'], ['--nodes', '0'], ['--mem', 'lots'], ['--emit', 'x.yaml'], ['--sweep', 'lr'], ['--sweep', 'lr=1,', '--sweep', 'lr=2']]) {
      const r = await submit(args);
      expect({ args, code: r.code }).toEqual({ args, code: 1 });
      expect(r.stderr).not.toContain('internal error');
    }
    expect(fs.existsSync(jobs()) ? fs.readdirSync(jobs()).length : 0).toBe(before);
  });

  test('--on kubernetes --emit: a valid batch/v1 Job; its container command, run here as the container would, completes the run', async () => {
    const file = box.path('job.yaml');
    const r = await box.gitml(box.root, ['run', '--on', 'kubernetes', '--emit', file, '--git-config', config, '--token-secret', 'git-token', '--source-directory', 'train', '--experiment', 'experiment.yml', '--image', 'registry.example.com/gitml:1', '--cpus', '2', '--mem', '4G', '--sweep', 'lr=0.4,0.6']);
    expect(r.code).toBe(0);
    const text = await fsp.readFile(file, 'utf8');
    expect(text).not.toContain(TOKEN);
    const manifest = YAML.parse(text);
    new Job(manifest).validate();
    expect(manifest.spec).toMatchObject({ completionMode: 'Indexed', completions: 2 });
    const container = manifest.spec.template.spec.containers[0];
    expect(container.resources.requests).toEqual({ cpu: '2', memory: '4Gi' });
    expect(container.env).toEqual(expect.arrayContaining([{ name: 'GITML_GIT_TOKEN', valueFrom: { secretKeyRef: { name: 'git-token', key: 'token' } } }]));
    // The container: its command and env (the Secret's value put in, as the kubelet does), element 1.
    const env: NodeJS.ProcessEnv = { ...box.env, JOB_COMPLETION_INDEX: '1' };
    for (const e of container.env as { name: string; value?: string }[]) env[e.name] = e.value ?? TOKEN;
    const workspace = box.path('pod-workspace');
    await fsp.mkdir(workspace);
    const [cmd, ...args] = container.command as string[];
    // The container's own paths, moved into the sandbox (its /tmp is not the machine's).
    const script = args[1]!.replace(/\/workspace\/run/g, path.join(workspace, 'run')).replace(/\/tmp\/gitconfig\.json/g, path.join(workspace, 'gitconfig.json'));
    expect(script.split(box.root).join('<sandbox>')).not.toMatch(/\/tmp\/|\/workspace\//);
    const ran = await box.run(box.root, cmd!, [args[0]!, script], { env });
    expect(ran.stderr).toMatch(/run .* completed/);
    expect(ran.code).toBe(0);
    const record = fs.readdirSync(path.join(workspace, 'run', 'experiments', 'digits', 'runs'));
    const doc = YAML.parse(fs.readFileSync(path.join(workspace, 'run', 'experiments', 'digits', 'runs', record[0]!, 'run.yaml'), 'utf8'));
    expect(doc).toMatchObject({ status: 'completed', commit, params: { lr: '0.6' } });
  });
});
