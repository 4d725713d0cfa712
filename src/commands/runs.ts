import fs from 'node:fs';
import YAML from 'yaml';
import type { Argv } from 'yargs';
import { GitmlError } from '../errors';
import type { Gitml } from '../context';
import { findRuns, type FoundRun } from '../runs/list';
import { joinChecked } from '../safe-path';
import { cancelRun, follow } from '../runs/submit';
import { err, json, openOptional, out, withJson, type CliIO, type Command } from './io';

/** The one run `id` names (a full id, or its unique end). */
async function findRun(io: CliIO, gitml: Gitml | null, id: string): Promise<FoundRun> {
  const runs = await findRuns(gitml, io.env);
  const exact = runs.find((r) => r.row.id === id);
  const hits = exact ? [exact] : runs.filter((r) => r.row.id.endsWith(id));
  if (hits.length === 1) return hits[0]!;
  throw new GitmlError('E_USAGE', hits.length === 0 ? `no run ${JSON.stringify(id)} here` : `${JSON.stringify(id)} names ${hits.length} runs: ${hits.map((h) => h.row.id).join(', ')}`, {
    hint: 'See `gitml runs list` (fetch runs/* branches to see pushed runs).',
  });
}

function metricsText(m: Record<string, unknown> | undefined): string {
  return m ? Object.entries(m).map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(6)) : JSON.stringify(v)}`).join(' ') : '';
}

const withRun = <T>(y: Argv<T>) => withJson(y).positional('run', { type: 'string', describe: 'run id (or its unique end)' });

export const runsCommand: Command = (io) => ({
  command: 'runs <action>',
  describe: 'runs list [experiment] [--sweep id] | show <run> | logs <run> [--follow] | cancel <run>',
  builder: (y) =>
    withJson(y)
      .command({
        command: 'list [experiment]',
        describe: 'recorded runs, and cluster runs with their scheduler state; --sweep compares a sweep\'s params and metrics',
        builder: (c) => withJson(c).positional('experiment', { type: 'string' }).option('sweep', { type: 'string', describe: 'only the runs of this sweep' }),
        handler: async (argv) => {
          const gitml = await openOptional(io);
          const runs = await findRuns(gitml, io.env, { experiment: argv.experiment as string | undefined, sweep: argv.sweep as string | undefined });
          if (argv.json) return json(io, { runs: runs.map((r) => r.row) });
          if (runs.length === 0) return out(io, argv.sweep ? `No runs of ${argv.sweep} here.` : 'No runs recorded here.');
          for (const { row } of runs) {
            const where = row.jobId ? ` slurm ${row.jobId}` : '';
            const extra = argv.sweep ? `  ${Object.entries(row.params).map(([k, v]) => `${k}=${v}`).join(' ')}  ${metricsText(row.metrics)}` : `  ${row.commit}  ${row.start}`;
            out(io, `${row.id}  ${row.experiment.padEnd(20)} ${row.status.padEnd(10)}${where}${extra}`);
          }
        },
      })
      .command({
        command: 'show <run>',
        describe: 'a run\'s record (or, before it has one, what the scheduler says)',
        builder: withRun,
        handler: async (argv) => {
          const gitml = await openOptional(io);
          const hit = await findRun(io, gitml, argv.run as string);
          if (!hit.text) {
            const state = { id: hit.row.id, status: hit.row.status, jobId: hit.row.jobId, params: hit.row.params, slurm: hit.cluster?.slurm };
            if (argv.json) return json(io, state);
            return out(io, YAML.stringify(state).trimEnd());
          }
          if (argv.json) return json(io, YAML.parse(hit.text));
          out(io, `# ${hit.row.file}`);
          out(io, hit.text.trimEnd());
        },
      })
      .command({
        command: 'logs <run>',
        describe: 'a run\'s output (a cluster run\'s scheduler output file); --follow until it ends',
        builder: (c) => withRun(c).option('follow', { type: 'boolean', default: false, alias: 'f', describe: 'keep printing until the run ends' }),
        handler: async (argv) => {
          const gitml = await openOptional(io);
          const hit = await findRun(io, gitml, argv.run as string);
          if (argv.follow && hit.cluster) {
            await follow([hit.row.id], gitml, io.env, io.stdout, false);
            return;
          }
          const file = hit.cluster?.log ?? (hit.row.file && hit.text && gitml?.repo.workTree ? logOf(gitml.repo.workTree, hit.text) : null);
          if (!file || !fs.existsSync(file)) throw new GitmlError('E_USAGE', `no log of run ${hit.row.id} here yet`, { hint: hit.cluster ? 'A pending job has no output yet: --follow waits for it.' : 'Its log is in the workspace it ran in (see gitml runs show).' });
          io.stdout.write(fs.readFileSync(file));
        },
      })
      .command({
        command: 'cancel <run>',
        describe: 'stop a cluster run (scancel): its record says cancelled',
        builder: withRun,
        handler: async (argv) => {
          const gitml = await openOptional(io);
          const hit = await findRun(io, gitml, argv.run as string);
          if (!hit.cluster) throw new GitmlError('E_USAGE', `run ${hit.row.id} did not run on a cluster`, { hint: 'Local runs stop with Ctrl-C.' });
          if (hit.text) throw new GitmlError('E_USAGE', `run ${hit.row.id} has ended (${hit.row.status})`, { hint: 'Nothing to cancel.' });
          await cancelRun(hit.cluster, io.env);
          if (argv.json) return json(io, { id: hit.row.id, jobId: hit.cluster.jobId, cancelled: true });
          err(io, `gitml: cancelled run ${hit.row.id} (Slurm job ${hit.cluster.jobId})`);
        },
      }),
  handler: (argv) => {
    throw new GitmlError('E_USAGE', `unknown action ${JSON.stringify(argv.action)} for gitml runs`, { hint: 'Actions: list, show, logs, cancel (gitml runs <action> --help).' });
  },
});

/** The log file a local record names, confined to the work tree (a record is repository content). */
function logOf(root: string, text: string): string | null {
  const log = (YAML.parse(text) as { log?: unknown } | null)?.log;
  return typeof log === 'string' ? joinChecked(root, log, { what: 'log path', source: 'run.yaml' }) : null;
}
