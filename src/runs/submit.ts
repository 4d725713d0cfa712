import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { GitmlError } from '../errors';
import { gitText } from '../git/exec';
import type { Gitml } from '../context';
import type { RunGitConfig } from './gitconfig';
import { createSpool, dropTokens, listSpools, newSubmissionId, readSpool, recordText, spoolRoot, takeToken, writeSpec, type JobSpecType, type Spool } from './spool';
import { batchScript, cancel, FINAL_STATES, jobCancelled, jobStates, sbatchArgs, submit, type ElementState, type SlurmResources } from './slurm';
import { sweepParams } from './sweep';
import { readExperiment } from './experiment';
import type { RunRequest, RunSpec } from './run';

/**
 * Runs handed to a scheduler (docs/runs.md "On a cluster"). The submitter writes a spool folder and
 * submits one job array; each element runs `gitml run --from-job` on its node, which is the same code
 * path as a local run (clone at the exact commit, verified inputs, record, registration, push). The
 * submitter then follows the runs through the scheduler and the records the nodes copy back.
 */
export interface SubmitRequest extends RunSpec {
  workspace?: string;
  /** Sweep elements (each a set of params); empty: one run. */
  sweep: Record<string, string>[];
  resources: SlurmResources;
  /** How a node starts gitml (this installation's node and entry script by default). */
  gitmlCommand: string[];
}

export interface Submitted {
  submission: string;
  jobId: string;
  spool: string;
  sweep?: string;
  runs: { runId: string; params: Record<string, string>; target: string }[];
}

/** The code a cluster run checks out: the git config as given, or this repository at HEAD. */
async function sourceOf(req: SubmitRequest): Promise<{ gitConfig: Omit<RunGitConfig, 'token'>; token?: string; experimentName: string }> {
  if (req.gitConfig) {
    const { token, ...rest } = req.gitConfig;
    return { gitConfig: rest, token, experimentName: req.experimentFile ? path.basename(req.experimentFile).replace(/\.ya?ml$/i, '') : 'run' };
  }
  if (!req.gitml?.repo.workTree) throw new GitmlError('E_NOT_A_REPO', 'not in a git repository', { hint: 'Run it inside a clone, or pass --git-config gitconfig.json.' });
  const root = req.gitml.repo.workTree;
  const git = req.gitml.repo.git;
  const dirty = await gitText(git, ['status', '--porcelain', '--untracked-files=no']);
  if (dirty) {
    throw new GitmlError('E_USAGE', 'a cluster run checks out a commit, and this work tree has uncommitted changes', {
      hint: 'Commit them (the node runs exactly HEAD), or use --git-config with a pushed commit.',
    });
  }
  const commitSha = await gitText(git, ['rev-parse', 'HEAD']);
  let name = 'run';
  if (req.experimentFile) name = (await readExperiment(path.resolve(root, req.sourceDirectory, req.experimentFile))).name;
  // The node clones this repository by its path: it must see the same file system (docs/runs.md).
  return { gitConfig: { repo: root, commitSha }, experimentName: name };
}

