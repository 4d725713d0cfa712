import { registerAsset } from '../assets/register';
import { lineageInput } from '../assets/resolve';
import { parseAssetType, type AssetType } from '../assets/names';
import { readExperiment } from '../runs/experiment';
import fs from 'node:fs';
import { GitmlError } from '../errors';
import { requireWorkTree } from '../git/repo';
import path from 'node:path';
import { readAzureMl } from '../assets/azureml';
import { json, openHere, out, withJson, type Command } from './io';

/**
 * "k=v" pairs into an object; dotted keys nest (`flavors.pytorch=2.3` → {flavors: {pytorch: "2.3"}}).
 * With `typed`, whole numbers and booleans become them (`instance_count=1` → 1; quote
 * in the shell and write `"1"` to keep a string). Pure.
 */
export function parsePairs(pairs: readonly string[], what: string, typed = false): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new GitmlError('E_USAGE', `${what} ${JSON.stringify(p)} is not key=value`, { hint: `Write ${what} as key=value.` });
    const keys = p.slice(0, eq).split('.');
    let at = out;
    for (const k of keys.slice(0, -1)) at = (at[k] ??= {}) as Record<string, unknown>;
    at[keys[keys.length - 1]!] = typed ? typedValue(p.slice(eq + 1)) : p.slice(eq + 1);
  }
  return out;
}

/**
 * "1" → 1, "true" → true; '"1"' → "1"; anything else (a version such as 2.3 too) stays a string.
 * Pure.
 */
export function typedValue(text: string): unknown {
  if (/^-?(0|[1-9][0-9]{0,14})$/.test(text)) return Number(text);
  if (text === 'true' || text === 'false') return text === 'true';
  const quoted = /^"(.*)"$/.exec(text);
  return quoted ? quoted[1] : text;
}

/**
 * An experiment registered from its experiment file: the job (command, inputs, outputs, params,
 * environment, compute) goes into asset.yaml too, so the version reads (and exports) without its files.
 */
async function experimentSpec(type: AssetType | null, paths: readonly string[], cwd: string): Promise<Record<string, unknown>> {
  if (type !== 'experiment') return {};
  const files = paths.map((p) => path.resolve(cwd, p)).filter((p) => /\.ya?ml$/i.test(p) && fs.statSync(p, { throwIfNoEntry: false })?.isFile());
  if (files.length !== 1) return {};
  // Another YAML file (a config the job reads) is just content.
  const experiment = await readExperiment(files[0]!).catch(() => null);
  if (!experiment) return {};
  const { name: _name, description: _description, ...job } = experiment;
  return Object.fromEntries(Object.entries(job).filter(([, v]) => v !== undefined && !(typeof v === 'object' && Object.keys(v).length === 0)));
}

