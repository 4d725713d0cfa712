import { getBundle } from '../assets/bundle';
import { parseRef } from '../assets/names';
import { formatBytes } from '../progress';
import { json, openHereOrHost, out, withJson, type Command } from './io';

export const getCommand: Command = (io) => ({
  command: 'get <ref>',
  describe: 'fetch one asset version (and what it needs) into a directory, atomically and verified, without a clone',
  builder: (y) =>
    withJson(y)
      .positional('ref', { type: 'string', describe: 'models/mnist@3, or <repo-url>#models/mnist@production' })
      .option('to', { type: 'string', demandOption: true, describe: 'directory to create' })
      .option('force', { type: 'boolean', default: false, describe: 'replace the directory if it exists' }),
  handler: async (argv) => {
    // A malformed reference is a usage error before anything is created (the host repository below).
    parseRef(argv.ref as string);
    const gitml = await openHereOrHost(io, [argv.ref as string]);
    try {
      const r = await getBundle(gitml, argv.ref as string, argv.to as string, argv.force as boolean);
      if (argv.json) return json(io, r);
      out(io, `gitml: ${r.assets.join(', ')} → ${r.dir} (${r.files} files, ${formatBytes(r.bytes)}; ${r.downloaded} object(s) downloaded)`);
    } finally {
      await gitml.close();
    }
  },
});