/** Writes the spool folder and submits the job array. Returns the run ids and the Slurm job id. */
export async function submitToSlurm(req: SubmitRequest): Promise<Submitted> {
  const { gitConfig, token, experimentName } = await sourceOf(req);
  const submission = newSubmissionId();
  const elements = (req.sweep.length > 0 ? req.sweep : [{}]).map((params, i) => ({ runId: req.sweep.length > 0 ? `${submission}-${i}` : submission, params }));
  const spec: JobSpecType = {
    version: 1,
    submission,
    backend: 'slurm',
    submitted: new Date().toISOString(),
    gitConfig,
    tokenFiles: Boolean(token),
    sourceDirectory: req.sourceDirectory,
    ...(req.experimentFile ? { experimentFile: req.experimentFile } : {}),
    experiment: experimentName,
    params: req.params,
    command: req.command,
    registerOutputs: req.registerOutputs,
    push: req.push,
    nodes: req.resources.nodes ?? 1,
    ...(req.workspace ? { workspace: path.resolve(req.cwd, req.workspace) } : {}),
    ...(req.sweep.length > 0 ? { sweep: `sweep-${submission}` } : {}),
    elements,
  };
  const root = spoolRoot(req.gitml ? req.gitml.repo.commonDir : null, req.env);
  const spool = await createSpool(root, spec, token);
  try {
    const script = batchScript(spool.dir, req.gitmlCommand, `gitml run ${spec.sweep ?? submission}: ${elements.length} run(s) of ${experimentName} at ${gitConfig.commitSha ?? gitConfig.tag ?? gitConfig.branch ?? 'the default branch'} of ${gitConfig.repo}`);
    const jobId = await submit(spool.dir, script, sbatchArgs(spool.dir, experimentName, elements.length, req.resources), req.env);
    await writeSpec(spool.dir, { ...spec, jobId });
    return { submission, jobId, spool: spool.dir, sweep: spec.sweep, runs: elements.map((e, i) => ({ ...e, target: `${jobId}_${i}` })) };
  } catch (e) {
    await fsp.rm(spool.dir, { recursive: true, force: true });
    throw e;
  }
}

/** The node side: one element of a submission as a RunRequest (the token read from its file, then deleted). */
export async function requestFromJob(jobFile: string, index: number, base: Pick<RunRequest, 'env' | 'stdout' | 'stderr' | 'signal'>): Promise<RunRequest> {
  const spool = await readSpool(path.dirname(path.resolve(jobFile)));
  const spec = spool.spec;
  const element = spec.elements[index];
  if (!element) throw new GitmlError('E_USAGE', `${jobFile} has no element ${index} (it has ${spec.elements.length})`, { hint: 'The array index comes from SLURM_ARRAY_TASK_ID.' });
  const token = spec.tokenFiles ? await takeToken(spool.dir, index) : undefined;
  if (spec.tokenFiles && !token) throw new GitmlError('E_USAGE', `the git token of run ${element.runId} is gone from ${spool.dir}`, { hint: 'It is read once; a job restarted by Slurm must be submitted again.' });
  const workspaceBase = spec.workspace ?? base.env.TMPDIR ?? '/tmp';
  await fsp.mkdir(workspaceBase, { recursive: true });
  const jobId = base.env.SLURM_ARRAY_JOB_ID ? `${base.env.SLURM_ARRAY_JOB_ID}_${base.env.SLURM_ARRAY_TASK_ID ?? index}` : base.env.SLURM_JOB_ID;
  return {
    ...base,
    cwd: spool.dir,
    gitml: null,
    gitConfig: { ...spec.gitConfig, ...(token ? { token } : {}) },
    workspaceDir: path.join(workspaceBase, `gitml-run-${element.runId}`),
    sourceDirectory: spec.sourceDirectory,
    experimentFile: spec.experimentFile,
    params: sweepParams(spec.params, element.params),
    command: spec.command,
    registerOutputs: spec.registerOutputs,
    push: spec.push,
    allowDirty: false,
    runId: element.runId,
    ...(spec.sweep ? { sweep: { id: spec.sweep, index } } : {}),
    executor: { kind: 'slurm', ...(jobId ? { jobId } : {}), nodes: spec.nodes },
    recordCopyDir: path.join(spool.dir, 'records'),
    ...(jobId ? { cancelledByScheduler: () => jobCancelled(jobId, base.env) } : {}),
  };
}

export interface ClusterRun {
  runId: string;
  submission: string;
  experiment: string;
  sweep?: string;
  index: number;
  params: Record<string, string>;
  jobId?: string;
  /** The record's status when the run wrote one; else the scheduler's state. */
  status: string;
  slurm?: ElementState;
  record: string | null;
  log: string | null;
  spool: string;
}

