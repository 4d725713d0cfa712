import fsp from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import type { Gitml } from '../context';
import { gitZ, runGit } from '../git/exec';
import { clusterRuns, type ClusterRun } from './submit';

/** One run as `gitml runs list` shows it: from its record, or (a cluster run still going) from the scheduler. */
export interface RunRow {
  id: string;
  experiment: string;
  status: string;
  commit: string;
  start: string;
  /** Where the record is (a file, `<ref>:<path>`, or the spool copy); null when there is none yet. */
  file: string | null;
  sweep?: string;
  params: Record<string, string>;
  metrics?: Record<string, unknown>;
  jobId?: string;
  executor: string;
}

export interface FoundRun {
  row: RunRow;
  text: string | null;
  cluster?: ClusterRun;
}

function rowOf(doc: Record<string, unknown>, file: string): RunRow {
  const sweep = doc.sweep as { id?: string } | undefined;
  const executor = doc.executor as { kind?: string; jobId?: string } | undefined;
  return {
    id: String(doc.id),
    experiment: String(doc.experiment),
    status: String(doc.status),
    commit: String(doc.commit).slice(0, 12),
    start: String(doc.start),
    file,
    ...(sweep?.id ? { sweep: sweep.id } : {}),
    params: (doc.params ?? {}) as Record<string, string>,
    ...(doc.metrics ? { metrics: doc.metrics as Record<string, unknown> } : {}),
    ...(executor?.jobId ? { jobId: executor.jobId } : {}),
    executor: executor?.kind ?? 'local',
  };
}

/**
 * Every run this repository knows: records in the work tree, records pushed on runs/<id> branches
 * (local or fetched), and runs submitted to a cluster from here (their record once written, else
 * the scheduler's state). Sorted by id (ids sort by time).
 */
export async function findRuns(gitml: Gitml | null, env: NodeJS.ProcessEnv, filter: { experiment?: string; sweep?: string } = {}): Promise<FoundRun[]> {
  const found = new Map<string, FoundRun>();
  const add = (file: string, text: string, cluster?: ClusterRun) => {
    const doc = YAML.parse(text) as Record<string, unknown> | null;
    if (!doc?.id) return;
    found.set(String(doc.id), { row: rowOf(doc, file), text, ...(cluster ? { cluster } : {}) });
  };
  if (gitml?.repo.workTree) {
    const base = path.join(gitml.repo.workTree, 'experiments');
    for (const exp of await fsp.readdir(base).catch(() => [] as string[])) {
      for (const id of await fsp.readdir(path.join(base, exp, 'runs')).catch(() => [] as string[])) {
        const file = path.join(base, exp, 'runs', id, 'run.yaml');
        const text = await fsp.readFile(file, 'utf8').catch(() => null);
        if (text) add(path.relative(gitml.repo.workTree, file), text);
      }
    }
  }
  if (gitml) {
    const refs = (await runGit(gitml.repo.git, ['for-each-ref', '--format=%(refname)', 'refs/heads/runs', 'refs/remotes/origin/runs'])).stdout.toString('utf8').split('\n').filter(Boolean);
    for (const ref of refs) {
      for (const p of await gitZ(gitml.repo.git, ['ls-tree', '-r', '-z', '--name-only', ref, '--', 'experiments'])) {
        if (!p.endsWith('/run.yaml') || found.has(p.split('/')[3]!)) continue;
        const r = await runGit(gitml.repo.git, ['show', `${ref}:${p}`], { okCodes: [128] });
        if (r.code === 0) add(`${ref}:${p}`, r.stdout.toString('utf8'));
      }
    }
  }
  for (const c of await clusterRuns(gitml, env)) {
    if (c.record) add(path.join(c.spool, 'records', `${c.runId}.yaml`), c.record, c);
    else if (!found.has(c.runId)) {
      found.set(c.runId, {
        row: { id: c.runId, experiment: c.experiment, status: c.status, commit: '', start: '', file: null, ...(c.sweep ? { sweep: c.sweep } : {}), params: c.params, ...(c.jobId ? { jobId: c.jobId } : {}), executor: 'slurm' },
        text: null,
        cluster: c,
      });
    } else found.get(c.runId)!.cluster = c;
  }
  return [...found.values()]
    .filter((r) => (!filter.experiment || r.row.experiment === filter.experiment) && (!filter.sweep || r.row.sweep === filter.sweep))
    .sort((a, b) => a.row.id.localeCompare(b.row.id, 'en', { numeric: true }));
}
