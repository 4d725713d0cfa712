import fsp from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { GitmlError, isGitmlError } from '../errors';
import { gitZ, runGit } from '../git/exec';
import { readGitConfigFile } from '../runs/gitconfig';
import { runExperiment } from '../runs/run';
import type { Gitml } from '../context';
import { err, json, openHere, out, withJson, type CliIO, type Command } from './io';

async function openOptional(io: CliIO): Promise<Gitml | null> {
  try {
    return await openHere(io);
  } catch (e) {
    if (isGitmlError(e, 'E_NOT_A_REPO')) return null;
    throw e;
  }
}

export const runCommand: Command = (io) => ({
  command: 'run [command..]',
  describe: 'run a training job from this repository at HEAD, or from a git config, and record its code and data provenance (docs/runs.md)',
  builder: (y) =>
    withJson(y)
      .parserConfiguration({ 'populate--': true, 'camel-case-expansion': false })
      .option('git-config', { type: 'string', describe: 'gitconfig.json: {"repo", "branch", "commitSha", "tag", "token"}' })
      .option('workspace', { type: 'string', describe: 'with --git-config: where to clone (default: a new temp directory)' })
      .option('source-directory', { type: 'string', default: '.', describe: 'folder of the repository the command runs in' })
      .option('experiment', { type: 'string', describe: 'experiment file (YAML), relative to the source directory' })
      .option('P', { type: 'string', array: true, default: [], describe: 'param key=value, repeatable' })
      .option('register-outputs', { type: 'boolean', default: false, describe: 'register declared outputs as assets (lineage to this run)' })
      .option('push', { type: 'boolean', default: false, describe: 'commit the record and outputs on branch runs/<id> and push it' })
      .option('allow-dirty', { type: 'boolean', default: false, describe: 'run with uncommitted changes (recorded)' }),
  handler: async (argv) => {
    const gitml = await openOptional(io);
    const gitConfig = argv['git-config'] ? await readGitConfigFile(path.resolve(io.cwd, argv['git-config'] as string), io.env) : undefined;
    const command = [...(((argv['--'] as string[] | undefined) ?? []) as string[])];
    const result = await runExperiment({
      cwd: io.cwd,
      env: io.env,
      gitml,
      gitConfig,
      workspaceDir: argv.workspace as string | undefined,
      sourceDirectory: argv['source-directory'] as string,
      experimentFile: argv.experiment as string | undefined,
      params: argv.P as string[],
      command,
      registerOutputs: argv['register-outputs'] as boolean,
      push: argv.push as boolean,
      allowDirty: argv['allow-dirty'] as boolean,
      stdout: io.stdout,
      stderr: io.stderr,
    });
    const r = result.record;
    if (argv.json) json(io, { ...result, record: r });
    else {
      err(io, `gitml: run ${r.id} ${r.status} (exit ${r.exitCode}) in ${r.durationSeconds} s at commit ${r.commit.slice(0, 12)}`);
      err(io, `gitml: record ${result.recordPath}`);
      for (const a of result.registered) err(io, `gitml: registered ${a}`);
      if (result.pushedBranch) err(io, `gitml: pushed ${result.pushedBranch}`);
    }
    if (r.status === 'failed') {
      throw new GitmlError('E_USAGE', `the command failed with exit code ${r.exitCode}`, { hint: `Its output is in ${path.join(result.workspace, r.log)}; the run record says what it ran with.` });
    }
  },
});

interface RunRow {
  id: string;
  experiment: string;
  status: string;
  commit: string;
  start: string;
  file: string;
}

async function findRuns(gitml: Gitml, experiment?: string): Promise<{ row: RunRow; text: string }[]> {
  const found = new Map<string, { row: RunRow; text: string }>();
  const add = (file: string, text: string) => {
    const doc = YAML.parse(text) as Record<string, string>;
    if (!doc?.id || (experiment && doc.experiment !== experiment)) return;
    found.set(doc.id, { row: { id: doc.id, experiment: doc.experiment!, status: doc.status!, commit: String(doc.commit).slice(0, 12), start: doc.start!, file }, text });
  };
  if (gitml.repo.workTree) {
    const base = path.join(gitml.repo.workTree, 'experiments');
    for (const exp of await fsp.readdir(base).catch(() => [] as string[])) {
      for (const id of await fsp.readdir(path.join(base, exp, 'runs')).catch(() => [] as string[])) {
        const file = path.join(base, exp, 'runs', id, 'run.yaml');
        const text = await fsp.readFile(file, 'utf8').catch(() => null);
        if (text) add(path.relative(gitml.repo.workTree, file), text);
      }
    }
  }
  // Runs pushed on runs/<id> branches (local or fetched).
  const refs = (await runGit(gitml.repo.git, ['for-each-ref', '--format=%(refname)', 'refs/heads/runs', 'refs/remotes/origin/runs'])).stdout.toString('utf8').split('\n').filter(Boolean);
  for (const ref of refs) {
    for (const p of await gitZ(gitml.repo.git, ['ls-tree', '-r', '-z', '--name-only', ref, '--', 'experiments'])) {
      if (!p.endsWith('/run.yaml') || found.has(p.split('/')[3]!)) continue;
      const r = await runGit(gitml.repo.git, ['show', `${ref}:${p}`], { okCodes: [128] });
      if (r.code === 0) add(`${ref}:${p}`, r.stdout.toString('utf8'));
    }
  }
  return [...found.values()].sort((a, b) => a.row.id.localeCompare(b.row.id));
}

export const runsCommand: Command = (io) => ({
  command: 'runs <action> [arg]',
  describe: 'runs list [experiment] | runs show <run-id>',
  builder: (y) => withJson(y).positional('action', { choices: ['list', 'show'] as const }).positional('arg', { type: 'string' }),
  handler: async (argv) => {
    const gitml = await openHere(io);
    if (argv.action === 'list') {
      const runs = await findRuns(gitml, argv.arg as string | undefined);
      if (argv.json) return json(io, { runs: runs.map((r) => r.row) });
      if (runs.length === 0) return out(io, 'No runs recorded here.');
      for (const { row } of runs) out(io, `${row.id}  ${row.experiment.padEnd(20)} ${row.status.padEnd(10)} ${row.commit}  ${row.start}`);
      return;
    }
    const runs = await findRuns(gitml);
    const hit = runs.find((r) => r.row.id === argv.arg || r.row.id.endsWith(String(argv.arg)));
    if (!hit) throw new GitmlError('E_USAGE', `no run ${JSON.stringify(argv.arg)} here`, { hint: 'See `gitml runs list` (fetch runs/* branches to see pushed runs).' });
    if (argv.json) return json(io, YAML.parse(hit.text));
    out(io, `# ${hit.row.file}`);
    out(io, hit.text.trimEnd());
  },
});
