import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import YAML from 'yaml';
import { withAssetRules } from '../attributes';
import { materializeSource, sourceOf } from '../assets/materialize';
import { parseAssetType, parseRef } from '../assets/names';
import { registerAsset } from '../assets/register';
import { lineageInput, locate } from '../assets/resolve';
import { openSource } from '../assets/remote-data';
import { confinedPath, makeDirs } from '../safe-path';
import type { LineageEntry } from '../assets/schema';
import { openGitml, type Gitml } from '../context';
import { errnoCode, GitmlError } from '../errors';
import { sha256Of, writeHashing } from '../hash';
import { silentLogger } from '../log';
import { gitText, runGit } from '../git/exec';
import { remoteTips } from '../git/remote';
import { checkoutPointers } from '../sync/checkout';
import { pushObjectsForRefs } from '../sync/push';
import { mergeParams, outputsOf, readExperiment, shellQuote, substitute, type Experiment } from './experiment';
import type { RunGitConfig } from './gitconfig';
import { newRunId, RunRecord, type RunRecordType } from './record';
import { cloneWorkspace, currentWorkspace, type Workspace } from './workspace';

/** What a run is, wherever it runs: the code, the experiment, its params and what happens after. */
export interface RunSpec {
  cwd: string;
  env: NodeJS.ProcessEnv;
  gitml: Gitml | null;
  gitConfig?: RunGitConfig;
  sourceDirectory: string;
  experimentFile?: string;
  params: string[];
  /** `-- command...`: overrides the experiment's command. */
  command: string[];
  registerOutputs: boolean;
  push: boolean;
}

export interface RunRequest extends RunSpec {
  /** Where a --git-config clone goes (default: a new temp directory). */
  workspaceDir?: string;
  allowDirty: boolean;
  stdout: Writable;
  stderr: Writable;
  /** The run's id when the submitter chose it (a cluster run: printed before the job starts). */
  runId?: string;
  /** One element of a sweep. */
  sweep?: { id: string; index: number };
  /** Where the command runs (recorded). */
  executor?: { kind: 'local' | 'slurm' | 'kubernetes'; jobId?: string; nodes?: number };
  /** Also write the record here (a cluster run's spool folder, which the submitter reads). */
  recordCopyDir?: string;
  /** Aborted (SIGTERM from scancel, Ctrl-C): the command is stopped and the record says cancelled. */
  signal?: AbortSignal;
  /**
   * Asked when the command failed and `signal` was not aborted: whether its scheduler cancelled it.
   * scancel signals every process of the job one by one, so the command can die of its SIGTERM before
   * gitml's own arrives; the scheduler's word, not the order of the signals, decides the record.
   */
  cancelledByScheduler?: () => Promise<boolean>;
}

export interface RunResult {
  record: RunRecordType;
  recordPath: string;
  workspace: string;
  registered: string[];
  pushedBranch: string | null;
}

/**
 * `gitml run`: check out exactly one commit, pull exactly the declared inputs (verified), run the
 * command with inputs, params and outputs substituted, and record which code and which data produced
 * which outputs. A failing command still gets its record (status failed, exit code, log).
 */
