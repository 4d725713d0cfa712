import fsp from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { type Deprecation } from '../assets/immutability';
import { parseRef } from '../assets/names';
import { authorOf, deprecationFile, headCommit } from '../assets/registry';
import { locate } from '../assets/resolve';
import { errnoCode, GitmlError } from '../errors';
import { runGit } from '../git/exec';
import { requireWorkTree } from '../git/repo';
import { makeDirs } from '../safe-path';
import { json, openHere, out, withJson, type Command } from './io';

/**
 * `gitml deprecate <ref> --reason ...`: retiring a version is an explicit, recorded act. The record
 * (.gitml/deprecated/<type>s/<name>.yaml: who, when, why) is append-only; with --remove the version's
 * folder goes too, in the same commit (history keeps it). `@latest` skips retired versions.
 */
export const deprecateCommand: Command = (io) => ({
  command: 'deprecate <ref>',
  describe: 'retire an asset version, recorded (who, when, why); --remove also deletes its folder',
  builder: (y) =>
    withJson(y)
      .positional('ref', { type: 'string', describe: 'models/mnist@3' })
      .option('reason', { type: 'string', demandOption: true, describe: 'why it is retired (kept in the record)' })
      .option('remove', { type: 'boolean', default: false, describe: 'also delete the version folder' })
      .option('commit', { type: 'boolean', default: false, describe: 'commit the retirement' }),
  handler: async (argv) => {
    const ref = parseRef(String(argv.ref));
    if (ref.repo) throw new GitmlError('E_USAGE', 'retire versions in the repository that holds them (not a <url>#ref)', { hint: 'Run gitml deprecate there.' });
    const reason = String(argv.reason).trim();
    if (!reason) throw new GitmlError('E_USAGE', '--reason must say why the version is retired', { hint: 'For example --reason "trained on leaked test data".' });
    const gitml = await openHere(io);
    const root = requireWorkTree(gitml.repo);
    const { asset } = await locate(gitml, ref);
    const rel = deprecationFile(asset.type, asset.name);
    const file = path.join(root, ...rel.split('/'));
    const existing = await fsp.readFile(file, 'utf8').catch((e) => (errnoCode(e) === 'ENOENT' ? '' : Promise.reject(e)));
    const list: Deprecation[] = ((YAML.parse(existing) as { deprecated?: Deprecation[] } | null)?.deprecated ?? []).filter(Boolean);
    const prior = list.find((d) => d.version === asset.version);
    if (prior && (prior.removed || !argv.remove)) throw new GitmlError('E_USAGE', `${asset.dir} is already retired (${prior.reason})`, { hint: prior.removed ? 'Nothing to do.' : 'Add --remove to delete its folder too.' });
    const entry: Deprecation = { version: asset.version, reason: prior?.reason ?? reason, by: await authorOf(gitml.repo.git), time: new Date().toISOString(), removed: Boolean(argv.remove) };
    const next = prior ? list.map((d) => (d === prior ? { ...prior, removed: true } : d)) : [...list, entry];
    await makeDirs(path.dirname(file));
    await fsp.writeFile(file, `# Retired versions of ${asset.type}s/${asset.name}: append-only (docs/assets.md)\n${YAML.stringify({ deprecated: next }, { lineWidth: 0 })}`);
    await runGit(gitml.repo.git, ['add', '--', rel]);
    if (argv.remove) await runGit(gitml.repo.git, ['rm', '-r', '-q', '--', asset.dir]);
    let commit: string | null = null;
    if (argv.commit) {
      await runGit(gitml.repo.git, ['commit', '-q', '-m', `retire ${asset.type}s/${asset.name}@${asset.version}: ${entry.reason}`]);
      commit = await headCommit(gitml.repo.git);
    }
    if (argv.json) return json(io, { ref: `${asset.type}s/${asset.name}@${asset.version}`, record: rel, removed: entry.removed, reason: entry.reason, commit });
    out(io, `Retired ${asset.type}s/${asset.name}@${asset.version}${argv.remove ? ' and removed its folder' : ''} (recorded in ${rel}).${commit ? ` Committed as ${commit.slice(0, 12)}.` : ' Commit it with git commit (or pass --commit).'}`);
  },
});
