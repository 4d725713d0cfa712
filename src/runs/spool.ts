import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { errnoCode, GitmlError } from '../errors';
import { makeDirs } from '../safe-path';
import { newRunId } from './record';

/**
 * A submission's folder (the "spool"): what a scheduler's job runs (job.json, the batch script), the
 * token files, the scheduler's output per run, and a copy of each run's record once it is written.
 * The compute nodes read and write it, so it must be on a file system they share with the submitter
 * (a cluster's home or project file system; docs/runs.md). One folder per submission:
 *
 *   <spool root>/<submission id>/job.json      the job (no secret)
 *   <spool root>/<submission id>/job.sh        the batch script (no secret)
 *   <spool root>/<submission id>/token-<n>     the git token for element n (0600; the node deletes it)
 *   <spool root>/<submission id>/slurm-<job>_<n>.out   scheduler output of element n
 *   <spool root>/<submission id>/records/<run id>.yaml  the record, copied when the run ends
 */
export const JobSpec = z.object({
  version: z.literal(1),
  submission: z.string(),
  backend: z.enum(['slurm', 'kubernetes']),
  submitted: z.string(),
  /** Where the code comes from (no token: see tokenFiles). */
  gitConfig: z.object({ repo: z.string(), branch: z.string().optional(), commitSha: z.string().optional(), tag: z.string().optional() }),
  tokenFiles: z.boolean(),
  sourceDirectory: z.string(),
  experimentFile: z.string().optional(),
  experiment: z.string(),
  params: z.array(z.string()),
  command: z.array(z.string()),
  registerOutputs: z.boolean(),
  push: z.boolean(),
  nodes: z.number().int().positive(),
  /** Each element's workspace goes under this folder on the node (default: the node's temp folder). */
  workspace: z.string().optional(),
  sweep: z.string().optional(),
  elements: z.array(z.object({ runId: z.string(), params: z.record(z.string(), z.string()) })).min(1),
  /** The scheduler's id, once submitted. */
  jobId: z.string().optional(),
});
export type JobSpecType = z.infer<typeof JobSpec>;

export interface Spool {
  dir: string;
  spec: JobSpecType;
}

/** Where a repository's submissions are kept (inside its git folder), or the user's when none. */
export function spoolRoot(gitDir: string | null, env: NodeJS.ProcessEnv): string {
  if (gitDir) return path.join(gitDir, 'gitml', 'jobs');
  const cache = env.XDG_CACHE_HOME ?? path.join(env.HOME ?? os.homedir(), '.cache');
  return path.join(cache, 'gitml', 'jobs');
}

export function newSubmissionId(): string {
  return newRunId(new Date(), randomBytes(3).toString('hex'));
}

/** Creates the folder (0700: token files live in it) and writes job.json and one token file per element. */
export async function createSpool(root: string, spec: JobSpecType, token: string | undefined): Promise<Spool> {
  const dir = path.join(root, spec.submission);
  await makeDirs(root);
  await fsp.mkdir(dir, { mode: 0o700 });
  await fsp.mkdir(path.join(dir, 'records'), { mode: 0o700 });
  if (token) {
    for (let i = 0; i < spec.elements.length; i++) await fsp.writeFile(tokenFile(dir, i), token, { mode: 0o600, flag: 'wx' });
  }
  await writeSpec(dir, spec);
  return { dir, spec };
}

export async function writeSpec(dir: string, spec: JobSpecType): Promise<void> {
  const file = path.join(dir, 'job.json');
  await fsp.writeFile(`${file}.tmp`, JSON.stringify(spec, null, 2), { mode: 0o600 });
  await fsp.rename(`${file}.tmp`, file);
}

export function tokenFile(dir: string, index: number): string {
  return path.join(dir, `token-${index}`);
}

/** The token for one element, removed as it is read (a node reads it once, before cloning). */
export async function takeToken(dir: string, index: number): Promise<string | undefined> {
  const file = tokenFile(dir, index);
  try {
    const token = (await fsp.readFile(file, 'utf8')).trim();
    await fsp.rm(file, { force: true });
    return token || undefined;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** Removes token files nobody will read (a cancelled or finished submission). */
export async function dropTokens(dir: string, indexes?: number[]): Promise<void> {
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    const m = /^token-(\d+)$/.exec(name);
    if (m && (!indexes || indexes.includes(Number(m[1])))) await fsp.rm(path.join(dir, name), { force: true });
  }
}

export async function readSpool(dir: string): Promise<Spool> {
  const file = path.join(dir, 'job.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (e) {
    throw new GitmlError('E_USAGE', `cannot read ${file}: ${(e as Error).message}`, { hint: 'Give the job.json gitml wrote when it submitted the run.' });
  }
  const spec = JobSpec.safeParse(raw);
  if (!spec.success) throw new GitmlError('E_USAGE', `invalid ${file}: ${spec.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, { hint: 'It is written by gitml run --on slurm.' });
  return { dir, spec: spec.data };
}

/** Every submission under a spool root, newest first. */
export async function listSpools(root: string): Promise<Spool[]> {
  const out: Spool[] = [];
  for (const name of (await fsp.readdir(root).catch(() => [] as string[])).sort().reverse()) {
    const dir = path.join(root, name);
    if (!fs.existsSync(path.join(dir, 'job.json'))) continue;
    out.push(await readSpool(dir).catch(() => null as never));
  }
  return out.filter(Boolean);
}

/** The record a run of this submission wrote, if it has ended. */
export async function recordText(dir: string, runId: string): Promise<string | null> {
  return fsp.readFile(path.join(dir, 'records', `${runId}.yaml`), 'utf8').catch(() => null);
}
