import { buildLineage, renderLineage } from '../assets/lineage';
import { parseRef } from '../assets/names';
import { openHereOrHost, out, type Command } from './io';

export const lineageCommand: Command = (io) => ({
  command: 'lineage <ref>',
  describe: 'show what an asset was made from: inputs, runs and commits, recursively and across repositories',
  builder: (y) =>
    y.positional('ref', { type: 'string' }).option('format', { choices: ['text', 'json', 'dot', 'mermaid'] as const, default: 'text' as const, describe: 'output format' }),
  handler: async (argv) => {
    // A <url>#ref needs no repository here (like gitml get).
    parseRef(argv.ref as string);
    const gitml = await openHereOrHost(io, [argv.ref as string]);
    const graph = await buildLineage(gitml, argv.ref as string);
    out(io, renderLineage(graph, argv.format as 'text' | 'json' | 'dot' | 'mermaid'));
  },
});
