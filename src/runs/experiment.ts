import fsp from 'node:fs/promises';
import YAML from 'yaml';
import { z } from 'zod';
import { GitmlError } from '../errors';
import { validateName } from '../assets/names';

/**
 * An experiment file: the job a run executes (the experiment asset kind's spec, plus a name).
 *
 *   name: mnist
 *   command: python train.py --data ${{inputs.digits}} --epochs ${{params.epochs}} --out ${{outputs.model}}
 *   inputs:  { digits: datasets/digits@latest }           # asset refs or store URIs
 *   outputs: { model: { path: outputs/model, register: models/mnist } }
 *   environment: environments/torch@1
 *   params:  { epochs: 3, lr: 0.01 }
 */
const Output = z.union([z.string(), z.object({ path: z.string().optional(), register: z.string().optional(), type: z.string().optional() }).strict()]);

export const ExperimentFile = z
  .object({
    name: z.string(),
    description: z.string().optional(),
    command: z.string().optional(),
    inputs: z.record(z.string(), z.string()).default({}),
    outputs: z.record(z.string(), Output).default({}),
    environment: z.string().optional(),
    compute: z.string().optional(),
    params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  })
  .strict();

export type Experiment = z.infer<typeof ExperimentFile>;

export interface OutputSpec {
  name: string;
  path: string;
  register?: string;
}

export async function readExperiment(file: string): Promise<Experiment> {
  let raw: unknown;
  try {
    raw = YAML.parse(await fsp.readFile(file, 'utf8'));
  } catch (e) {
    throw new GitmlError('E_USAGE', `cannot read experiment file ${file}: ${(e as Error).message}`, { hint: 'See docs/runs.md for the format.' });
  }
  const parsed = ExperimentFile.safeParse(raw);
  if (!parsed.success) {
    throw new GitmlError('E_USAGE', `invalid experiment file ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`, { hint: 'See docs/runs.md for the format.' });
  }
  validateName(parsed.data.name);
  for (const k of [...Object.keys(parsed.data.inputs), ...Object.keys(parsed.data.outputs), ...Object.keys(parsed.data.params)]) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new GitmlError('E_USAGE', `invalid name ${JSON.stringify(k)} in ${file}`, { hint: 'Input, output and param names are identifiers: letters, digits, "_".' });
  }
  return parsed.data;
}

export function outputsOf(exp: Experiment): OutputSpec[] {
  return Object.entries(exp.outputs).map(([name, o]) => (typeof o === 'string' ? { name, path: o } : { name, path: o.path ?? `outputs/${name}`, register: o.register }));
}

/** `-P key=value` over the file's defaults; unknown keys are refused (a typo must not go unnoticed). Pure. */
export function mergeParams(defaults: Record<string, string | number | boolean>, overrides: readonly string[]): Record<string, string> {
  const out: Record<string, string> = Object.fromEntries(Object.entries(defaults).map(([k, v]) => [k, String(v)]));
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new GitmlError('E_USAGE', `-P ${JSON.stringify(o)} is not key=value`, { hint: 'Write params as -P key=value.' });
    const key = o.slice(0, eq);
    if (Object.keys(defaults).length > 0 && !(key in defaults)) {
      throw new GitmlError('E_USAGE', `unknown param ${JSON.stringify(key)}`, { hint: `The experiment declares: ${Object.keys(defaults).join(', ')}.` });
    }
    out[key] = o.slice(eq + 1);
  }
  return out;
}

/** `${{inputs.x}}`, `${{params.y}}`, `${{outputs.z}}` in a command. Unknown names are an error. Pure. */
export function substitute(template: string, values: { inputs: Record<string, string>; params: Record<string, string>; outputs: Record<string, string> }): string {
  return template.replace(/\$\{\{\s*(inputs|params|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (whole, kind: 'inputs' | 'params' | 'outputs', name: string) => {
    const v = values[kind][name];
    if (v === undefined) throw new GitmlError('E_USAGE', `${whole} names no declared ${kind.slice(0, -1)}`, { hint: `Declare it under ${kind}: in the experiment file.` });
    return v;
  });
}

/** Single-quotes a value for sh. Pure. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}