/** Every cluster run this repository (or user) submitted, with its state now. */
export async function clusterRuns(gitml: Gitml | null, env: NodeJS.ProcessEnv): Promise<ClusterRun[]> {
  const roots = [...new Set([...(gitml ? [spoolRoot(gitml.repo.commonDir, env)] : []), spoolRoot(null, env)])];
  const out: ClusterRun[] = [];
  for (const root of roots) {
    for (const spool of await listSpools(root)) out.push(...(await runsOf(spool, env)));
  }
  return out;
}

async function runsOf(spool: Spool, env: NodeJS.ProcessEnv): Promise<ClusterRun[]> {
  const spec = spool.spec;
  const states = spec.jobId ? await jobStates(spec.jobId, env).catch(() => new Map<number, ElementState>()) : new Map<number, ElementState>();
  const out: ClusterRun[] = [];
  for (const [index, element] of spec.elements.entries()) {
    const record = await recordText(spool.dir, element.runId);
    const recorded = record ? /^status: (\w+)$/m.exec(record)?.[1] : undefined;
    const slurm = states.get(index);
    const log = spec.jobId ? path.join(spool.dir, `slurm-${spec.jobId}_${index}.out`) : null;
    // A job that ended without a record (a node died, it was cancelled before it started, it ran
    // out of time) says so: it never claims success.
    // The record is written when the command ends; registration and --push come after it. A job
    // that then failed says so beside the record's status.
    const jobFailed = recorded === 'completed' && slurm && FINAL_STATES.has(slurm.state) && slurm.state !== 'COMPLETED';
    const status = recorded ? (jobFailed ? `${recorded} (job ${slurm!.state} after the command: see gitml runs logs)` : recorded) : slurm ? (FINAL_STATES.has(slurm.state) ? `${slurm.state} (no record)` : slurm.state) : 'UNKNOWN (no record; Slurm has forgotten the job)';
    out.push({ runId: element.runId, submission: spec.submission, experiment: spec.experiment, sweep: spec.sweep, index, params: element.params, jobId: spec.jobId ? `${spec.jobId}_${index}` : undefined, status, slurm, record, log: log && fs.existsSync(log) ? log : null, spool: spool.dir });
  }
  return out;
}

/**
 * Whether a run has ended: Slurm says its job is over (the record comes before registration and
 * push, so a record alone is not the end), or Slurm no longer knows the job and its record is there.
 */
export function ended(run: ClusterRun): boolean {
  if (run.slurm) return FINAL_STATES.has(run.slurm.state);
  return run.record !== null || !run.jobId;
}

export async function cancelRun(run: ClusterRun, env: NodeJS.ProcessEnv): Promise<void> {
  if (!run.jobId) throw new GitmlError('E_USAGE', `run ${run.runId} was never submitted`, { hint: 'Nothing to cancel.' });
  await cancel(run.jobId, env);
  await dropTokens(run.spool, [run.index]);
}

/** Prints what the runs' logs gain until every run has ended; polls without a deadline (the job has its own --time). */
export async function follow(runIds: string[], gitml: Gitml | null, env: NodeJS.ProcessEnv, out: Writable, prefix: boolean): Promise<ClusterRun[]> {
  const offsets = new Map<string, number>();
  for (let delay = 200; ; delay = Math.min(delay * 2, 2000)) {
    const runs = (await clusterRuns(gitml, env)).filter((r) => runIds.includes(r.runId));
    for (const r of runs) {
      if (!r.log) continue;
      const at = offsets.get(r.runId) ?? 0;
      const fd = await fsp.open(r.log, 'r');
      try {
        const { size } = await fd.stat();
        if (size > at) {
          const buf = Buffer.alloc(size - at);
          await fd.read(buf, 0, buf.length, at);
          offsets.set(r.runId, size);
          out.write(prefix ? buf.toString('utf8').replace(/^(?=.)/gm, `[${r.index}] `) : buf);
        }
      } finally {
        await fd.close();
      }
    }
    if (runs.length === runIds.length && runs.every(ended)) return runs;
    await new Promise((r) => setTimeout(r, delay));
  }
}
