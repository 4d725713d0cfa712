import path from 'node:path';
import { GitmlError } from '../errors';
import { readGitConfigFile } from '../runs/gitconfig';
import { runExperiment, type RunRequest, type RunResult } from '../runs/run';
import { follow, requestFromJob, submitToSlurm } from '../runs/submit';
import { expandSweep, sweepParams } from '../runs/sweep';
import { newSubmissionId } from '../runs/spool';
import { err, json, openOptional, out, withJson, type CliIO, type Command } from './io';

const SLURM_ONLY = ['partition', 'time', 'nodes', 'wait'] as const;
const KUBERNETES_ONLY = ['emit', 'image', 'token-secret'] as const;

/** Usage problems of the executor options, before anything happens. Pure. */
export function executorProblem(argv: Record<string, unknown>): string | null {
  const on = String(argv.on ?? 'local');
  const given = (k: string) => argv[k] !== undefined && argv[k] !== false;
  if (argv['from-job'] !== undefined) {
    for (const k of ['git-config', 'sweep', 'on', 'emit'] as const) if (k === 'sweep' ? (argv.sweep as string[]).length > 0 : given(k) && !(k === 'on' && on === 'local')) return `--from-job runs one element of a submitted job: --${k} does not go with it`;
    return null;
  }
  if (argv['array-index'] !== undefined) return '--array-index goes with --from-job';
  for (const k of SLURM_ONLY) if (given(k) && on !== 'slurm') return `--${k} goes with --on slurm`;
  for (const k of KUBERNETES_ONLY) if (given(k) && on !== 'kubernetes') return `--${k} goes with --on kubernetes`;
  for (const k of ['cpus', 'mem', 'gpus'] as const) if (given(k) && on === 'local') return `--${k} goes with --on slurm or --on kubernetes`;
  if (on === 'kubernetes' && !given('emit')) return '--on kubernetes writes a Job manifest: give --emit <job.yaml>';
  if (on !== 'local' && given('workspace') && on === 'kubernetes') return '--workspace does not go with --on kubernetes (the container has its own)';
  if (on !== 'local' && given('allow-dirty')) return `--allow-dirty does not go with --on ${on}: the cluster runs a commit`;
  const positive = (k: string, min: number) => given(k) && (!Number.isInteger(argv[k]) || (argv[k] as number) < min);
  if (positive('nodes', 1)) return '--nodes must be a whole number of at least 1';
  if (positive('cpus', 1)) return '--cpus must be a whole number of at least 1';
  if (positive('gpus', 0)) return '--gpus must be a whole number';
  if (given('time') && !/^(\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+|\d+-\d+:\d{2}|\d+-\d+:\d{2}:\d{2}|UNLIMITED|INFINITE)$/i.test(String(argv.time))) return `--time ${JSON.stringify(argv.time)} is not a Slurm time (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)`;
  if (given('mem') && !/^\d+[KMGT]?$/i.test(String(argv.mem))) return `--mem ${JSON.stringify(argv.mem)} is not a size (4096, 16G, 512M)`;
  return null;
}

/** How a compute node starts this gitml: the same node binary and entry script (docs/runs.md). */
function gitmlCommand(env: NodeJS.ProcessEnv): string[] {
  return env.GITML_NODE_COMMAND ? env.GITML_NODE_COMMAND.split(' ').filter(Boolean) : [process.execPath, path.resolve(process.argv[1]!)];
}

function report(io: CliIO, result: RunResult): void {
  const r = result.record;
  err(io, `gitml: run ${r.id} ${r.status} (exit ${r.exitCode}) in ${r.durationSeconds} s at commit ${r.commit.slice(0, 12)}`);
  err(io, `gitml: record ${result.recordPath}`);
  for (const a of result.registered) err(io, `gitml: registered ${a}`);
  if (result.pushedBranch) err(io, `gitml: pushed ${result.pushedBranch}`);
}