export async function runExperiment(req: RunRequest): Promise<RunResult> {
  const id = req.runId ?? newRunId(new Date(), randomBytes(3).toString('hex'));
  let ws: Workspace;
  if (req.gitConfig) {
    const dir = req.workspaceDir ? path.resolve(req.cwd, req.workspaceDir) : await fsp.mkdtemp(path.join(os.tmpdir(), `gitml-run-${id}-`));
    if (fs.existsSync(dir) && (await fsp.readdir(dir)).length > 0) throw new GitmlError('E_USAGE', `workspace ${dir} is not empty`, { hint: 'Give an empty or new --workspace directory.' });
    try {
      ws = await cloneWorkspace(req.gitConfig, dir, req.env);
    } catch (e) {
      // Nothing of a run that never started stays behind.
      await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw e;
    }
  } else {
    if (!req.gitml) throw new GitmlError('E_NOT_A_REPO', 'not in a git repository', { hint: 'Run gitml run inside a clone, or pass --git-config gitconfig.json.' });
    ws = await currentWorkspace(req.gitml.repo, req.allowDirty);
  }
  const gitml = req.gitConfig ? await openGitml({ cwd: ws.root, env: ws.git.env, log: req.gitml?.log ?? silentLogger }) : req.gitml!;

  const sourceDir = path.resolve(ws.root, req.sourceDirectory);
  if (!(sourceDir === ws.root || sourceDir.startsWith(ws.root + path.sep)) || !fs.existsSync(sourceDir)) {
    throw new GitmlError('E_USAGE', `source directory ${req.sourceDirectory} is not a folder of ${ws.repo}`, { hint: 'Give a path inside the repository.' });
  }
  const exp: Experiment = req.experimentFile
    ? await readExperiment(path.resolve(sourceDir, req.experimentFile))
    : { name: path.basename(sourceDir === ws.root ? ws.root : sourceDir).toLowerCase().replace(/[^a-z0-9._-]/g, '-') || 'run', inputs: {}, outputs: {}, params: {} };
  const params = mergeParams(exp.params, req.params);
  // A run of a registered experiment version names it (experiments/<name>@<version>).
  const experimentRef = req.experimentFile ? await registeredExperiment(ws.root, path.resolve(sourceDir, req.experimentFile)) : null;
  const runRel = `experiments/${exp.name}/runs/${id}`;
  const runDir = path.join(ws.root, ...runRel.split('/'));
  // The outermost folder this run creates (experiments/<name>/ for a first run): removed again when
  // the run fails before its command ran (an input, the environment), so nothing empty is left.
  let created = runDir;
  while (path.dirname(created) !== ws.root && !fs.existsSync(path.dirname(created))) created = path.dirname(created);
  await makeDirs(runDir);
  try {
    return await runInDir();
  } catch (e) {
    if (!fs.existsSync(path.join(runDir, 'run.yaml'))) await fsp.rm(created, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }

  async function runInDir(): Promise<RunResult> {

    // Inputs, before anything runs: only what is declared, each verified.
    const inputs: RunRecordType['inputs'] = [];
    const inputPaths: Record<string, string> = {};
    const lineage: LineageEntry[] = [];
    for (const [name, spec] of Object.entries(exp.inputs)) {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
        const dest = path.join(runDir, 'inputs', name);
        const digest = await downloadUri(spec, dest, gitml);
        inputs.push({ name, uri: spec, digest, path: path.relative(ws.root, dest) });
        inputPaths[name] = dest;
        continue;
      }
      const { asset } = await locate(gitml, spec);
      const dir = path.join(ws.root, ...asset.dir.split('/'));
      if (sourceOf(asset.doc)) {
        await materializeSource(asset.doc, ws.root, `${asset.dir}/data`, { settings: gitml.settings, env: req.env });
      } else {
        const report = await checkoutPointers(gitml, [`:(glob)${asset.dir}/**`]);
        if (report.failed.length > 0) throw new GitmlError('E_STORE_IO', `cannot get input ${name} (${spec}): ${report.failed[0]!.error}`, { hint: 'Check the store (`gitml env`).' });
      }
      const target = typeof asset.doc.spec.path === 'string' && asset.doc.spec.path !== '.' ? path.join(dir, ...String(asset.doc.spec.path).split('/')) : dir;
      inputPaths[name] = target;
      inputs.push({ name, ref: spec, version: asset.version, digest: asset.doc.digest.value, path: path.relative(ws.root, target) });
      lineage.push(await lineageInput(gitml, `${asset.type}s/${asset.name}@${asset.version}`));
    }

    let environment: RunRecordType['environment'];
    if (exp.environment) {
      const { asset } = await locate(gitml, exp.environment).catch((e: unknown) => {
        throw new GitmlError('E_USAGE', `the experiment's environment ${exp.environment} is not registered in ${ws.repo}: ${(e as Error).message}`, { hint: 'Register it (gitml register environment ...) or fix the reference.' });
      });
      environment = { ref: exp.environment, version: asset.version, digest: asset.doc.digest.value };
      lineage.push(await lineageInput(gitml, `${asset.type}s/${asset.name}@${asset.version}`));
    }

    const outputs = outputsOf(exp);
    const outputPaths: Record<string, string> = {};
    const sourceRel = path.relative(ws.root, sourceDir).split(path.sep).join('/');
    for (const o of outputs) {
      // Output paths come from the experiment file: confined to the repository, no "..", no links.
      const rel = sourceRel ? `${sourceRel}/${o.path}` : o.path;
      outputPaths[o.name] = await confinedPath(ws.root, rel, { what: `output path of ${o.name}`, source: req.experimentFile ?? 'the experiment' }, { mkdir: true });
      await makeDirs(outputPaths[o.name]!);
    }
    const values = { inputs: mapValues(inputPaths, shellQuote), params: mapValues(params, shellQuote), outputs: mapValues(outputPaths, shellQuote) };
    const command = req.command.length > 0 ? req.command.map((a) => shellQuote(substitute(a, { inputs: inputPaths, params, outputs: outputPaths }))).join(' ') : exp.command ? substitute(exp.command, values) : null;
    if (!command) throw new GitmlError('E_USAGE', 'nothing to run: the experiment has no command and none was given after --', { hint: 'Add command: to the experiment file, or run gitml run ... -- python train.py' });

    const start = new Date();
    const logFile = path.join(runDir, 'log.txt');
    const childEnv: NodeJS.ProcessEnv = { ...req.env, GITML_RUN_ID: id, GITML_RUN_DIR: runDir };
    for (const k of ['GITML_GIT_TOKEN', 'GITML_RUN_TOKEN']) delete childEnv[k];
    for (const [k, v] of Object.entries(inputPaths)) childEnv[`GITML_INPUT_${k.toUpperCase()}`] = v;
    for (const [k, v] of Object.entries(outputPaths)) childEnv[`GITML_OUTPUT_${k.toUpperCase()}`] = v;
    for (const [k, v] of Object.entries(params)) childEnv[`GITML_PARAM_${k.toUpperCase()}`] = v;
    const launched = launchCommand(command, req.executor, childEnv);
    const exitCode = await execute(launched, sourceDir, childEnv, logFile, req.stdout, req.stderr, req.signal);
    const cancelled = (req.signal?.aborted ?? false) || (exitCode !== 0 && (await req.cancelledByScheduler?.().catch(() => false)) === true);
    const end = new Date();

    const outputRecords: RunRecordType['outputs'] = [];
    for (const o of outputs) outputRecords.push({ name: o.name, path: path.relative(ws.root, outputPaths[o.name]!), files: await hashTree(outputPaths[o.name]!) });
    const metrics = await readMetrics([...Object.values(outputPaths), path.join(sourceDir, 'outputs')]);
    const record: RunRecordType = RunRecord.parse({
      id,
      experiment: exp.name,
      ...(experimentRef ? { experimentRef } : {}),
      status: cancelled ? 'cancelled' : exitCode === 0 ? 'completed' : 'failed',
      repo: ws.repo,
      commit: ws.commit,
      ...(ws.branch ? { branch: ws.branch } : {}),
      ...(ws.tag ? { tag: ws.tag } : {}),
      dirty: ws.dirty,
      sourceDirectory: path.relative(ws.root, sourceDir) || '.',
      command,
      params,
      inputs,
      outputs: outputRecords,
      ...(environment ? { environment } : {}),
      start: start.toISOString(),
      end: end.toISOString(),
      durationSeconds: Math.round((end.getTime() - start.getTime()) / 10) / 100,
      exitCode,
      host: os.hostname(),
      ...(metrics ? { metrics } : {}),
      log: path.relative(ws.root, logFile),
      ...(req.sweep ? { sweep: req.sweep } : {}),
      ...(req.executor && req.executor.kind !== 'local' ? { executor: req.executor } : {}),
    });

    // Outputs become assets whose lineage points at this run, its inputs and its commit.
    const registered: string[] = [];
    if (req.registerOutputs && exitCode === 0 && !cancelled) {
      for (const o of outputs) {
        if (!o.register) continue;
        const target = parseRef(o.register.includes('@') ? o.register : `${o.register}@latest`);
        const entries = await fsp.readdir(outputPaths[o.name]!);
        if (entries.length === 0) throw new GitmlError('E_USAGE', `output ${o.name} is empty: nothing to register as ${o.register}`, { hint: 'Check that the command wrote its output there.' });
        const r = await registerAsset({
          repo: gitml.repo,
          cwd: ws.root,
          type: parseAssetType(target.type),
          name: target.name,
          version: 'auto',
          // One file: the version holds that file (spec.path names it); else the folder's contents.
          paths: entries.length === 1 && fs.statSync(path.join(outputPaths[o.name]!, entries[0]!)).isFile() ? [path.join(outputPaths[o.name]!, entries[0]!)] : [outputPaths[o.name]!],
          move: false,
          description: `output ${o.name} of run ${id}`,
          tags: { run: id },
          // The model says what it runs in (the environment version the run used), like a registered one.
          spec: environment && (target.type === 'model' || target.type === 'component') ? { environment: `${environment.ref.replace(/@.*$/, '')}@${environment.version}` } : {},
          inputs: lineage,
          run: { id, experiment: experimentRef ?? exp.name, commit: ws.commit },
          hash: false,
          copy: false,
          source: { settings: gitml.settings, env: req.env },
          commit: false,
        });
        registered.push(r.ref);
        const rec = record.outputs.find((x) => x.name === o.name);
        if (rec) rec.registered = r.ref;
      }
    }
    const recordPath = path.join(runDir, 'run.yaml');
    const recordText = `# gitml run record (docs/runs.md)\n${YAML.stringify(record, { lineWidth: 0 })}`;
    await fsp.writeFile(recordPath, recordText);
    // The submitter of a cluster run reads it from the spool folder (written last, renamed: whole or absent).
    if (req.recordCopyDir) {
      const copy = path.join(req.recordCopyDir, `${id}.yaml`);
      await fsp.writeFile(`${copy}.tmp`, recordText);
      await fsp.rename(`${copy}.tmp`, copy);
    }

    let pushedBranch: string | null = null;
    if (req.push && !cancelled) pushedBranch = await commitAndPush(gitml, ws, exp.name, id, record, registered, outputPaths);
    return { record, recordPath, workspace: ws.root, registered, pushedBranch };
  }
}

