import fsp from 'node:fs/promises';
import path from 'node:path';
import { addPatterns, encodePattern, listTracked, removePatterns, TRACK_ATTRIBUTES } from '../attributes';
import { controlFilesMatched } from '../git/check-attr';
import { errnoCode, GitmlError } from '../errors';
import { openRepo, requireWorkTree } from '../git/repo';
import { err, json, out, withJson, type CliIO, type Command } from './io';
import { installHooks } from '../install';

async function attributesFile(io: CliIO): Promise<{ file: string; text: string }> {
  const repo = await openRepo(io.cwd, io.env);
  const file = path.join(requireWorkTree(repo), '.gitattributes');
  const text = await fsp.readFile(file, 'utf8').catch((e) => (errnoCode(e) === 'ENOENT' ? '' : Promise.reject(e)));
  return { file, text };
}

export const trackCommand: Command = (io) => ({
  command: 'track [patterns..]',
  describe: 'send files matching the patterns through gitml (edits .gitattributes); no pattern lists them',
  builder: (y) => withJson(y).positional('patterns', { type: 'string', array: true, describe: 'gitattributes patterns, e.g. "*.pt" "data/**"' }),
  handler: async (argv) => {
    const { file, text } = await attributesFile(io);
    const patterns = (argv.patterns as string[] | undefined) ?? [];
    if (patterns.length === 0) {
      const tracked = listTracked(text);
      if (argv.json) return json(io, { file, patterns: tracked });
      if (tracked.length === 0) out(io, 'No patterns are tracked. Add one: gitml track "*.pt"');
      for (const p of tracked) out(io, p);
      return;
    }
    const result = addPatterns(text, patterns);
    // Before anything is written: a pattern that catches git's or gitml's own files breaks every clone.
    for (const p of result.added) {
      const caught = await controlFilesMatched({ cwd: io.cwd, env: io.env }, [`${encodePattern(p)} ${TRACK_ATTRIBUTES}`]);
      if (caught.length > 0) {
        throw new GitmlError('E_USAGE', `pattern ${JSON.stringify(p)} would also send ${[...new Set(caught.map((c) => c.replace(/^sub\//, '')))].join(', ')} through gitml`, {
          hint: 'Those files must stay plain text for git and gitml to read them. Use a narrower pattern, such as "*.pt" or "data/**".',
        });
      }
    }
    if (result.added.length > 0) await fsp.writeFile(file, result.text);
    // Like git-lfs: tracking is when a plain `git push` starts to need the pre-push hook.
    const hooks = (await installHooks((await openRepo(io.cwd, io.env)).git)).filter((h) => h.status !== 'unchanged');
    if (argv.json) return json(io, { file, added: result.added, already: result.already, hooks });
    for (const p of result.added) out(io, `Tracking "${p}"`);
    for (const p of result.already) out(io, `"${p}" is already tracked`);
    if (result.added.length > 0) out(io, 'Stage the change: git add .gitattributes');
    for (const h of hooks) if (h.status === 'skipped') err(io, `gitml: hook not installed: ${h.note}`);
  },
});

export const untrackCommand: Command = (io) => ({
  command: 'untrack <patterns..>',
  describe: 'stop sending files matching the patterns through gitml (edits .gitattributes)',
  builder: (y) => withJson(y).positional('patterns', { type: 'string', array: true, demandOption: true }),
  handler: async (argv) => {
    const { file, text } = await attributesFile(io);
    const patterns = argv.patterns as string[];
    const result = removePatterns(text, patterns);
    if (result.removed.length > 0) await fsp.writeFile(file, result.text);
    const notTracked = patterns.filter((p) => !result.removed.includes(p));
    if (argv.json) return json(io, { file, removed: result.removed, notTracked });
    for (const p of result.removed) out(io, `Untracking "${p}"`);
    for (const p of notTracked) out(io, `"${p}" was not tracked`);
  },
});
