import { GitmlError } from '../errors';
import YAML from 'yaml';
import type { Argv } from 'yargs';
import { stageHistory } from '../assets/history';
import { formatRef, parseAssetType, parseRef } from '../assets/names';
import { listVersions, readDocument, retiredVersions } from '../assets/registry';
import { locate, localSource } from '../assets/resolve';
import { describeDifference } from '../assets/verify';
import { exportAzureMl } from '../assets/azureml';
import { formatBytes } from '../progress';
import { json, openHere, openHereOrHost, out, withJson, type CliIO, type Command } from './io';

/** `gitml assets diff` and `gitml diff`: what changed between two versions. */
async function diffAssets(io: CliIO, a: string, b: string, asJson: boolean): Promise<void> {
  const gitml = await openHereOrHost(io, [a, b]);
  const [x, y] = await Promise.all([locate(gitml, a), locate(gitml, b)]);
  const diff = describeDifference(x.asset.doc.digest.files, y.asset.doc.digest.files);
  const same = x.asset.doc.digest.value === y.asset.doc.digest.value;
  const specChanged = JSON.stringify(x.asset.doc.spec) !== JSON.stringify(y.asset.doc.spec);
  if (asJson) return json(io, { from: x.asset.dir, to: y.asset.dir, sameContent: same, files: same ? [] : diff.split(', '), specChanged });
  out(io, `${x.asset.dir} → ${y.asset.dir}`);
  out(io, same ? '  same contents' : `  ${diff.split(', ').join('\n  ')}`);
  if (specChanged) out(io, `  spec: ${JSON.stringify(x.asset.doc.spec)} → ${JSON.stringify(y.asset.doc.spec)}`);
}

const withRef = <T>(y: Argv<T>) => withJson(y).positional('ref', { type: 'string', describe: 'models/mnist@3, models/mnist@production, or <repo-url>#models/mnist@3' });

export const assetsCommand: Command = (io) => ({
  command: 'assets <action>',
  describe: 'registered assets: list, show, diff, history (of stages and aliases), export (Azure ML YAML)',
  builder: (y) =>
    withJson(y)
      .command({
        command: 'list [type]',
        describe: 'registered versions (retired ones marked)',
        builder: (c) => withJson(c).positional('type', { type: 'string', describe: 'dataset, model, ... (default: all)' }),
        handler: async (argv) => {
          const type = argv.type ? parseAssetType(argv.type as string) : undefined;
          const gitml = await openHere(io);
          const source = localSource(gitml);
          const rows = [];
          for (const v of await listVersions(source, type)) {
            const doc = await readDocument(source, v);
            const retired = (await retiredVersions(source, v.type, v.name)).has(v.version);
            rows.push({
              ref: `${v.type}s/${v.name}@${v.version}`,
              type: v.type,
              name: v.name,
              version: v.version,
              description: doc?.description ?? '',
              created: doc?.created.time ?? '',
              bytes: doc?.digest.files.reduce((n, f) => n + f.size, 0) ?? 0,
              retired,
            });
          }
          if (argv.json) return json(io, { assets: rows });
          if (rows.length === 0) return out(io, 'No assets registered. Register one: gitml register model <name> <files>');
          for (const r of rows) out(io, `${r.ref.padEnd(40)} ${formatBytes(r.bytes).padStart(10)}  ${r.created.slice(0, 19)}  ${r.retired ? '[retired] ' : ''}${r.description}`);
        },
      })
      .command({
        command: 'show <ref>',
        describe: 'one version\'s asset.yaml, and how the reference resolved',
        builder: withRef,
        handler: async (argv) => {
          const parsed = parseRef(argv.ref as string);
          const gitml = await openHereOrHost(io, [argv.ref as string]);
          const { asset } = await locate(gitml, argv.ref as string);
          const ref = formatRef({ repo: parsed.repo, type: asset.type, name: asset.name, selector: asset.version });
          if (argv.json) return json(io, { ref, resolved: asset.via, dir: asset.dir, asset: asset.doc });
          out(io, `# ${ref} (${asset.via})`);
          out(io, YAML.stringify(asset.doc, { lineWidth: 0 }).trimEnd());
        },
      })
      .command({
        command: 'diff <a> <b>',
        describe: 'files added, removed, changed, and spec changes between two versions',
        builder: (c) => withJson(c).positional('a', { type: 'string' }).positional('b', { type: 'string' }),
        handler: (argv) => diffAssets(io, argv.a as string, argv.b as string, argv.json as boolean),
      })
      .command({
        command: 'history <ref>',
        describe: 'which version held each stage or alias of an asset, and when (models/mnist, or models/mnist@production)',
        builder: withRef,
        handler: async (argv) => {
          const ref = parseRef(argv.ref as string);
          const gitml = await openHereOrHost(io, [argv.ref as string]);
          const events = await stageHistory(gitml, ref);
          if (argv.json) return json(io, { asset: `${ref.type}s/${ref.name}`, events });
          if (events.length === 0) return out(io, `No stage or alias of ${ref.type}s/${ref.name} is recorded (gitml promote sets them).`);
          for (const e of events) out(io, `${e.time.slice(0, 19)}  ${e.stage.padEnd(14)} ${`@${e.version}`.padEnd(8)} ${e.by}  ${e.commit.slice(0, 12)}${e.current ? '  (current)' : ''}`);
        },
      })
      .command({
        command: 'export <ref>',
        describe: 'an asset version as Azure ML v2 YAML that `az ml <kind> create -f` accepts',
        builder: (c) =>
          withRef(c)
            .option('format', { choices: ['azureml'] as const, default: 'azureml' as const, describe: 'output format' })
            .option('out', { type: 'string', describe: 'directory to write the YAML (and the asset\'s files) into; default: YAML on stdout' }),
        handler: async (argv) => {
          parseRef(argv.ref as string);
          const gitml = await openHereOrHost(io, [argv.ref as string]);
          try {
            const r = await exportAzureMl(gitml, argv.ref as string, argv.out as string | undefined);
            if (argv.json) return json(io, r);
            if (!argv.out) return out(io, r.documents.map((d) => d.yaml).join('---\n'));
            for (const d of r.documents) out(io, `wrote ${d.file} (${d.kind})`);
          } finally {
            await gitml.close();
          }
        },
      }),
  // Reached only when no action matched (yargs runs the action's own handler otherwise).
  handler: (argv) => {
    throw new GitmlError('E_USAGE', `unknown action ${JSON.stringify(argv.action)} for gitml assets`, { hint: 'Actions: list, show, diff, history, export (gitml assets <action> --help).' });
  },
});

export const diffCommand: Command = (io) => ({
  command: 'diff <a> <b>',
  describe: 'what changed between two asset versions (same as gitml assets diff)',
  builder: (y) => withJson(y).positional('a', { type: 'string' }).positional('b', { type: 'string' }),
  handler: (argv) => diffAssets(io, argv.a as string, argv.b as string, argv.json as boolean),
});
