import { GitmlError } from '../errors';

/**
 * `--sweep lr=0.001,0.01,0.1 --sweep batch=32,64`: every combination, in order (the last key
 * varies fastest), each a set of `-P` params. Pure.
 */
export function expandSweep(specs: readonly string[]): Record<string, string>[] {
  const axes: [string, string[]][] = [];
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const key = spec.slice(0, eq);
    if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new GitmlError('E_USAGE', `--sweep ${JSON.stringify(spec)} is not key=v1,v2,...`, { hint: 'For example --sweep lr=0.001,0.01,0.1' });
    const values = spec.slice(eq + 1).split(',').map((v) => v.trim());
    if (values.some((v) => v === '')) throw new GitmlError('E_USAGE', `--sweep ${key} has an empty value`, { hint: 'Separate values with commas: --sweep lr=0.001,0.01' });
    if (axes.some(([k]) => k === key)) throw new GitmlError('E_USAGE', `--sweep ${key} is given twice`, { hint: 'Give all values of a parameter in one --sweep.' });
    axes.push([key, [...new Set(values)]]);
  }
  let out: Record<string, string>[] = [{}];
  for (const [key, values] of axes) out = out.flatMap((o) => values.map((v) => ({ ...o, [key]: v })));
  if (out.length > 10_000) throw new GitmlError('E_USAGE', `the sweep has ${out.length} combinations, more than 10,000`, { hint: 'Sweep fewer values at once.' });
  return axes.length === 0 ? [] : out;
}

/** A sweep's params as `-P` arguments, after the run's own (-P given twice: the sweep's wins). Pure. */
export function sweepParams(base: readonly string[], element: Record<string, string>): string[] {
  return [...base, ...Object.entries(element).map(([k, v]) => `${k}=${v}`)];
}
