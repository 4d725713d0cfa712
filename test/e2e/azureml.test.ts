import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { BlobServiceClient } from '@azure/storage-blob';
import { azuriteConnectionString } from '../../scripts/servers';
import { Sandbox, sha256 } from '../helpers/sandbox';
import { azureEndpoint, azureEnv, createContainer, uniqueName } from '../helpers/stores';

/**
 * Azure ML v2 YAML both ways, for every kind, on documents written the way Azure ML's documentation
 * writes them (https://learn.microsoft.com/azure/machine-learning/reference-yaml-overview): register
 * --from-azureml, then assets export must give back what an `az ml <kind> create -f` accepts, with
 * the same meaning (names, versions, types, fields; local paths pointing at the same bytes).
 */
const SCHEMA = 'https://azuremlschemas.azureedge.net/latest';

describe('Azure ML v2 YAML: register --from-azureml and assets export', () => {
  let box: Sandbox;
  let repo: string;
  let yml: string;
  let container: string;
  let tls: https.Server;
  let tlsUrl: string;
  let caFile: string;
  const env = () => ({ ...azureEnv(), NODE_EXTRA_CA_CERTS: caFile });

  beforeAll(async () => {
    box = await Sandbox.create();
    repo = box.path('repo');
    await fsp.mkdir(box.path('store'));
    await box.git(box.root, ['init', '-q', repo]);
    await box.git(repo, ['config', '-f', '.gitmlconfig', 'gitml.store', `file://${box.path('store')}`]);
    await box.git(repo, ['config', 'gitml.azure.endpoint', azureEndpoint()]);
    await box.git(repo, ['add', '.gitmlconfig']);
    await box.git(repo, ['commit', '-q', '-m', 'init']);

    // What a team keeps next to its Azure ML YAML.
    yml = box.path('azureml');
    const w = async (rel: string, text: string) => {
      await fsp.mkdir(path.dirname(path.join(yml, rel)), { recursive: true });
      await fsp.writeFile(path.join(yml, rel), text);
    };
    await w('data/iris/iris.csv', 'sepal_length,species\n5.1,setosa\n');
    await w('data/iris/extra/notes.txt', 'collected 1936\n');
    await w('data/titanic.csv', 'survived,age\n1,22\n');
    await w('data/taxi/MLTable', 'paths:\n  - file: ./taxi.csv\ntransformations:\n  - read_delimited: {delimiter: ","}\n');
    await w('data/taxi/taxi.csv', 'fare\n12.5\n');
    await w('model/sklearn/model.pkl', 'pickled\n');
    await w('model/mlflow/MLmodel', 'flavors:\n  python_function: {loader_module: mlflow.sklearn}\n');
    await w('model/mlflow/model.pkl', 'pickled mlflow\n');
    await w('env/conda.yaml', 'name: train\ndependencies: [python=3.10, pip: [scikit-learn]]\n');
    await w('env/docker-context/Dockerfile', 'FROM mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04\nRUN pip install torch\n');
    await w('env/docker-context/requirements.txt', 'torch\n');
    await w('src/train.py', 'print("train")\n');
    await w('score/score.py', 'def init(): pass\ndef run(raw): return raw\n');

    // https data: a local TLS server with its own certificate authority (trusted through NODE_EXTRA_CA_CERTS).
    const key = box.path('tls-key.pem');
    caFile = box.path('tls-cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', caFile, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const body = 'id,label\n1,cat\n';
    tls = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(caFile) }, (req, res) => {
      res.writeHead(req.url === '/public/labels.csv' ? 200 : 404, { 'content-length': Buffer.byteLength(body), etag: '"v1"' });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    tlsUrl = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;

    // Blob data for wasbs:// and abfss:// (ADLS Gen2 names the same account and container).
    container = uniqueName('amldata');
    await createContainer(container);
    const blobs = BlobServiceClient.fromConnectionString(azuriteConnectionString(azureEndpoint())).getContainerClient(container);
    for (const [name, text] of [['raw/part-0.parquet', 'p0'], ['raw/part-1.parquet', 'p1']]) await blobs.getBlockBlobClient(name!).upload(text!, text!.length);
  });
  afterAll(async () => {
    await new Promise((resolve) => tls.close(resolve));
    await box.cleanup();
  });

  async function write(name: string, doc: Record<string, unknown>): Promise<string> {
    const file = path.join(yml, name);
    await fsp.writeFile(file, YAML.stringify(doc));
    return file;
  }
  async function register(...files: string[]) {
    const r = await box.gitml(repo, ['register', '--from-azureml', ...files, '--commit', '--json'], { env: env() });
    if (r.code !== 0) throw new Error(`register --from-azureml ${files.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as { ref: string; dir: string; asset: { spec: Record<string, unknown>; digest: { files: { path: string; sha256: string }[] } } };
  }
  async function exported(ref: string): Promise<Record<string, unknown>[]> {
    const r = await box.gitml(repo, ['assets', 'export', ref, '--format', 'azureml', '--json'], { env: env() });
    if (r.code !== 0) throw new Error(`export ${ref}: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { documents: { doc: Record<string, unknown> }[] }).documents.map((d) => d.doc);
  }
  /** Exported with --out: the YAML files and the version's files, as `az ml ... create -f` reads them. */
  async function exportedTo(ref: string): Promise<{ dir: string; docs: Record<string, Record<string, unknown>> }> {
    const dir = box.path(`export-${ref.replace(/[^a-z0-9]/g, '-')}`);
    const r = await box.gitml(repo, ['assets', 'export', ref, '--out', dir, '--json'], { env: env() });
    if (r.code !== 0) throw new Error(`export ${ref} --out: ${r.stderr}`);
    const docs: Record<string, Record<string, unknown>> = {};
    for (const d of (JSON.parse(r.stdout) as { documents: { file: string }[] }).documents) docs[path.basename(d.file)] = YAML.parse(await fsp.readFile(d.file, 'utf8'));
    return { dir, docs };
  }
  const sameBytes = async (a: string, b: string) => expect(sha256(await fsp.readFile(a))).toBe(sha256(await fsp.readFile(b)));

  test('data, uri_folder from a local folder: contents in the version; the path on export leads to the same files', async () => {
    const original = { $schema: `${SCHEMA}/data.schema.json`, name: 'iris', version: '1', description: 'Iris flowers', tags: { owner: 'ml-team' }, type: 'uri_folder', path: './data/iris' };
    const r = await register(await write('iris.yml', original));
    expect(r.ref).toBe('datasets/iris@1');
    expect(r.asset.digest.files.map((f) => f.path).sort()).toEqual(['extra/notes.txt', 'iris.csv']);
    const [doc] = await exported('datasets/iris@1');
    expect(doc).toMatchObject({ ...original, path: '.', tags: { owner: 'ml-team', 'gitml.ref': 'datasets/iris@1' } });
    const out = await exportedTo('datasets/iris@1');
    const data = out.docs['data.yml']!;
    expect(data.$schema).toBe(`${SCHEMA}/data.schema.json`);
    await sameBytes(path.join(out.dir, data.path as string, 'extra/notes.txt'), path.join(yml, 'data/iris/extra/notes.txt'));
  });

  test('data, uri_file and mltable from local paths', async () => {
    const file = await register(await write('titanic.yml', { $schema: `${SCHEMA}/data.schema.json`, name: 'titanic', version: 3, type: 'uri_file', path: './data/titanic.csv' }));
    expect(file.ref).toBe('datasets/titanic@3');
    const [fdoc] = await exported('datasets/titanic@3');
    expect(fdoc).toMatchObject({ name: 'titanic', version: '3', type: 'uri_file', path: './titanic.csv' });
    const out = await exportedTo('datasets/titanic@3');
    await sameBytes(path.join(out.dir, out.docs['data.yml']!.path as string), path.join(yml, 'data/titanic.csv'));

    await register(await write('taxi.yml', { $schema: `${SCHEMA}/data.schema.json`, name: 'taxi', version: '1', type: 'mltable', path: './data/taxi' }));
    const [tdoc] = await exported('datasets/taxi@1');
    expect(tdoc).toMatchObject({ type: 'mltable', path: '.' });
    const t = await exportedTo('datasets/taxi@1');
    // An mltable path is a folder holding the MLTable file.
    expect(fs.existsSync(path.join(t.dir, t.docs['data.yml']!.path as string, 'MLTable'))).toBe(true);
  });

  test.each([
    ['https', () => `${tlsUrl}/public/labels.csv`, 'uri_file', (p: string) => p],
    ['abfss', () => `abfss://${container}@devstoreaccount1.dfs.core.windows.net/raw`, 'uri_folder', (p: string) => p],
    ['wasbs', () => `wasbs://${container}@devstoreaccount1.blob.core.windows.net/raw`, 'uri_folder', () => `https://devstoreaccount1.blob.core.windows.net/${container}/raw`],
    ['azureml', () => 'azureml://datastores/workspaceblobstore/paths/raw/', 'uri_folder', (p: string) => p],
  ])('data by reference from a %s path: nothing copied, the path comes back', async (scheme, uri, type, expected) => {
    const name = `ref-${scheme}`;
    const r = await register(await write(`${name}.yml`, { $schema: `${SCHEMA}/data.schema.json`, name, version: '1', type, path: uri() }));
    expect(r.asset.digest.files.map((f) => f.path)).not.toContain('labels.csv');
    const tracked = (await box.git(repo, ['ls-files', `datasets/${name}`])).stdout.split('\n').filter(Boolean);
    expect(tracked.every((f) => /\/(asset\.yaml|\.gitignore)$/.test(f))).toBe(true);
    if (scheme !== 'azureml') {
      // Listed when registered: the record says which objects the version means.
      expect((r.asset.spec.source as { objects: unknown[] }).objects.length).toBeGreaterThan(0);
    }
    const [doc] = await exported(`datasets/${name}@1`);
    expect(doc).toMatchObject({ $schema: `${SCHEMA}/data.schema.json`, name, version: '1', type, path: expected(uri()) });
  });

  test('model: custom_model with its files, mlflow_model with flavors; Azure-only fields kept; other types refused', async () => {
    const custom = { $schema: `${SCHEMA}/model.schema.json`, name: 'credit', version: '2', description: 'credit scoring', type: 'custom_model', path: './model/sklearn', properties: { framework: 'sklearn' } };
    const r = await register(await write('credit.yml', custom));
    expect(r.ref).toBe('models/credit@2');
    const [doc] = await exported('models/credit@2');
    expect(doc).toMatchObject({ ...custom, path: '.' });
    const out = await exportedTo('models/credit@2');
    await sameBytes(path.join(out.dir, out.docs['model.yml']!.path as string, 'model.pkl'), path.join(yml, 'model/sklearn/model.pkl'));

    const mlflow = { $schema: `${SCHEMA}/model.schema.json`, name: 'credit-mlflow', version: '1', type: 'mlflow_model', path: './model/mlflow', flavors: { python_function: { loader_module: 'mlflow.sklearn' } } };
    await register(await write('credit-mlflow.yml', mlflow));
    expect((await exported('models/credit-mlflow@1'))[0]).toMatchObject({ ...mlflow, path: '.' });

    const bad = await box.gitml(repo, ['register', '--from-azureml', await write('bad-model.yml', { $schema: `${SCHEMA}/model.schema.json`, name: 'bad', type: 'pytorch_model', path: './model/sklearn' })]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/model type "pytorch_model" is not one Azure ML knows.*custom_model/s);
    expect(fs.existsSync(path.join(repo, 'models/bad'))).toBe(false);
  });

  test('environment: image with a conda file, and a Docker build context', async () => {
    const conda = { $schema: `${SCHEMA}/environment.schema.json`, name: 'sklearn-env', version: '1', image: 'mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest', conda_file: './env/conda.yaml', os_type: 'linux' };
    await register(await write('env-conda.yml', conda));
    expect((await exported('environments/sklearn-env@1'))[0]).toMatchObject({ ...conda, conda_file: './conda.yaml' });
    const out = await exportedTo('environments/sklearn-env@1');
    await sameBytes(path.join(out.dir, out.docs['environment.yml']!.conda_file as string), path.join(yml, 'env/conda.yaml'));

    const build = { $schema: `${SCHEMA}/environment.schema.json`, name: 'torch-env', version: '1', build: { path: './env/docker-context', dockerfile_path: 'Dockerfile' } };
    await register(await write('env-build.yml', build));
    expect((await exported('environments/torch-env@1'))[0]).toMatchObject({ ...build, build: { path: '.', dockerfile_path: 'Dockerfile' } });
    const b = await exportedTo('environments/torch-env@1');
    const context = (b.docs['environment.yml']!.build as { path: string }).path;
    await sameBytes(path.join(b.dir, context, 'Dockerfile'), path.join(yml, 'env/docker-context/Dockerfile'));
  });

  test('command component: typed inputs and outputs, ${{inputs.x}}, optional parts, environment reference', async () => {
    const component = {
      $schema: `${SCHEMA}/commandComponent.schema.json`,
      type: 'command',
      name: 'train_credit',
      display_name: 'Train credit model',
      version: '1',
      code: './src',
      environment: 'azureml:sklearn-env:1',
      command: 'python train.py --data ${{inputs.training_data}} --lr ${{inputs.learning_rate}} $[[--seed ${{inputs.seed}}]] --model ${{outputs.model}}',
      inputs: {
        training_data: { type: 'uri_folder' },
        learning_rate: { type: 'number', default: 0.01, min: 0.0001, max: 1 },
        seed: { type: 'integer', optional: true },
        early_stop: { type: 'boolean', default: true },
        solver: { type: 'string', default: 'lbfgs', enum: ['lbfgs', 'sag'] },
      },
      outputs: { model: { type: 'custom_model' } },
      resources: { instance_count: 1 },
    };
    const r = await register(await write('component.yml', component));
    expect(r.ref).toBe('components/train-credit@1');
    expect(r.asset.spec.environment).toBe('environments/sklearn-env@1');
    const [doc] = await exported('components/train-credit@1');
    expect(doc).toMatchObject({ ...component, code: '.' });
    expect(doc.name).toBe('train_credit');
    const out = await exportedTo('components/train-credit@1');
    expect(fs.existsSync(path.join(out.dir, out.docs['component.yml']!.code as string, 'train.py'))).toBe(true);
  });

  test('command job: data inputs become asset references, literal inputs params, and back', async () => {
    const job = {
      $schema: `${SCHEMA}/commandJob.schema.json`,
      type: 'command',
      experiment_name: 'credit_training',
      display_name: 'Credit training',
      code: './src',
      command: 'python train.py --data ${{inputs.data}} --epochs ${{inputs.epochs}} --out ${{outputs.model}}',
      environment: 'azureml:sklearn-env:1',
      compute: 'azureml:cpu-cluster',
      inputs: { data: { type: 'uri_folder', path: 'azureml:iris:1' }, epochs: 10 },
      outputs: { model: { type: 'custom_model', name: 'credit' } },
    };
    const r = await register(await write('job.yml', { name: 'credit_training', ...job }));
    expect(r.ref).toBe('experiments/credit-training@1');
    // In gitml's own terms: a run of this experiment pulls datasets/iris@1 and substitutes epochs.
    expect(r.asset.spec).toMatchObject({
      command: 'python train.py --data ${{inputs.data}} --epochs ${{params.epochs}} --out ${{outputs.model}}',
      inputs: { data: 'datasets/iris@1' },
      params: { epochs: 10 },
      outputs: { model: { path: 'outputs/model', register: 'models/credit' } },
      environment: 'environments/sklearn-env@1',
      compute: 'azureml:cpu-cluster',
    });
    const [doc] = await exported('experiments/credit-training@1');
    expect(doc).toMatchObject({ ...job, code: '.' });

    // An experiment registered from gitml's own experiment file exports as a job too.
    await fsp.writeFile(
      box.path('exp.yml'),
      YAML.stringify({ name: 'digits', command: 'python t.py ${{inputs.d}} ${{params.lr}} ${{outputs.m}}', inputs: { d: 'datasets/iris@latest' }, params: { lr: 0.1 }, outputs: { m: { path: 'out', register: 'models/digits' } }, environment: 'environments/sklearn-env@1' }),
    );
    expect((await box.gitml(repo, ['register', 'experiment', 'digits', box.path('exp.yml'), '--commit'])).code).toBe(0);
    expect((await exported('experiments/digits@1'))[0]).toMatchObject({
      $schema: `${SCHEMA}/commandJob.schema.json`,
      type: 'command',
      command: 'python t.py ${{inputs.d}} ${{inputs.lr}} ${{outputs.m}}',
      inputs: { d: { type: 'uri_folder', path: 'azureml:iris@latest' }, lr: 0.1 },
      outputs: { m: { type: 'custom_model', name: 'digits' } },
      environment: 'azureml:sklearn-env:1',
    });
  });

  test('managed online endpoint and deployment: two documents in, two documents out', async () => {
    const endpoint = { $schema: `${SCHEMA}/managedOnlineEndpoint.schema.json`, name: 'credit-endpoint', auth_mode: 'key', description: 'credit scoring' };
    const deployment = {
      $schema: `${SCHEMA}/managedOnlineDeployment.schema.json`,
      name: 'blue',
      endpoint_name: 'credit-endpoint',
      model: 'azureml:credit:2',
      code_configuration: { code: './score', scoring_script: 'score.py' },
      environment: 'azureml:sklearn-env:1',
      instance_type: 'Standard_DS3_v2',
      instance_count: 1,
      request_settings: { request_timeout_ms: 3000 },
    };
    const r = await register(await write('endpoint.yml', endpoint), await write('blue.yml', deployment));
    expect(r.ref).toBe('endpoints/credit-endpoint@1');
    expect(r.asset.spec).toMatchObject({ kind: 'online', model: 'models/credit@2', environment: 'environments/sklearn-env@1', instance_count: 1 });
    const docs = await exported('endpoints/credit-endpoint@1');
    expect(docs).toHaveLength(2);
    expect(docs[0]).toMatchObject(endpoint);
    expect(docs[1]).toMatchObject({ ...deployment, code_configuration: { code: '.', scoring_script: 'score.py' } });
    const out = await exportedTo('endpoints/credit-endpoint@1');
    const cc = out.docs['deployment.yml']!.code_configuration as { code: string; scoring_script: string };
    await sameBytes(path.join(out.dir, cc.code, cc.scoring_script), path.join(yml, 'score/score.py'));
  });

  test('batch endpoint and deployment: settings typed, resources, compute', async () => {
    const endpoint = { $schema: `${SCHEMA}/batchEndpoint.schema.json`, name: 'credit-batch', description: 'nightly scoring' };
    const deployment = {
      $schema: `${SCHEMA}/batchDeployment.schema.json`,
      name: 'nightly',
      endpoint_name: 'credit-batch',
      type: 'model',
      model: 'azureml:credit:2',
      code_configuration: { code: './score', scoring_script: 'score.py' },
      environment: 'azureml:sklearn-env:1',
      compute: 'azureml:batch-cluster',
      resources: { instance_count: 2 },
      settings: { max_concurrency_per_instance: 2, mini_batch_size: 10, output_action: 'append_row', output_file_name: 'predictions.csv', retry_settings: { max_retries: 3, timeout: 300 }, error_threshold: -1, logging_level: 'info' },
    };
    const r = await register(await write('batch-endpoint.yml', endpoint), await write('batch-deployment.yml', deployment));
    expect(r.asset.spec).toMatchObject({ kind: 'batch', compute: 'azureml:batch-cluster', instance_count: 2, settings: { mini_batch_size: 10 } });
    const docs = await exported('endpoints/credit-batch@1');
    expect(docs[0]).toMatchObject(endpoint);
    expect(docs[1]).toMatchObject({ ...deployment, code_configuration: { code: '.', scoring_script: 'score.py' } });
    expect(docs[1]).not.toHaveProperty('instance_type');
  });

  test('a document gitml cannot place says which file and what to add', async () => {
    const noSchema = await box.gitml(repo, ['register', '--from-azureml', await write('noschema.yml', { name: 'x', path: './data/titanic.csv' })]);
    expect(noSchema.code).toBe(1);
    expect(noSchema.stderr).toMatch(/noschema\.yml has no \$schema/);
    const escape = await box.gitml(repo, ['register', '--from-azureml', await write('escape.yml', { $schema: `${SCHEMA}/data.schema.json`, name: 'esc', path: '../../etc' })]);
    expect(escape.code).toBe(1);
    expect(escape.stderr).toMatch(/escape\.yml/);
    expect(fs.existsSync(path.join(repo, 'datasets/esc'))).toBe(false);
  });
});
