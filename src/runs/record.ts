import { z } from 'zod';

/** experiments/<name>/runs/<run-id>/run.yaml (docs/runs.md). */
export const RunRecord = z.object({
  id: z.string(),
  experiment: z.string(),
  /** The registered experiment version the run executed, when it was one. */
  experimentRef: z.string().optional(),
  /** cancelled: stopped by `gitml runs cancel` (or the scheduler) while the command ran. */
  status: z.enum(['completed', 'failed', 'cancelled']),
  repo: z.string(),
  commit: z.string(),
  branch: z.string().optional(),
  tag: z.string().optional(),
  dirty: z.boolean(),
  sourceDirectory: z.string(),
  command: z.string(),
  params: z.record(z.string(), z.string()),
  inputs: z.array(
    z.object({
      name: z.string(),
      ref: z.string().optional(),
      uri: z.string().optional(),
      version: z.string().optional(),
      digest: z.string(),
      path: z.string(),
    }),
  ),
  outputs: z.array(z.object({ name: z.string(), path: z.string(), files: z.array(z.object({ path: z.string(), sha256: z.string(), size: z.number() })), registered: z.string().optional() })),
  environment: z.object({ ref: z.string(), version: z.string(), digest: z.string() }).optional(),
  start: z.string(),
  end: z.string(),
  durationSeconds: z.number(),
  exitCode: z.number(),
  host: z.string(),
  metrics: z.record(z.string(), z.unknown()).optional(),
  log: z.string(),
  /** One element of a sweep (`gitml run --sweep`): the sweep's id and this element's index. */
  sweep: z.object({ id: z.string(), index: z.number().int().nonnegative() }).optional(),
  /** Where it ran: locally, or as a Slurm job (with the job id), or in a Kubernetes Job. */
  executor: z.object({ kind: z.enum(['local', 'slurm', 'kubernetes']), jobId: z.string().optional(), nodes: z.number().int().positive().optional() }).optional(),
});

export type RunRecordType = z.infer<typeof RunRecord>;

/** Run ids sort by time and never collide: 20261129-035200-3f9a1c. Pure given its inputs. */
export function newRunId(now: Date, random: string): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}-${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}-${random}`;
}