export const runCommand: Command = (io) => ({
  command: 'run [command..]',
  describe: 'run a training job from this repository at HEAD, or from a git config, here or on a cluster (Slurm, Kubernetes), and record its code and data provenance (docs/runs.md)',
  builder: (y) =>
    withJson(y)
      .parserConfiguration({ 'populate--': true, 'camel-case-expansion': false })
      .option('git-config', { type: 'string', describe: 'gitconfig.json: {"repo", "branch", "commitSha", "tag", "token"}' })
      .option('workspace', { type: 'string', describe: 'with --git-config: where to clone (default: a new temp directory); on a cluster: the folder the clones of the runs go under' })
      .option('source-directory', { type: 'string', default: '.', describe: 'folder of the repository the command runs in' })
      .option('experiment', { type: 'string', describe: 'experiment file (YAML), relative to the source directory' })
      .option('P', { type: 'string', array: true, default: [], describe: 'param key=value, repeatable' })
      .option('sweep', { type: 'string', array: true, default: [], describe: 'key=v1,v2,... : one run per combination (a Slurm job array with --on slurm), repeatable' })
      .option('register-outputs', { type: 'boolean', default: false, describe: 'register declared outputs as assets (lineage to this run)' })
      .option('push', { type: 'boolean', default: false, describe: 'commit the record and outputs on branch runs/<id> and push it' })
      .option('allow-dirty', { type: 'boolean', default: false, describe: 'run with uncommitted changes (recorded; local runs only)' })
      .option('on', { choices: ['local', 'slurm', 'kubernetes'] as const, default: 'local' as const, describe: 'where the command runs' })
      .option('partition', { type: 'string', describe: '--on slurm: partition' })
      .option('time', { type: 'string', describe: '--on slurm: time limit (HH:MM:SS, D-HH:MM, minutes)' })
      .option('cpus', { type: 'number', describe: 'CPUs per run' })
      .option('mem', { type: 'string', describe: 'memory per run (16G)' })
      .option('gpus', { type: 'number', describe: 'GPUs per run' })
      .option('nodes', { type: 'number', describe: '--on slurm: nodes per run (the command starts on each with srun and the rendezvous variables)' })
      .option('wait', { type: 'boolean', default: false, describe: '--on slurm: follow the job and exit with its status' })
      .option('emit', { type: 'string', describe: '--on kubernetes: write the batch/v1 Job manifest here' })
      .option('image', { type: 'string', describe: '--on kubernetes: container image (default: the environment asset\'s image)' })
      .option('token-secret', { type: 'string', describe: '--on kubernetes: Secret holding the git token (key "token")' })
      .option('from-job', { type: 'string', hidden: true, describe: 'run one element of a submitted job (the batch script calls this)' })
      .option('array-index', { type: 'number', hidden: true, describe: 'with --from-job: which element' }),
  handler: async (argv) => {
    const problem = executorProblem(argv as Record<string, unknown>);
    if (problem) throw new GitmlError('E_USAGE', problem, { hint: 'See gitml run --help and docs/runs.md.' });
    const sweep = expandSweep(argv.sweep as string[]);
    const command = [...(((argv['--'] as string[] | undefined) ?? []) as string[])];
    // scancel's SIGTERM and Ctrl-C stop the command and leave a record that says cancelled.
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    try {
      if (argv['from-job']) {
        const req = await requestFromJob(path.resolve(io.cwd, argv['from-job'] as string), (argv['array-index'] as number | undefined) ?? 0, { env: io.env, stdout: io.stdout, stderr: io.stderr, signal: abort.signal });
        return await finish(io, [await runExperiment(req)], argv.json as boolean);
      }
      const gitml = await openOptional(io);
      const gitConfig = argv['git-config'] ? await readGitConfigFile(path.resolve(io.cwd, argv['git-config'] as string), io.env) : undefined;
      const common = {
        gitml,
        cwd: io.cwd,
        env: io.env,
        gitConfig,
        sourceDirectory: argv['source-directory'] as string,
        experimentFile: argv.experiment as string | undefined,
        params: argv.P as string[],
        command,
        registerOutputs: argv['register-outputs'] as boolean,
        push: argv.push as boolean,
      };
      if (argv.on === 'slurm') {
        const submitted = await submitToSlurm({ ...common, workspace: argv.workspace as string | undefined, sweep, resources: { partition: argv.partition as string | undefined, time: argv.time as string | undefined, cpus: argv.cpus as number | undefined, mem: argv.mem as string | undefined, gpus: argv.gpus as number | undefined, nodes: argv.nodes as number | undefined }, gitmlCommand: gitmlCommand(io.env) });
        if (!argv.wait) {
          if (argv.json) return json(io, submitted);
          for (const r of submitted.runs) out(io, `Submitted run ${r.runId} as Slurm job ${r.target}${Object.keys(r.params).length ? ` (${Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join(', ')})` : ''}`);
          if (submitted.sweep) out(io, `Sweep ${submitted.sweep}: gitml runs list --sweep ${submitted.sweep}`);
          out(io, 'Follow with: gitml runs list, gitml runs logs <run> --follow; stop with gitml runs cancel <run>.');
          return;
        }
        for (const r of submitted.runs) err(io, `gitml: submitted run ${r.runId} as Slurm job ${r.target}`);
        const runs = await follow(submitted.runs.map((r) => r.runId), gitml, io.env, io.stdout, submitted.runs.length > 1);
        if (argv.json) json(io, { ...submitted, status: runs.map((r) => ({ runId: r.runId, status: r.status, jobId: r.jobId })) });
        else for (const r of runs) err(io, `gitml: run ${r.runId} (Slurm job ${r.jobId}): ${r.status}`);
        const bad = runs.filter((r) => r.status !== 'completed');
        if (bad.length > 0) throw new GitmlError('E_USAGE', `${bad.length} of ${runs.length} run(s) did not complete: ${bad.map((r) => `${r.runId} ${r.status}`).join(', ')}`, { hint: 'gitml runs logs <run> shows what happened.' });
        return;
      }
      if (argv.on === 'kubernetes') {
        const { emitKubernetesJob } = await import('../runs/kubernetes');
        const emitted = await emitKubernetesJob({ ...common, sweep, file: path.resolve(io.cwd, argv.emit as string), image: argv.image as string | undefined, tokenSecret: argv['token-secret'] as string | undefined, cpus: argv.cpus as number | undefined, mem: argv.mem as string | undefined, gpus: argv.gpus as number | undefined });
        if (argv.json) return json(io, emitted);
        out(io, `Wrote ${emitted.file}: Job ${emitted.name} (${emitted.completions} run(s)). Submit it with: kubectl apply -f ${emitted.file}`);
        if (emitted.tokenSecret) out(io, `It reads the git token from Secret ${emitted.tokenSecret} (key "token"): kubectl create secret generic ${emitted.tokenSecret} --from-file=token=<file>`);
        return;
      }
      // Local: one run, or a sweep's runs in turn.
      const base: Omit<RunRequest, 'params'> = { ...common, workspaceDir: argv.workspace as string | undefined, allowDirty: argv['allow-dirty'] as boolean, stdout: io.stdout, stderr: io.stderr, signal: abort.signal };
      if (sweep.length === 0) return await finish(io, [await runExperiment({ ...base, params: argv.P as string[] })], argv.json as boolean);
      const sweepId = `sweep-${newSubmissionId()}`;
      const results: RunResult[] = [];
      for (const [index, element] of sweep.entries()) {
        if (abort.signal.aborted) break;
        err(io, `gitml: sweep ${sweepId} run ${index + 1} of ${sweep.length}: ${Object.entries(element).map(([k, v]) => `${k}=${v}`).join(', ')}`);
        // Each run of a sweep from a git config gets its own clone.
        const workspaceDir = base.workspaceDir && gitConfig ? path.join(base.workspaceDir, String(index)) : base.workspaceDir;
        results.push(await runExperiment({ ...base, workspaceDir, params: sweepParams(argv.P as string[], element), sweep: { id: sweepId, index } }));
      }
      return await finish(io, results, argv.json as boolean, sweepId);
    } finally {
      process.removeListener('SIGTERM', onSignal);
      process.removeListener('SIGINT', onSignal);
    }
  },
});

async function finish(io: CliIO, results: RunResult[], asJson: boolean, sweep?: string): Promise<void> {
  if (asJson) json(io, results.length === 1 && !sweep ? results[0] : { sweep, runs: results });
  else for (const r of results) report(io, r);
  if (sweep && !asJson) err(io, `gitml: compare them with gitml runs list --sweep ${sweep}`);
  const failed = results.filter((r) => r.record.status !== 'completed');
  if (failed.length === 0) return;
  const one = failed[0]!;
  throw new GitmlError('E_USAGE', failed.length === 1 && results.length === 1 ? `the command ${one.record.status === 'cancelled' ? 'was cancelled' : `failed with exit code ${one.record.exitCode}`}` : `${failed.length} of ${results.length} runs did not complete`, {
    hint: `Its output is in ${path.join(one.workspace, one.record.log)}; the run record says what it ran with.`,
  });
}
