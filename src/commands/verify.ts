import { checkChange, EMPTY_TREE } from '../assets/immutability';
import { GitmlError } from '../errors';
import { runGit } from '../git/exec';
import { err, json, openHere, out, withJson, type Command } from './io';

/**
 * `gitml verify <old>..<new>`: the registry's immutability as a check for CI or a server's
 * pre-receive hook: no registered version changed or disappeared without a recorded retirement, and
 * every new version matches its asset.yaml. Reads git only; exit 1 when something is wrong.
 */
export const verifyCommand: Command = (io) => ({
  command: 'verify <range>',
  describe: 'check that <old>..<new> changes or drops no registered asset version (for CI and server hooks; docs/assets.md)',
  builder: (y) => withJson(y).positional('range', { type: 'string', describe: '<old>..<new> (an all-zero <old>: a new branch, only new versions are checked)' }),
  handler: async (argv) => {
    const m = /^([^.]*)\.\.([^.].*)$/.exec(String(argv.range));
    if (!m) throw new GitmlError('E_USAGE', `expected <old>..<new>, got ${JSON.stringify(argv.range)}`, { hint: 'For example: gitml verify origin/main..HEAD, or in a pre-receive hook: gitml verify "$old..$new".' });
    const gitml = await openHere(io);
    const git = gitml.repo.git;
    const tree = async (rev: string) => {
      if (/^0+$/.test(rev)) return EMPTY_TREE;
      const r = await runGit(git, ['rev-parse', '--verify', '--quiet', `${rev}^{tree}`], { okCodes: [1, 128] });
      if (r.code !== 0) throw new GitmlError('E_USAGE', `unknown revision ${JSON.stringify(rev)}`, { hint: 'Give commits, branches or tags that exist here.' });
      return r.stdout.toString('utf8').trim();
    };
    const problems = await checkChange(git, await tree(m[1] || 'HEAD'), await tree(m[2]!));
    if (argv.json) json(io, { range: argv.range, ok: problems.length === 0, problems });
    else if (problems.length === 0) out(io, `gitml verify ${argv.range}: registered versions intact`);
    else for (const p of problems) err(io, `gitml verify: ${p.dir}: ${p.problem}`);
    if (problems.length > 0) {
      throw new GitmlError('E_USAGE', `${problems.length} registered asset version(s) changed or dropped in ${argv.range}`, {
        hint: 'Registered versions are immutable: register changes as new versions, and retire old ones with gitml deprecate.',
      });
    }
  },
});
