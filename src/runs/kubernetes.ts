import fsp from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { Job } from 'kubernetes-models/batch/v1';
import { GitmlError } from '../errors';
import { gitText } from '../git/exec';
import { locate } from '../assets/resolve';
import { readExperiment, shellQuote } from './experiment';
import type { RunGitConfig } from './gitconfig';
import { sweepParams } from './sweep';
import type { RunSpec } from './run';

/**
 * `gitml run --on kubernetes --emit job.yaml`: a batch/v1 Job whose container runs the same entry as
 * every other run, `gitml run --git-config ...`, so the exact commit, the verified inputs and the
 * record are the same code path. The git token comes from a Secret (env GITML_GIT_TOKEN from
 * secretKeyRef), never from the manifest. A sweep is an Indexed Job: element n takes its params from
 * JOB_COMPLETION_INDEX. The manifest is validated against the Kubernetes API schema
 * (kubernetes-models) before it is written. No cluster is contacted: `kubectl apply -f` submits it.
 */
export interface EmitRequest extends RunSpec {
  sweep: Record<string, string>[];
  file: string;
  image?: string;
  tokenSecret?: string;
  cpus?: number;
  mem?: string;
  gpus?: number;
}

export interface Emitted {
  file: string;
  name: string;
  image: string;
  completions: number;
  tokenSecret?: string;
  manifest: Record<string, unknown>;
}

/** "16G" (Slurm's way) as a Kubernetes quantity ("16Gi"). Pure. */
export function kubernetesMemory(mem: string): string {
  const m = /^(\d+)([KMGT]?)$/i.exec(mem);
  if (!m) throw new GitmlError('E_USAGE', `--mem ${JSON.stringify(mem)} is not a size`, { hint: 'For example 16G or 512M.' });
  return m[2] ? `${m[1]}${m[2].toUpperCase()}i` : `${m[1]}Mi`;
}

/** The container's shell script: the git config from the environment, the element's params, then gitml run. Pure. */
export function containerScript(args: readonly string[], elements: readonly string[][]): string {
  const lines = ['set -e', 'umask 077', 'printf %s "$GITML_GIT_CONFIG_JSON" > /tmp/gitconfig.json'];
  if (elements.length > 0) {
    lines.push('case "${JOB_COMPLETION_INDEX:-0}" in');
    for (const [i, params] of elements.entries()) lines.push(`  ${i}) set -- ${params.map((p) => `-P ${shellQuote(p)}`).join(' ')} ;;`);
    lines.push('  *) echo "gitml: no sweep element ${JOB_COMPLETION_INDEX}" >&2; exit 2 ;;', 'esac');
  } else lines.push('set --');
  lines.push(`exec gitml run --git-config /tmp/gitconfig.json --workspace /workspace/run ${args.map(shellQuote).join(' ')} "$@"`);
  return lines.join('\n');
}

