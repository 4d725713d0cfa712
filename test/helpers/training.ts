import fsp from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { startHttpGit, type HttpGitServer } from './http-git';
import type { Sandbox } from './sandbox';

/**
 * An empty bare repository `train.git` that `git http-backend` serves behind `token` (pushes allowed:
 * tests fill it through its path), and a directory store at `box.path('store')`.
 */
export async function serveTrainingRemote(box: Sandbox, token: string): Promise<{ bare: string; server: HttpGitServer }> {
  const served = box.path('served');
  await fsp.mkdir(served);
  await fsp.mkdir(box.path('store'));
  const bare = path.join(served, 'train.git');
  await box.git(box.root, ['init', '-q', '--bare', bare]);
  await box.git(bare, ['config', 'http.receivepack', 'true']);
  return { bare, server: await startHttpGit(served, token) };
}

/**
 * A training project in `repo/train`: `train.sh` (the given lines; called as
 * `train.sh <data> <lr> <output dir>`), an experiment `name` reading `data`, registering its output
 * as `models/<name>`, with environment `environments/py@1`; and the files to register as
 * `datasets/digits` and `environments/py` (box.path('digits.csv'), box.path('env.yaml')). Not committed.
 */
export async function writeTrainingProject(box: Sandbox, repo: string, experiment: { name: string; data: string; script: string[] }): Promise<void> {
  await fsp.mkdir(path.join(repo, 'train'));
  await fsp.writeFile(path.join(repo, 'train', 'train.sh'), ['#!/bin/sh', 'set -e', ...experiment.script, ''].join('\n'), { mode: 0o755 });
  await fsp.writeFile(
    path.join(repo, 'train', 'experiment.yml'),
    YAML.stringify({
      name: experiment.name,
      command: './train.sh ${{inputs.data}} ${{params.lr}} ${{outputs.model}}',
      inputs: { data: experiment.data },
      outputs: { model: { path: 'out/model', register: `models/${experiment.name}` } },
      environment: 'environments/py@1',
      params: { lr: '0.01' },
    }),
  );
  await fsp.writeFile(path.join(repo, 'train', '.gitignore'), 'out/\n');
  await fsp.writeFile(box.path('digits.csv'), 'pixels,label\n');
  await fsp.writeFile(box.path('env.yaml'), 'dependencies: [python]\n');
}
