import fsp from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import type { Gitml } from '../context';
import { GitmlError } from '../errors';
import { checkRelativePath, makeDirs } from '../safe-path';
import { getBundle } from './bundle';
import { sourceOf } from './materialize';
import { parseRef, type AssetType } from './names';
import { locate } from './resolve';
import type { AssetDocument } from './schema';

/**
 * Azure ML v2 YAML, both ways (docs/assets.md "Azure ML"): `gitml assets export <ref> --format azureml`
 * writes documents `az ml <kind> create -f` accepts, each with its `$schema`; `gitml register
 * --from-azureml <file.yml>` reads them. Shapes follow Azure ML's published schemas
 * (https://azuremlschemas.azureedge.net/latest/<kind>.schema.json).
 */
export const SCHEMA_BASE = 'https://azuremlschemas.azureedge.net/latest';
export type AzureKind = 'data' | 'model' | 'environment' | 'commandComponent' | 'commandJob' | 'managedOnlineEndpoint' | 'managedOnlineDeployment' | 'batchEndpoint' | 'batchDeployment';

export interface AzureDocument {
  kind: AzureKind;
  /** File name the document is written to with --out. */
  file: string;
  doc: Record<string, unknown>;
  yaml: string;
}

const MODEL_TYPES = ['custom_model', 'mlflow_model', 'triton_model'];
const IO_TYPES = ['number', 'integer', 'boolean', 'string', 'uri_file', 'uri_folder', 'mltable', 'mlflow_model', 'custom_model', 'triton_model'];

/** Azure component and job names: lower-case letters, digits and underscores. Pure. */
export function azureComponentName(name: string): string {
  return name.replace(/[^a-z0-9_]/g, '_');
}

/** Azure endpoint names: 3-32 letters, digits and hyphens, starting with a letter. Pure. */
export function azureEndpointName(name: string): string {
  const n = name.replace(/[^a-z0-9-]/g, '-');
  return (/^[a-z]/.test(n) ? n : `e-${n}`).slice(0, 32);
}

/** `environments/torch@1` → `azureml:torch:1` (a concrete version is required). Pure. */
export function azureRef(ref: string, expected: AssetType): string {
  const r = parseRef(ref);
  if (r.type !== expected) throw new GitmlError('E_USAGE', `${ref} is not a ${expected}`, { hint: `Name a ${expected} (${expected}s/<name>@<version>).` });
  if (!/^[1-9][0-9]*$/.test(r.selector) && !/^[a-z0-9._-]+$/.test(r.selector)) throw new GitmlError('E_USAGE', `${ref} has no version`, { hint: 'Give the version: azureml references need one.' });
  return `azureml:${r.name}:${r.selector}`;
}