function mapValues(o: Record<string, string>, f: (v: string) => string): Record<string, string> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));
}

/**
 * The command as the executor starts it. On a Slurm allocation of several nodes it is launched once
 * per node with srun, each with the rendezvous variables PyTorch, DeepSpeed and Horovod read
 * (MASTER_ADDR: the first node, MASTER_PORT, WORLD_SIZE, RANK/LOCAL_RANK from Slurm's task ids);
 * on one node those variables are set for the single process. Pure.
 */
export function launchCommand(command: string, executor: RunRequest['executor'], env: NodeJS.ProcessEnv): string {
  if (executor?.kind !== 'slurm') return command;
  const port = 29500 + (Number(env.SLURM_JOB_ID ?? 0) % 1000);
  const rendezvous = `export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)" MASTER_PORT=${port} WORLD_SIZE="\${SLURM_NTASKS:-1}" RANK="\${SLURM_PROCID:-0}" LOCAL_RANK="\${SLURM_LOCALID:-0}"`;
  if ((executor.nodes ?? 1) <= 1) return `${rendezvous}; ${command}`;
  return `srun --nodes=${executor.nodes} --ntasks=${executor.nodes} --ntasks-per-node=1 /bin/sh -c ${shellQuote(`${rendezvous}; ${command}`)}`;
}

