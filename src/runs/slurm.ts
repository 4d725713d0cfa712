import fsp from 'node:fs/promises';
import path from 'node:path';
import { GitmlError } from '../errors';
import { findOnPath } from '../which';
import { shellQuote } from './experiment';
import { runProgram } from '../util/process';

/**
 * Slurm through its own commands (sbatch, scontrol, scancel): gitml submits, asks and cancels; the
 * scheduler schedules. Every submission is a job array (one element per run; a single run is array
 * 0-0), so element n of a submission is always `<job>_<n>` and its output `slurm-<job>_<n>.out`.
 */
export interface SlurmResources {
  partition?: string;
  time?: string;
  cpus?: number;
  mem?: string;
  gpus?: number;
  nodes?: number;
}

/** The states Slurm reports that end a job (squeue/scontrol JobState). */
export const FINAL_STATES = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'PREEMPTED', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE']);

export interface ElementState {
  state: string;
  exitCode?: string;
  reason?: string;
  node?: string;
}

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string) => runProgram(cmd, args, { env, cwd });

function requireSlurm(env: NodeJS.ProcessEnv, tool: string): void {
  if (!findOnPath(env, tool)) {
    throw new GitmlError('E_USAGE', `${tool} is not on PATH: gitml submits to Slurm with its own commands`, {
      hint: 'Run this on a machine that can submit jobs (a login node), or install the Slurm client (Debian: slurm-client) and point SLURM_CONF at the cluster.',
    });
  }
}

/** The batch script: no secret in it, just the node-side entry of the same run code path. Pure. */
export function batchScript(spoolDir: string, gitmlCommand: readonly string[], comment: string): string {
  return [
    '#!/bin/sh',
    `# ${comment.replace(/\n/g, ' ')}`,
    '# Written by gitml run --on slurm (docs/runs.md). The git token is not here: the run reads it from',
    '# a 0600 file in this folder and deletes it before the clone.',
    `exec ${gitmlCommand.map(shellQuote).join(' ')} run --from-job ${shellQuote(path.join(spoolDir, 'job.json'))} --array-index "\${SLURM_ARRAY_TASK_ID:-0}"`,
    '',
  ].join('\n');
}

/** sbatch's arguments for a submission of `count` runs. Pure. */
export function sbatchArgs(spoolDir: string, name: string, count: number, r: SlurmResources): string[] {
  const args = ['--parsable', `--job-name=gitml-${name}`, `--chdir=${spoolDir}`, `--output=${path.join(spoolDir, 'slurm-%A_%a.out')}`, `--array=0-${count - 1}`];
  if (r.partition) args.push(`--partition=${r.partition}`);
  if (r.time) args.push(`--time=${r.time}`);
  if (r.cpus) args.push(`--cpus-per-task=${r.cpus}`);
  if (r.mem) args.push(`--mem=${r.mem}`);
  if (r.gpus) args.push(`--gpus=${r.gpus}`);
  if (r.nodes && r.nodes > 1) args.push(`--nodes=${r.nodes}`, `--ntasks=${r.nodes}`, '--ntasks-per-node=1');
  return args;
}

/** Submits the batch script; the job's environment is the submitter's without the git token. */
export async function submit(spoolDir: string, script: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  requireSlurm(env, 'sbatch');
  const file = path.join(spoolDir, 'job.sh');
  await fsp.writeFile(file, script, { mode: 0o700 });
  const jobEnv = { ...env };
  delete jobEnv.GITML_GIT_TOKEN;
  delete jobEnv.GITML_RUN_TOKEN;
  const r = await run('sbatch', [...args, file], jobEnv, spoolDir);
  const id = /^(\d+)/.exec(r.stdout.trim())?.[1];
  if (r.code !== 0 || !id) throw new GitmlError('E_USAGE', `sbatch refused the job: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`, { hint: 'Check the partition, time and resource options against the cluster (sinfo shows what it has).' });
  return id;
}

/** Expands an ArrayTaskId field ("3", "0-2", "1,4-5%2"). Pure. */
export function arrayIndexes(field: string): number[] {
  const out: number[] = [];
  for (const part of field.replace(/%\d+$/, '').split(',')) {
    const m = /^(\d+)(?:-(\d+))?(?::(\d+))?$/.exec(part);
    if (!m) continue;
    const from = Number(m[1]);
    const to = m[2] ? Number(m[2]) : from;
    const step = m[3] ? Number(m[3]) : 1;
    for (let i = from; i <= to && out.length < 100_000; i += step) out.push(i);
  }
  return out;
}

/** Parses `scontrol show job <id> -o` (one line per job or pending array range). Pure. */
export function parseJobLines(text: string): Map<number, ElementState> {
  const out = new Map<number, ElementState>();
  for (const line of text.split('\n')) {
    if (!line.includes('JobId=')) continue;
    const field = (k: string) => new RegExp(`(?:^|\\s)${k}=(\\S*)`).exec(line)?.[1];
    const state: ElementState = { state: field('JobState') ?? 'UNKNOWN', exitCode: field('ExitCode'), reason: field('Reason'), node: field('NodeList') };
    const task = field('ArrayTaskId');
    for (const i of task ? arrayIndexes(task) : [0]) out.set(i, state);
  }
  return out;
}

/** Each element's state, by index; an empty map when Slurm no longer knows the job. */
export async function jobStates(jobId: string, env: NodeJS.ProcessEnv): Promise<Map<number, ElementState>> {
  requireSlurm(env, 'scontrol');
  const r = await run('scontrol', ['show', 'job', jobId, '-o'], env);
  if (r.code !== 0) {
    if (/Invalid job id/i.test(r.stderr)) return new Map();
    throw new GitmlError('E_USAGE', `scontrol cannot show job ${jobId}: ${r.stderr.trim()}`, { hint: 'Check SLURM_CONF and that the controller is up (scontrol ping).' });
  }
  return parseJobLines(r.stdout);
}

/**
 * Whether Slurm holds a job (`<array job>_<index>`, or a plain id) as cancelled. scancel marks the job
 * in the controller before the node signals its processes, so a process of the job can ask this once
 * it sees a signal's effect.
 */
export async function jobCancelled(jobId: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const index = Number(jobId.split('_')[1] ?? 0);
  return (await jobStates(jobId, env)).get(index)?.state === 'CANCELLED';
}

export async function cancel(target: string, env: NodeJS.ProcessEnv): Promise<void> {
  requireSlurm(env, 'scancel');
  const r = await run('scancel', [target], env);
  if (r.code !== 0) throw new GitmlError('E_USAGE', `scancel ${target} failed: ${r.stderr.trim() || `exit ${r.code}`}`, { hint: 'The job may have ended already: gitml runs list shows its state.' });
}
