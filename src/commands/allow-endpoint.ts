import { GitmlError } from '../errors';
import { runGit } from '../git/exec';
import { APPROVAL_KEY, endpointOrigin, isLoopback } from '../store/endpoint';
import { credentialsIn } from '../url-secrets';
import { json, out, withJson, type Command } from './io';

/**
 * `gitml allow-endpoint <url>`: approves a store endpoint that a repository's .gitmlconfig names
 * (docs/security.md). The approval lives in the person's own git config, never in a repository.
 */
export const allowEndpointCommand: Command = (io) => ({
  command: 'allow-endpoint <url>',
  describe: 'approve a store endpoint named in a repository\'s .gitmlconfig to receive your cloud credentials (written to your global git config)',
  builder: (y) =>
    withJson(y)
      .positional('url', { type: 'string', describe: 'https://host[:port] (http only for 127.0.0.1, ::1, localhost)' })
      .option('local', { type: 'boolean', default: false, describe: 'this repository only (.git/config)' })
      .option('remove', { type: 'boolean', default: false, describe: 'withdraw the approval' }),
  handler: async (argv) => {
    const url = String(argv.url);
    const origin = endpointOrigin(url);
    if (!origin) throw new GitmlError('E_USAGE', `${JSON.stringify(url)} is not an http(s) URL`, { hint: 'Give the endpoint as https://host[:port].' });
    if (credentialsIn(url)) throw new GitmlError('E_USAGE', 'an endpoint URL must not contain credentials', { hint: 'Give only https://host[:port].' });
    if (origin.startsWith('http:') && !isLoopback(new URL(origin).hostname)) {
      throw new GitmlError('E_USAGE', `${origin} is plain http: gitml never sends credentials unencrypted except to this machine`, { hint: 'Use https.' });
    }
    const scope = argv.local ? '--local' : '--global';
    const ctx = { cwd: io.cwd, env: io.env };
    const current = await runGit(ctx, ['config', scope, '--get-all', APPROVAL_KEY], { okCodes: [1] });
    const have = current.stdout.toString('utf8').split('\n').map((l) => endpointOrigin(l.trim())).filter(Boolean);
    let changed = false;
    if (argv.remove) {
      if (have.includes(origin)) {
        await runGit(ctx, ['config', scope, '--fixed-value', '--unset-all', APPROVAL_KEY, origin], { okCodes: [5] });
        changed = true;
      }
    } else if (!have.includes(origin)) {
      await runGit(ctx, ['config', scope, '--add', APPROVAL_KEY, origin]);
      changed = true;
    }
    if (argv.json) return json(io, { endpoint: origin, scope: scope.slice(2), approved: !argv.remove, changed });
    out(io, argv.remove ? `gitml: ${origin} is ${changed ? 'no longer' : 'not'} approved (${scope.slice(2)})` : `gitml: ${origin} ${changed ? 'approved' : 'was already approved'} (${scope.slice(2)} git config, ${APPROVAL_KEY})`);
  },
});
