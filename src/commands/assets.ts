import YAML from 'yaml';
import { parseAssetType } from '../assets/names';
import { listVersions, readDocument } from '../assets/registry';
import { locate, localSource } from '../assets/resolve';
import { describeDifference } from '../assets/verify';
import { formatBytes } from '../progress';
import { json, openHere, out, withJson, type Command } from './io';

export const assetsCommand: Command = (io) => ({
  command: 'assets <action> [args..]',
  describe: 'list, show and diff registered assets: assets list [type] | assets show <ref> | assets diff <ref> <ref>',
  builder: (y) =>
    withJson(y)
      .positional('action', { type: 'string', choices: ['list', 'show', 'diff'] })
      .positional('args', { type: 'string', array: true }),
  handler: async (argv) => {
    const gitml = await openHere(io);
    const args = (argv.args as string[] | undefined) ?? [];
    switch (argv.action) {
      case 'list': {
        const source = localSource(gitml);
        const versions = await listVersions(source, args[0] ? parseAssetType(args[0]) : undefined);
        const rows = [];
        for (const v of versions) {
          const doc = await readDocument(source, v);
          rows.push({
            ref: `${v.type}s/${v.name}@${v.version}`,
            type: v.type,
            name: v.name,
            version: v.version,
            description: doc?.description ?? '',
            created: doc?.created.time ?? '',
            bytes: doc?.digest.files.reduce((n, f) => n + f.size, 0) ?? 0,
          });
        }
        if (argv.json) return json(io, { assets: rows });
        if (rows.length === 0) return out(io, 'No assets registered. Register one: gitml register model <name> <files>');
        for (const r of rows) out(io, `${r.ref.padEnd(40)} ${formatBytes(r.bytes).padStart(10)}  ${r.created.slice(0, 19)}  ${r.description}`);
        return;
      }
      case 'show': {
        const { asset } = await locate(gitml, args[0] ?? '');
        if (argv.json) return json(io, { ref: `${asset.type}s/${asset.name}@${asset.version}`, resolved: asset.via, dir: asset.dir, asset: asset.doc });
        out(io, `# ${asset.type}s/${asset.name}@${asset.version} (${asset.via})`);
        out(io, YAML.stringify(asset.doc, { lineWidth: 0 }).trimEnd());
        return;
      }
      case 'diff': {
        const [a, b] = await Promise.all([locate(gitml, args[0] ?? ''), locate(gitml, args[1] ?? '')]);
        const diff = describeDifference(a.asset.doc.digest.files, b.asset.doc.digest.files);
        const same = a.asset.doc.digest.value === b.asset.doc.digest.value;
        const specChanged = JSON.stringify(a.asset.doc.spec) !== JSON.stringify(b.asset.doc.spec);
        if (argv.json) return json(io, { from: a.asset.dir, to: b.asset.dir, sameContent: same, files: same ? [] : diff.split(', '), specChanged });
        out(io, `${a.asset.dir} → ${b.asset.dir}`);
        out(io, same ? '  same contents' : `  ${diff.split(', ').join('\n  ')}`);
        if (specChanged) out(io, `  spec: ${JSON.stringify(a.asset.doc.spec)} → ${JSON.stringify(b.asset.doc.spec)}`);
        return;
      }
    }
  },
});