/** Where a version's data is, for Azure ML: a path next to the YAML, or a URI Azure ML reads. Pure. */
export function azurePathOf(doc: AssetDocument, localBase: string): string {
  const source = sourceOf(doc);
  if (!source) {
    // Recorded as a URI (an azureml:// datastore path): Azure ML resolves it.
    if (typeof doc.spec.path === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(doc.spec.path)) return doc.spec.path;
    const p = typeof doc.spec.path === 'string' && doc.spec.path !== '.' ? doc.spec.path : '';
    return p ? `${localBase}/${p}` : localBase;
  }
  const uri = source.uri;
  let m = /^azure:\/\/([^/]+)\/([^/]+)\/?(.*)$/.exec(uri);
  if (m) return `https://${m[1]}.blob.core.windows.net/${m[2]}/${m[3]}`;
  if (/^(https|abfss|wasbs|adl|azureml):\/\//.test(uri)) return uri;
  m = /^abfs:\/\/(.*)$/.exec(uri);
  if (m) return `abfss://${m[1]}`;
  throw new GitmlError('E_USAGE', `${doc.type}s/${doc.name}@${doc.version} references ${uri}, which Azure ML cannot read (it reads azureml://, https://, wasbs://, abfss:// and adl:// paths)`, {
    hint: 'Register the data with --copy (its bytes become part of the version), or keep it in Azure Blob or ADLS.',
  });
}

/** gitml's own record of a version, as Azure ML tags (Azure YAML has no place for unknown fields). */
function tagsOf(doc: AssetDocument, ref: string): Record<string, string> {
  return {
    ...doc.tags,
    'gitml.ref': ref,
    'gitml.digest': `sha256:${doc.digest.value}`,
    ...(doc.lineage.commit ? { 'gitml.commit': doc.lineage.commit } : {}),
    ...(doc.lineage.run ? { 'gitml.run': doc.lineage.run.id } : {}),
  };
}

function ioOf(values: unknown, direction: 'inputs' | 'outputs'): Record<string, unknown> | undefined {
  if (!values || typeof values !== 'object') return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values as Record<string, unknown>)) {
    if (v && typeof v === 'object') out[k] = v;
    else if (typeof v === 'string' && IO_TYPES.includes(v)) out[k] = { type: v };
    else if (typeof v === 'number') out[k] = { type: Number.isInteger(v) ? 'integer' : 'number', default: v };
    else if (typeof v === 'boolean') out[k] = { type: 'boolean', default: v };
    else if (typeof v === 'string' && direction === 'inputs') out[k] = { type: 'string', default: v };
    else out[k] = { type: 'uri_folder' };
  }
  return out;
}

/** Azure ML fields gitml does not model, kept on import (spec.azureml) and written back on export. */
function extrasOf(spec: Record<string, unknown>, part?: 'endpoint' | 'deployment'): Record<string, unknown> {
  const all = spec.azureml;
  if (!all || typeof all !== 'object' || Array.isArray(all)) return {};
  const chosen = part ? (all as Record<string, unknown>)[part] : all;
  return chosen && typeof chosen === 'object' && !Array.isArray(chosen) ? (chosen as Record<string, unknown>) : {};
}

/** `raw` split into the fields gitml models and the rest. Pure. */
function split(raw: Record<string, unknown>, known: readonly string[]): [Record<string, unknown>, Record<string, unknown>] {
  const mine: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) (known.includes(k) ? mine : rest)[k] = v;
  return [mine, rest];
}

/** A gitml asset reference as an Azure ML one: `datasets/digits@latest` → `azureml:digits@latest`. Pure. */
function azureInputPath(ref: string): { type: string; path: string } | null {
  const m = /^(datasets|models)\/([a-z0-9][a-z0-9._-]*)@([a-z0-9._-]+)$/.exec(ref);
  if (!m) return null;
  return { type: m[1] === 'models' ? 'custom_model' : 'uri_folder', path: m[3] === 'latest' ? `azureml:${m[2]}@latest` : `azureml:${m[2]}:${m[3]}` };
}

/** An Azure ML job input path as a gitml reference (`azureml:digits:1` → `datasets/digits@1`). Pure. */
function gitmlInputRef(input: { type?: unknown; path?: unknown }): string | null {
  if (typeof input.path !== 'string') return null;
  const m = /^azureml:([A-Za-z0-9][A-Za-z0-9._-]*)(?::([A-Za-z0-9._-]+)|@(latest))$/.exec(input.path);
  if (!m) return input.path; // a URI: gitml runs read store URIs as inputs too
  const folder = MODEL_TYPES.includes(String(input.type)) ? 'models' : 'datasets';
  return `${folder}/${m[1]!.toLowerCase().replace(/_/g, '-')}@${m[2] ?? m[3]}`;
}

const LITERAL_TYPES = ['number', 'integer', 'boolean', 'string'];

function strip<T extends Record<string, unknown>>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

function doc(kind: AzureKind, file: string, body: Record<string, unknown>): AzureDocument {
  const full = { $schema: `${SCHEMA_BASE}/${kind}.schema.json`, ...strip(body) };
  return { kind, file, doc: full, yaml: YAML.stringify(full, { lineWidth: 0 }) };
}

