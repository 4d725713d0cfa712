import { z } from 'zod';

/** experiments/<name>/runs/<run-id>/run.yaml (docs/runs.md). */
export const RunRecord = z.object({
  id: z.string(),
  experiment: z.string(),
  /** The registered experiment version the run executed, when it was one. */
  experimentRef: z.string().optional(),
  status: z.enum(['completed', 'failed']),
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
});

export type RunRecordType = z.infer<typeof RunRecord>;

/** Run ids sort by time and never collide: 20261129-035200-3f9a1c. Pure given its inputs. */
export function newRunId(now: Date, random: string): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}-${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}-${random}`;
}