/**
 * Runs the command under sh, streaming its output to the console and to the log file. An abort
 * (scancel's SIGTERM, Ctrl-C) stops the command's whole process group: SIGTERM, then SIGKILL if it
 * has not ended after ten seconds.
 */
function execute(command: string, cwd: string, env: NodeJS.ProcessEnv, logFile: string, stdout: Writable, stderr: Writable, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const log = fs.createWriteStream(logFile, { flags: 'w' });
    const child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let killTimer: NodeJS.Timeout | null = null;
    const stop = () => {
      const group = (sig: NodeJS.Signals) => {
        try {
          if (child.pid) process.kill(-child.pid, sig);
        } catch {
          // already gone
        }
      };
      group('SIGTERM');
      killTimer = setTimeout(() => group('SIGKILL'), 10_000);
      killTimer.unref();
    };
    if (signal?.aborted) stop();
    else signal?.addEventListener('abort', stop, { once: true });
    child.stdout.on('data', (b: Buffer) => {
      stdout.write(b);
      log.write(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr.write(b);
      log.write(b);
    });
    child.on('error', reject);
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', stop);
      if (killTimer) clearTimeout(killTimer);
      log.end(() => resolve(code ?? (sig ? 128 + (sig === 'SIGKILL' ? 9 : 15) : 1)));
    });
  });
}

async function hashTree(dir: string): Promise<{ path: string; sha256: string; size: number }[]> {
  const out: { path: string; sha256: string; size: number }[] = [];
  const walk = async (d: string) => {
    for (const e of (await fsp.readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const { sha256, size } = await sha256Of(fs.createReadStream(p, { highWaterMark: 1 << 20 }));
        out.push({ path: path.relative(dir, p).split(path.sep).join('/'), sha256, size });
      }
    }
  };
  await walk(dir);
  return out;
}