/**
 * The Azure ML documents of one asset version. `base` is how the YAML reaches the version's files:
 * `.` when it sits in the version folder, or the folder --out wrote them to.
 */
export function toAzureMl(asset: AssetDocument, base: string): AzureDocument[] {
  const ref = `${asset.type}s/${asset.name}@${asset.version}`;
  const common = { name: asset.name, version: asset.version, description: asset.description || undefined, tags: tagsOf(asset, ref) };
  const s = asset.spec as Record<string, unknown>;
  switch (asset.type) {
    case 'dataset':
      return [doc('data', 'data.yml', { ...extrasOf(s), ...common, type: s.type ?? 'uri_folder', path: azurePathOf(asset, base) })];
    case 'model': {
      const type = MODEL_TYPES.includes(String(s.type)) ? s.type : 'custom_model';
      // Flavors describe MLflow models; on a custom model gitml keeps them as tags.
      const flavors = type === 'mlflow_model' ? s.flavors : undefined;
      const flavorTags = type !== 'mlflow_model' && s.flavors && typeof s.flavors === 'object' ? Object.fromEntries(Object.entries(s.flavors).map(([k, v]) => [`flavors.${k}`, String(v)])) : {};
      return [doc('model', 'model.yml', { ...extrasOf(s), ...common, tags: { ...flavorTags, ...common.tags }, type, path: azurePathOf(asset, base), flavors })];
    }
    case 'environment': {
      if (s.conda_file && !s.image) {
        throw new GitmlError('E_USAGE', `${ref} has a conda_file but no image: Azure ML builds a conda environment on a base image`, {
          hint: 'Register a new version with --spec image=<base image> (for example mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04).',
        });
      }
      const build = s.build as { path?: string; dockerfile_path?: string } | undefined;
      return [
        doc('environment', 'environment.yml', {
          ...extrasOf(s),
          ...common,
          image: s.image,
          conda_file: s.conda_file ? `${base}/${s.conda_file}` : undefined,
          build: build?.path ? { path: `${base}/${build.path}`.replace(/\/\.$/, ''), dockerfile_path: build.dockerfile_path ?? 'Dockerfile' } : undefined,
          os_type: s.os_type,
          inference_config: s.inference_config,
        }),
      ];
    }
    case 'component':
      return [
        doc('commandComponent', 'component.yml', {
          ...extrasOf(s),
          type: 'command',
          name: azureComponentName(asset.name),
          display_name: s.display_name ?? asset.name,
          version: asset.version,
          description: asset.description || undefined,
          tags: tagsOf(asset, ref),
          code: s.code ? `${base}/${s.code}` : base,
          environment: typeof s.environment === 'string' ? azureRef(s.environment, 'environment') : undefined,
          command: s.command,
          inputs: ioOf(s.inputs, 'inputs'),
          outputs: ioOf(s.outputs, 'outputs'),
          distribution: s.distribution,
          resources: s.resources,
        }),
      ];
    case 'experiment': {
      // gitml's params are Azure ML literal inputs; its asset references, azureml: paths.
      const inputs: Record<string, unknown> = {};
      for (const [k, v] of Object.entries((s.inputs ?? {}) as Record<string, unknown>)) inputs[k] = typeof v === 'string' ? (azureInputPath(v) ?? { type: 'uri_folder', path: v }) : v;
      for (const [k, v] of Object.entries((s.params ?? {}) as Record<string, unknown>)) inputs[k] = v;
      const outputs: Record<string, unknown> = {};
      for (const [k, v] of Object.entries((s.outputs ?? {}) as Record<string, unknown>)) {
        const register = v && typeof v === 'object' ? (v as { register?: unknown }).register : undefined;
        const m = typeof register === 'string' ? /^(models|datasets)\/([a-z0-9][a-z0-9._-]*)$/.exec(register) : null;
        outputs[k] = m ? { type: m[1] === 'models' ? 'custom_model' : 'uri_folder', name: m[2] } : { type: 'uri_folder' };
      }
      const command = typeof s.command === 'string' ? s.command.replace(/\$\{\{\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, '${{inputs.$1}}') : undefined;
      return [
        doc('commandJob', 'job.yml', {
          ...extrasOf(s),
          type: 'command',
          experiment_name: azureComponentName(asset.name),
          display_name: s.display_name ?? `${asset.name} ${asset.version}`,
          description: asset.description || undefined,
          tags: tagsOf(asset, ref),
          code: s.code ? `${base}/${s.code}` : base,
          command,
          environment: typeof s.environment === 'string' ? azureRef(s.environment, 'environment') : undefined,
          compute: s.compute,
          inputs: Object.keys(inputs).length ? inputs : undefined,
          outputs: Object.keys(outputs).length ? outputs : undefined,
        }),
      ];
    }
    case 'endpoint': {
      const name = azureEndpointName(asset.name);
      const settings = (s.settings ?? {}) as Record<string, unknown>;
      const model = typeof s.model === 'string' ? azureRef(s.model, 'model') : undefined;
      const environment = typeof s.environment === 'string' ? azureRef(s.environment, 'environment') : undefined;
      const code = s.code_configuration as { code: string; scoring_script: string } | undefined;
      const codeConfiguration = code ? { code: `${base}/${code.code}`.replace(/\/\.$/, ''), scoring_script: code.scoring_script } : undefined;
      const deployment = String(s.deployment ?? 'blue');
      const instanceCount = (s.instance_count ?? settings.instance_count) as number | undefined;
      if (s.kind === 'batch') {
        const batchSettings = strip({ ...settings, instance_count: undefined });
        return [
          doc('batchEndpoint', 'endpoint.yml', { ...extrasOf(s, 'endpoint'), name, description: asset.description || undefined, tags: tagsOf(asset, ref) }),
          doc('batchDeployment', 'deployment.yml', {
            ...extrasOf(s, 'deployment'),
            name: deployment,
            endpoint_name: name,
            type: 'model',
            model,
            code_configuration: codeConfiguration,
            environment,
            compute: s.compute,
            resources: instanceCount ? { instance_count: instanceCount } : undefined,
            settings: Object.keys(batchSettings).length ? batchSettings : undefined,
          }),
        ];
      }
      return [
        doc('managedOnlineEndpoint', 'endpoint.yml', { ...extrasOf(s, 'endpoint'), name, auth_mode: s.auth_mode ?? 'key', description: asset.description || undefined, tags: tagsOf(asset, ref) }),
        doc('managedOnlineDeployment', 'deployment.yml', {
          ...extrasOf(s, 'deployment'),
          name: deployment,
          endpoint_name: name,
          model,
          code_configuration: codeConfiguration,
          environment,
          instance_type: s.instance_type ?? 'Standard_DS3_v2',
          instance_count: instanceCount ?? 1,
        }),
      ];
    }
  }
}

/**
 * `gitml assets export <ref>`: without `out`, the documents as they would sit in the version folder
 * (paths relative to it); with `out`, the version's files are fetched there (verified, like gitml get)
 * and the YAML written beside them, ready for `az ml <kind> create -f <out>/<kind>.yml`.
 */
export async function exportAzureMl(gitml: Gitml, refText: string, out?: string): Promise<{ ref: string; documents: (AzureDocument & { file: string })[] }> {
  const { asset } = await locate(gitml, refText);
  const ref = `${asset.type}s/${asset.name}@${asset.version}`;
  if (!out) return { ref, documents: toAzureMl(asset.doc, '.') };
  const target = path.resolve(gitml.cwd, out);
  const files = path.join(target, 'files');
  await makeDirs(target);
  if (!sourceOf(asset.doc)) await getBundle(gitml, refText, files, true);
  const documents = toAzureMl(asset.doc, './files');
  for (const d of documents) await fsp.writeFile(path.join(target, d.file), d.yaml);
  return { ref, documents: documents.map((d) => ({ ...d, file: path.join(target, d.file) })) };
}

/** What `gitml register --from-azureml` registers from Azure ML documents. */
export interface AzureImport {
  type: AssetType;
  name: string;
  version: string | null;
  description: string;
  tags: Record<string, string>;
  spec: Record<string, unknown>;
  /** Local files or folders the documents point at (resolved next to the YAML), to copy in. */
  paths: string[];
  /** Data that stays where it is (listed and recorded like `--uri`). */
  uri?: string;
}

function kindOf(raw: Record<string, unknown>, file: string): AzureKind {
  const schema = typeof raw.$schema === 'string' ? /\/([A-Za-z]+)\.schema\.json$/.exec(raw.$schema)?.[1] : undefined;
  if (schema) return schema as AzureKind;
  throw new GitmlError('E_USAGE', `${file} has no $schema: gitml cannot tell which Azure ML kind it is`, { hint: `Add the $schema line (${SCHEMA_BASE}/<kind>.schema.json).` });
}

/** `azureml:torch:1` → `environments/torch@1`; anything else kept as written. Pure. */
export function fromAzureRef(value: unknown, type: AssetType): unknown {
  if (typeof value !== 'string') return value;
  const m = /^azureml:([^:@/]+)[:@]([^:/]+)$/.exec(value);
  return m ? `${type}s/${m[1]!.toLowerCase().replace(/_/g, '-')}@${m[2]}` : value;
}

function localPath(value: unknown, dir: string, file: string): string | null {
  if (typeof value !== 'string' || /^[a-z][a-z0-9+.-]*:/i.test(value)) return null;
  const rel = value.replace(/^\.\//, '');
  if (rel === '' || rel === '.') return dir;
  checkRelativePath(rel, { what: 'path', source: file });
  return path.join(dir, ...rel.split('/'));
}

/** `wasbs://c@a.blob.core.windows.net/p` → `azure://a/c/p` (what gitml's data by reference reads). Pure. */
export function gitmlUriOf(uri: string): string {
  const m = /^wasbs?:\/\/([^@]+)@([^.]+)\.blob\.core\.windows\.net\/?(.*)$/.exec(uri);
  return m ? `azure://${m[2]}/${m[1]}/${m[3]}` : uri;
}

/**
 * Reads Azure ML documents (one asset: a data, model, environment, command component or job file,
 * or an endpoint file with its deployment file). Local paths become the version's contents; remote
 * paths become data by reference; fields gitml has no use for are kept in the spec.
 */
export async function readAzureMl(files: readonly string[]): Promise<AzureImport> {
  const docs: { kind: AzureKind; raw: Record<string, unknown>; file: string }[] = [];
  for (const file of files) {
    let raw: unknown;
    try {
      raw = YAML.parse(await fsp.readFile(file, 'utf8'));
    } catch (e) {
      throw new GitmlError('E_USAGE', `cannot read ${file}: ${(e as Error).message}`, { hint: 'Give Azure ML v2 YAML files.' });
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new GitmlError('E_USAGE', `${file} is not a YAML mapping`, { hint: 'Give Azure ML v2 YAML files.' });
    docs.push({ kind: kindOf(raw as Record<string, unknown>, file), raw: raw as Record<string, unknown>, file });
  }
  const main = docs.find((d) => !d.kind.endsWith('Deployment')) ?? docs[0]!;
  const deployment = docs.find((d) => d.kind.endsWith('Deployment'));
  const { $schema: _schema, name, version, description, tags, ...rest } = main.raw;
  const dir = path.dirname(main.file);
  const base = {
    name: String(name ?? '').toLowerCase().replace(/_/g, '-'),
    version: version === undefined || version === null ? null : String(version),
    description: typeof description === 'string' ? description : '',
    tags: Object.fromEntries(Object.entries((tags ?? {}) as Record<string, unknown>).filter(([k]) => !k.startsWith('gitml.')).map(([k, v]) => [k, String(v)])),
  };
  if (!base.name) throw new GitmlError('E_USAGE', `${main.file} has no name`, { hint: 'Azure ML documents name their asset.' });
  const withExtras = (spec: Record<string, unknown>, extras: Record<string, unknown>) => (Object.keys(extras).length ? { ...spec, azureml: extras } : spec);
  switch (main.kind) {
    case 'data': {
      const [mine, extras] = split(rest, ['type', 'path']);
      const local = localPath(mine.path, dir, main.file);
      const spec = withExtras({ type: mine.type ?? 'uri_folder' }, extras);
      if (local) return { ...base, type: 'dataset', spec, paths: [local] };
      if (typeof mine.path !== 'string') throw new GitmlError('E_USAGE', `${main.file} has no path`, { hint: 'Azure ML data documents give the data\'s path.' });
      const uri = gitmlUriOf(mine.path);
      // An azureml:// datastore path only Azure ML can resolve: recorded as written.
      if (/^azureml:\/\//.test(uri)) return { ...base, type: 'dataset', spec: { ...spec, path: uri }, paths: [] };
      return { ...base, type: 'dataset', spec, paths: [], uri };
    }
    case 'model': {
      const [mine, extras] = split(rest, ['type', 'path', 'flavors']);
      const local = localPath(mine.path, dir, main.file);
      const spec = withExtras(strip({ type: mine.type ?? 'custom_model', flavors: mine.flavors }), extras);
      if (!local) return { ...base, type: 'model', spec: { ...spec, path: mine.path }, paths: [] };
      return { ...base, type: 'model', spec, paths: [local] };
    }
    case 'environment': {
      const [mine, extras] = split(rest, ['image', 'conda_file', 'build', 'os_type', 'inference_config']);
      const paths: string[] = [];
      const spec: Record<string, unknown> = strip({ image: mine.image, os_type: mine.os_type, inference_config: mine.inference_config });
      const conda = localPath(mine.conda_file, dir, main.file);
      if (conda) {
        paths.push(conda);
        spec.conda_file = path.basename(conda);
      } else if (mine.conda_file !== undefined) spec.conda_file = mine.conda_file;
      const build = mine.build as { path?: string; dockerfile_path?: string } | undefined;
      const buildDir = build ? localPath(build.path, dir, main.file) : null;
      if (build && buildDir) {
        paths.push(buildDir);
        // One path: its contents are the version; with a conda file beside it, the folder keeps its name.
        spec.build = { ...build, path: paths.length > 1 ? path.basename(buildDir) : '.' };
      } else if (build) spec.build = build;
      return { ...base, type: 'environment', spec: withExtras(spec, extras), paths };
    }
    case 'commandComponent': {
      const [mine, extras] = split(rest, ['type', 'display_name', 'code', 'command', 'environment', 'inputs', 'outputs', 'distribution', 'resources']);
      const code = localPath(mine.code ?? '.', dir, main.file);
      const spec = strip({ display_name: mine.display_name, command: mine.command, environment: fromAzureRef(mine.environment, 'environment'), inputs: mine.inputs, outputs: mine.outputs, distribution: mine.distribution, resources: mine.resources });
      return { ...base, type: 'component', spec: withExtras(spec, extras), paths: code ? [code] : [] };
    }
    case 'commandJob': {
      const [mine, extras] = split(rest, ['type', 'experiment_name', 'display_name', 'code', 'command', 'environment', 'compute', 'inputs', 'outputs']);
      const code = localPath(mine.code ?? '.', dir, main.file);
      // Literal inputs are gitml params; data and model inputs, asset references.
      const inputs: Record<string, string> = {};
      const params: Record<string, unknown> = {};
      for (const [k, v] of Object.entries((mine.inputs ?? {}) as Record<string, unknown>)) {
        if (v === null || typeof v !== 'object') params[k] = v;
        else if (LITERAL_TYPES.includes(String((v as { type?: unknown }).type))) params[k] = (v as { default?: unknown; value?: unknown }).value ?? (v as { default?: unknown }).default ?? '';
        else {
          const ref = gitmlInputRef(v as { type?: unknown; path?: unknown });
          if (ref) inputs[k] = ref;
        }
      }
      const outputs: Record<string, unknown> = {};
      for (const [k, v] of Object.entries((mine.outputs ?? {}) as Record<string, unknown>)) {
        const o = (v ?? {}) as { type?: unknown; name?: unknown };
        const folder = MODEL_TYPES.includes(String(o.type)) ? 'models' : 'datasets';
        outputs[k] = strip({ path: `outputs/${k}`, register: typeof o.name === 'string' ? `${folder}/${o.name.toLowerCase().replace(/_/g, '-')}` : undefined });
      }
      const command = typeof mine.command === 'string' ? mine.command.replace(/\$\{\{\s*inputs\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (whole, k: string) => (k in params ? `\${{params.${k}}}` : whole)) : undefined;
      const spec = strip({
        display_name: mine.display_name,
        command,
        environment: fromAzureRef(mine.environment, 'environment'),
        compute: mine.compute,
        inputs: Object.keys(inputs).length ? inputs : undefined,
        outputs: Object.keys(outputs).length ? outputs : undefined,
        params: Object.keys(params).length ? params : undefined,
      });
      const name = String(mine.experiment_name ?? base.name).toLowerCase().replace(/_/g, '-');
      return { ...base, name, type: 'experiment', spec: withExtras(spec, extras), paths: code ? [code] : [] };
    }
    case 'managedOnlineEndpoint':
    case 'batchEndpoint':
    case 'managedOnlineDeployment':
    case 'batchDeployment': {
      const batch = main.kind === 'batchEndpoint' || deployment?.kind === 'batchDeployment';
      const [endpointMine, endpointExtras] = split(rest, ['auth_mode']);
      const { $schema: _s, ...d } = deployment?.raw ?? {};
      const [dep, deploymentExtras] = split(d, ['name', 'endpoint_name', 'type', 'model', 'environment', 'code_configuration', 'resources', 'instance_type', 'instance_count', 'compute', 'settings']);
      const paths: string[] = [];
      let codeConfiguration: unknown = undefined;
      const cc = dep.code_configuration as { code?: string; scoring_script?: string } | undefined;
      const ccDir = cc ? localPath(cc.code, path.dirname(deployment!.file), deployment!.file) : null;
      if (cc && ccDir) {
        paths.push(ccDir);
        codeConfiguration = { code: '.', scoring_script: cc.scoring_script };
      }
      const resources = (dep.resources ?? {}) as { instance_count?: number };
      const spec = strip({
        kind: batch ? 'batch' : 'online',
        auth_mode: batch ? undefined : endpointMine.auth_mode,
        deployment: typeof dep.name === 'string' ? dep.name : undefined,
        model: fromAzureRef(dep.model, 'model'),
        environment: fromAzureRef(dep.environment, 'environment'),
        code_configuration: codeConfiguration,
        instance_type: batch ? undefined : dep.instance_type,
        instance_count: (resources.instance_count ?? dep.instance_count) as number | undefined,
        compute: dep.compute,
        settings: dep.settings,
      } as Record<string, unknown>);
      const extras = strip({ endpoint: Object.keys(endpointExtras).length ? endpointExtras : undefined, deployment: Object.keys(deploymentExtras).length ? deploymentExtras : undefined });
      return { ...base, type: 'endpoint', spec: withExtras(spec, extras), paths };
    }
    default:
      throw new GitmlError('E_USAGE', `${main.file}: gitml does not register Azure ML ${main.kind} documents`, { hint: 'Give data, model, environment, command component, command job or endpoint YAML.' });
  }
}
