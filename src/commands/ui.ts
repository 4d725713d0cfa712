import { spawn } from 'node:child_process';
import { GitmlError, isGitmlError } from '../errors';
import { findOnPath } from '../which';
import { err, openHere, openHost, out, type Command } from './io';

export const uiCommand: Command = (io) => ({
  command: 'ui [repo]',
  describe: 'a read-only web view of the registry, lineage, promotions and runs, on 127.0.0.1 (docs/ui.md)',
  builder: (y) =>
    y
      .positional('repo', { type: 'string', describe: 'another repository\'s URL (default: this one)' })
      .option('port', { type: 'number', default: 0, describe: 'port on 127.0.0.1 (default: a free one)' })
      .option('open', { type: 'boolean', default: false, describe: 'open it in the browser' }),
  handler: async (argv) => {
    const port = argv.port as number;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new GitmlError('E_USAGE', `--port ${JSON.stringify(argv.port)} is not a port number`, { hint: 'Give 0 (any free port) to 65535.' });
    const repo = argv.repo as string | undefined;
    // Another repository's view needs no repository here.
    const gitml = repo ? await openHere(io).catch((e) => (isGitmlError(e, 'E_NOT_A_REPO') ? openHost(io) : Promise.reject(e))) : await openHere(io);
    // The web stack loads only for this command (every other command starts without it).
    const { UiModel } = await import('../ui/model');
    const { startUi } = await import('../ui/server');
    const model = await UiModel.open(gitml, repo);
    const server = await startUi(model, port);
    out(io, `gitml ui: ${server.url} (read-only, this machine only; Ctrl-C stops it)`);
    if (argv.open) {
      const opener = ['xdg-open', 'open'].find((o) => findOnPath(io.env, o));
      if (opener) spawn(opener, [server.url], { stdio: 'ignore', detached: true }).unref();
      else err(io, 'gitml: no browser opener (xdg-open) found: open the address above yourself.');
    }
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await server.close();
    await gitml.close();
  },
});