export const registerCommand: Command = (io) => ({
  command: 'register [type] [name] [paths..]',
  describe: 'register a new immutable version of an asset: <type>s/<name>/<version>/ with asset.yaml (docs/assets.md); or --from-azureml <file.yml>',
  builder: (y) =>
    withJson(y)
      .positional('type', { type: 'string', describe: 'dataset, environment, model, experiment, component or endpoint' })
      .positional('name', { type: 'string', describe: 'lower-case name: a-z 0-9 . _ -' })
      .positional('paths', { type: 'string', array: true, describe: 'files and folders to copy into the version (one folder: its contents)' })
      .option('version', { type: 'string', describe: 'a version, or auto for the next integer (default: auto, or the Azure ML document\'s)' })
      .option('description', { type: 'string', default: '' })
      .option('tag', { type: 'string', array: true, default: [], describe: 'k=v, repeatable' })
      .option('spec', { type: 'string', array: true, default: [], describe: 'type-specific field k=v (dotted keys nest; whole numbers and true/false are typed), repeatable' })
      .option('input', { type: 'string', array: true, default: [], describe: 'asset this one was made from (lineage), repeatable' })
      .option('move', { type: 'boolean', default: false, describe: 'move the paths instead of copying them' })
      .option('uri', { type: 'string', describe: 'dataset by reference: s3://, azure://, abfss://, file:// or https:// (the data stays there)' })
      .option('hash', { type: 'boolean', default: false, describe: 'with --uri: also record each object\'s sha256 (reads the data once)' })
      .option('copy', { type: 'boolean', default: false, describe: 'with --uri: copy the data into the version (and the gitml store) instead' })
      .option('from-azureml', { type: 'string', array: true, describe: 'Azure ML v2 YAML to register (an endpoint with its deployment: both files)' })
      .option('commit', { type: 'boolean', default: false, describe: 'commit the new version' }),
  handler: async (argv) => {
    const azure = (argv['from-azureml'] as string[] | undefined) ?? [];
    // Usage first, before anything is opened or written.
    if (azure.length === 0 && (!argv.type || !argv.name)) {
      throw new GitmlError('E_USAGE', 'register needs <type> <name> (or --from-azureml <file.yml>): usage: gitml register <type> <name> [paths..]', {
        hint: 'For example: gitml register model mnist ./model.pt (an argument that starts with "-" is read as an option: write -- before it).',
      });
    }
    if (azure.length > 0 && (argv.type || argv.uri || argv.copy || argv.hash)) {
      throw new GitmlError('E_USAGE', '--from-azureml takes everything from the YAML: give no type, name, paths or --uri', { hint: 'gitml register --from-azureml model.yml [--commit]' });
    }
    const type = azure.length > 0 ? null : parseAssetType(argv.type as string);
    if ((argv.hash || argv.copy) && !argv.uri) throw new GitmlError('E_USAGE', '--hash and --copy go with --uri', { hint: 'Add --uri <where the data is>.' });
    const imported = azure.length > 0 ? await readAzureMl(azure.map((f) => path.resolve(io.cwd, f))) : null;
    const gitml = await openHere(io);
    try {
      requireWorkTree(gitml.repo);
      const inputs = [];
      for (const r of argv.input as string[]) inputs.push(await lineageInput(gitml, r));
      const spec = { ...(imported?.spec ?? (await experimentSpec(type, (argv.paths as string[] | undefined) ?? [], io.cwd))), ...parsePairs(argv.spec as string[], '--spec', true) };
      const assetType = imported?.type ?? type!;
      if (assetType === 'model' && spec.type !== undefined && !['custom_model', 'mlflow_model', 'triton_model'].includes(String(spec.type))) {
        throw new GitmlError('E_USAGE', `model type ${JSON.stringify(spec.type)} is not one Azure ML knows`, { hint: 'Use custom_model (with --spec flavors.<framework>=<version>), mlflow_model or triton_model.' });
      }
      const registered = await registerAsset({
        repo: gitml.repo,
        cwd: io.cwd,
        type: assetType,
        name: imported?.name ?? (argv.name as string),
        version: (argv.version as string | undefined) ?? imported?.version ?? 'auto',
        paths: imported?.paths ?? ((argv.paths as string[] | undefined) ?? []),
        move: argv.move as boolean,
        description: (argv.description as string) || imported?.description || '',
        tags: { ...(imported?.tags ?? {}), ...(parsePairs(argv.tag as string[], '--tag') as Record<string, string>) },
        spec,
        inputs,
        uri: imported?.uri ?? (argv.uri as string | undefined),
        hash: argv.hash as boolean,
        copy: argv.copy as boolean,
        source: { settings: gitml.settings, env: io.env },
        commit: argv.commit as boolean,
        referenceOnly: imported !== null && imported.paths.length === 0 && !imported.uri,
      });
      if (argv.json) return json(io, { ref: registered.ref, dir: registered.dir, commit: registered.commit, asset: registered.doc });
      out(io, `Registered ${registered.ref} in ${registered.dir}/ (${registered.doc.digest.files.length} file(s), digest sha256:${registered.doc.digest.value.slice(0, 12)})`);
      out(io, registered.commit ? `Committed as ${registered.commit.slice(0, 12)}.` : 'Staged; commit it with git commit (or pass --commit).');
    } finally {
      await gitml.close();
    }
  },
});
