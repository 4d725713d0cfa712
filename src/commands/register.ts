import { registerAsset } from '../assets/register';
import { lineageInput } from '../assets/resolve';
import { parseAssetType } from '../assets/names';
import { GitmlError } from '../errors';
import { requireWorkTree } from '../git/repo';
import { json, openHere, out, withJson, type Command } from './io';

/** "k=v" pairs into an object; dotted keys nest (`flavors.pytorch=2.3` → {flavors: {pytorch: "2.3"}}). Pure. */
export function parsePairs(pairs: readonly string[], what: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new GitmlError('E_USAGE', `${what} ${JSON.stringify(p)} is not key=value`, { hint: `Write ${what} as key=value.` });
    const keys = p.slice(0, eq).split('.');
    let at = out;
    for (const k of keys.slice(0, -1)) at = (at[k] ??= {}) as Record<string, unknown>;
    at[keys[keys.length - 1]!] = p.slice(eq + 1);
  }
  return out;
}

export const registerCommand: Command = (io) => ({
  command: 'register <type> <name> [paths..]',
  describe: 'register a new immutable version of an asset: <type>s/<name>/<version>/ with asset.yaml (docs/assets.md)',
  builder: (y) =>
    withJson(y)
      .positional('type', { type: 'string', describe: 'dataset, environment, model, experiment, component or endpoint' })
      .positional('name', { type: 'string', describe: 'lower-case name: a-z 0-9 . _ -' })
      .positional('paths', { type: 'string', array: true, describe: 'files and folders to copy into the version' })
      .option('version', { type: 'string', default: 'auto', describe: 'a version, or auto for the next integer' })
      .option('description', { type: 'string', default: '' })
      .option('tag', { type: 'string', array: true, default: [], describe: 'k=v, repeatable' })
      .option('spec', { type: 'string', array: true, default: [], describe: 'type-specific field k=v (dotted keys nest), repeatable' })
      .option('input', { type: 'string', array: true, default: [], describe: 'asset this one was made from (lineage), repeatable' })
      .option('move', { type: 'boolean', default: false, describe: 'move the paths instead of copying them' })
      .option('uri', { type: 'string', describe: 'dataset by reference: s3://, azure://, abfss://, file:// or https:// (the data stays there)' })
      .option('hash', { type: 'boolean', default: false, describe: 'with --uri: also record each object\'s sha256 (reads the data once)' })
      .option('copy', { type: 'boolean', default: false, describe: 'with --uri: copy the data into the version (and the gitml store) instead' })
      .option('commit', { type: 'boolean', default: false, describe: 'commit the new version' }),
  handler: async (argv) => {
    const gitml = await openHere(io);
    try {
      requireWorkTree(gitml.repo);
      const type = parseAssetType(argv.type as string);
      if ((argv.hash || argv.copy) && !argv.uri) throw new GitmlError('E_USAGE', '--hash and --copy go with --uri', { hint: 'Add --uri <where the data is>.' });
      const inputs = [];
      for (const r of argv.input as string[]) inputs.push(await lineageInput(gitml, r));
      const registered = await registerAsset({
        repo: gitml.repo,
        cwd: io.cwd,
        type,
        name: argv.name as string,
        version: argv.version as string,
        paths: (argv.paths as string[] | undefined) ?? [],
        move: argv.move as boolean,
        description: argv.description as string,
        tags: parsePairs(argv.tag as string[], '--tag') as Record<string, string>,
        spec: parsePairs(argv.spec as string[], '--spec'),
        inputs,
        uri: argv.uri as string | undefined,
        hash: argv.hash as boolean,
        copy: argv.copy as boolean,
        source: { settings: gitml.settings, env: io.env },
        commit: argv.commit as boolean,
      });
      if (argv.json) return json(io, { ref: registered.ref, dir: registered.dir, commit: registered.commit, asset: registered.doc });
      out(io, `Registered ${registered.ref} in ${registered.dir}/ (${registered.doc.digest.files.length} file(s), digest sha256:${registered.doc.digest.value.slice(0, 12)})`);
      out(io, registered.commit ? `Committed as ${registered.commit.slice(0, 12)}.` : 'Staged; commit it with git commit (or pass --commit).');
    } finally {
      await gitml.close();
    }
  },
});