export async function emitKubernetesJob(req: EmitRequest): Promise<Emitted> {
  // The code: the git config as given, or this repository's origin at HEAD (a pod cannot see this disk).
  let config: Omit<RunGitConfig, 'token'>;
  let token: string | undefined;
  if (req.gitConfig) {
    ({ token, ...config } = req.gitConfig);
  } else {
    if (!req.gitml?.repo.workTree) throw new GitmlError('E_NOT_A_REPO', 'not in a git repository', { hint: 'Run it inside a clone, or pass --git-config gitconfig.json.' });
    const origin = (await gitText(req.gitml.repo.git, ['remote', 'get-url', 'origin']).catch(() => '')).replace(/^gitml::/, '');
    if (!origin || !/^(https?|ssh|git):\/\/|^[^/]+@[^:]+:/.test(origin)) {
      throw new GitmlError('E_USAGE', 'a Kubernetes run clones from a URL the pod can reach, and origin is not one', { hint: 'Push the commit to a git server and pass --git-config gitconfig.json naming it.' });
    }
    config = { repo: origin, commitSha: await gitText(req.gitml.repo.git, ['rev-parse', 'HEAD']) };
  }
  if (token && !req.tokenSecret) {
    throw new GitmlError('E_USAGE', 'the git config has a token, and a manifest must not: name the Secret that holds it with --token-secret', { hint: 'kubectl create secret generic git-token --from-file=token=<file>, then --token-secret git-token (the token in gitconfig.json is not written anywhere).' });
  }
  const experiment = req.experimentFile && req.gitml?.repo.workTree ? await readExperiment(path.resolve(req.gitml.repo.workTree, req.sourceDirectory, req.experimentFile)).catch(() => null) : null;
  let image = req.image;
  if (!image && experiment?.environment && req.gitml) {
    const { asset } = await locate(req.gitml, experiment.environment);
    if (typeof asset.doc.spec.image === 'string') image = asset.doc.spec.image;
  }
  if (!image) throw new GitmlError('E_USAGE', 'no container image: the experiment\'s environment names none', { hint: 'Give --image <image with gitml installed>, or register the environment with --spec image=<image>.' });

  const args = ['--source-directory', req.sourceDirectory, ...(req.experimentFile ? ['--experiment', req.experimentFile] : []), ...req.params.flatMap((p) => ['-P', p]), ...(req.registerOutputs ? ['--register-outputs'] : []), ...(req.push ? ['--push'] : []), ...(req.command.length ? ['--', ...req.command] : [])];
  // Params after `--` would be read as the command: a sweep's -P go before it.
  const elements = req.sweep.map((e) => sweepParams([], e));
  const script = req.command.length && elements.length ? null : containerScript(args, elements);
  if (!script) throw new GitmlError('E_USAGE', 'a sweep on Kubernetes takes its command from the experiment file, not after --', { hint: 'Put command: in the experiment file.' });
  const name = `gitml-${(experiment?.name ?? 'run').replace(/[^a-z0-9-]/g, '-').slice(0, 40)}-${Date.now().toString(36)}`;
  const resources: Record<string, Record<string, string>> = {};
  if (req.cpus) (resources.requests ??= {}).cpu = String(req.cpus);
  if (req.mem) (resources.requests ??= {}).memory = kubernetesMemory(req.mem);
  if (req.gpus) (resources.limits ??= {})['nvidia.com/gpu'] = String(req.gpus);
  const completions = Math.max(1, elements.length);
  const job = new Job({
    metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'gitml' }, annotations: { 'gitml.dev/repo': config.repo, 'gitml.dev/commit': config.commitSha ?? config.tag ?? config.branch ?? '' } },
    spec: {
      backoffLimit: 0,
      ...(elements.length > 0 ? { completionMode: 'Indexed', completions, parallelism: completions } : {}),
      template: {
        metadata: { labels: { 'app.kubernetes.io/managed-by': 'gitml' } },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'run',
              image,
              command: ['/bin/sh', '-c', script],
              env: [
                { name: 'GITML_GIT_CONFIG_JSON', value: JSON.stringify(config) },
                ...(req.tokenSecret ? [{ name: 'GITML_GIT_TOKEN', valueFrom: { secretKeyRef: { name: req.tokenSecret, key: 'token' } } }] : []),
              ],
              ...(Object.keys(resources).length ? { resources } : {}),
              volumeMounts: [{ name: 'workspace', mountPath: '/workspace' }],
            },
          ],
          volumes: [{ name: 'workspace', emptyDir: {} }],
        },
      },
    },
  });
  try {
    job.validate();
  } catch (e) {
    throw new GitmlError('E_INTERNAL', `the Job manifest gitml built is not valid: ${(e as Error).message}`);
  }
  const manifest = job.toJSON() as unknown as Record<string, unknown>;
  await fsp.writeFile(req.file, `# gitml run --on kubernetes (docs/runs.md). Submit with: kubectl apply -f ${path.basename(req.file)}\n${YAML.stringify(manifest, { lineWidth: 0 })}`);
  return { file: req.file, name, image, completions, ...(req.tokenSecret ? { tokenSecret: req.tokenSecret } : {}), manifest };
}