async function readMetrics(dirs: string[]): Promise<Record<string, unknown> | null> {
  for (const d of dirs) {
    try {
      const m = JSON.parse(await fsp.readFile(path.join(d, 'metrics.json'), 'utf8'));
      if (m && typeof m === 'object' && !Array.isArray(m)) return m as Record<string, unknown>;
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT' && !(e instanceof SyntaxError)) throw e;
    }
  }
  return null;
}

/** A store URI input: every object under it, into `dest`; the digest is over their keys and hashes. */
async function downloadUri(uri: string, dest: string, gitml: Gitml): Promise<string> {
  const source = openSource(uri, { settings: gitml.settings, env: gitml.env });
  try {
    await makeDirs(dest);
    const lines: string[] = [];
    for (const o of await source.list()) {
      const file = await confinedPath(dest, o.key, { what: 'object key', source: uri }, { mkdir: true });
      const { sha256 } = await writeHashing(await source.open(o.key), file);
      lines.push(`${sha256} ${o.size} ${o.key}\n`);
    }
    return createHash('sha256').update(lines.sort().join('')).digest('hex');
  } finally {
    source.close();
  }
}

/** --push: the record, the log and the outputs on branch runs/<id>, bytes first, then the ref. */
async function commitAndPush(gitml: Gitml, ws: Workspace, experiment: string, id: string, record: RunRecordType, registered: string[], outputPaths: Record<string, string>): Promise<string> {
  const runRel = `experiments/${experiment}/runs/${id}`;
  const runDir = path.join(ws.root, ...runRel.split('/'));
  // Outputs are committed inside the run folder, where the experiments/ rules send them through gitml.
  for (const [name, p] of Object.entries(outputPaths)) {
    const dest = path.join(runDir, 'outputs', name);
    await makeDirs(dest);
    await fsp.cp(p, dest, { recursive: true });
  }
  const attributes = path.join(ws.root, '.gitattributes');
  const current = await fsp.readFile(attributes, 'utf8').catch(() => '');
  const rules = withAssetRules(current, 'experiments');
  if (rules.added.length > 0) await fsp.writeFile(attributes, rules.text);
  const branch = `runs/${id}`;
  await runGit(ws.git, ['checkout', '-q', '-b', branch]);
  await runGit(ws.git, ['add', '--', '.gitattributes', runRel, ...registered.map((r) => { const p = parseRef(r); return `${p.type}s/${p.name}/${p.selector}`; })]);
  await runGit(ws.git, ['commit', '-q', '-m', `run ${id} of ${experiment}: ${record.status} (exit ${record.exitCode})`]);
  const sha = await gitText(ws.git, ['rev-parse', 'HEAD']);
  const remoteUrl = await gitText(ws.git, ['remote', 'get-url', 'origin']);
  const plainUrl = remoteUrl.replace(/^gitml::/, '');
  const remoteGit = { cwd: ws.root, env: ws.remoteEnv };
  const tips = await remoteTips(remoteGit, plainUrl, ws.remoteArgs);
  const objects = await pushObjectsForRefs(gitml, [{ dst: `refs/heads/${branch}`, sha }], { remoteHas: tips, repoUrl: plainUrl });
  if (objects.blocked.size > 0) {
    await objects.release();
    throw new GitmlError('E_PUSH_INCOMPLETE', [...objects.blocked.values()][0]!, { hint: 'The run record is committed locally on branch ' + branch + '; push it once the store is reachable.' });
  }
  try {
    await runGit(remoteGit, [...ws.remoteArgs, 'push', '-q', '--no-verify', plainUrl, `refs/heads/${branch}:refs/heads/${branch}`]);
  } finally {
    await objects.release();
  }
  return branch;
}

/** `experiments/<name>@<version>` when the experiment file lies in a registered experiment version. */
async function registeredExperiment(root: string, file: string): Promise<string | null> {
  const rel = path.relative(root, file).split(path.sep);
  if (rel.length < 4 || rel[0] !== 'experiments') return null;
  const [, name, version] = rel;
  return fs.existsSync(path.join(root, 'experiments', name!, version!, 'asset.yaml')) ? `experiments/${name}@${version}` : null;
}
