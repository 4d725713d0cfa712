import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runGit, type GitContext } from './exec';

/**
 * Files git and gitml read as configuration. Sent through the filter they would be stored as
 * pointers, and every clone would read a pointer where it expects its settings (git-lfs refuses
 * the same patterns).
 */
export const CONTROL_FILES = ['.gitattributes', '.gitmlconfig', '.gitignore', '.gitmodules', '.lfsconfig', '.mailmap'];

/**
 * Which control files (at the top and in a sub-folder) the given attribute lines would send through
 * gitml, asked of git itself (its own pattern matching) in a scratch repository.
 */
export async function controlFilesMatched(ctx: GitContext, attributeLines: readonly string[]): Promise<string[]> {
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'gitml-attr-'));
  try {
    const env = { ...ctx.env, GIT_CONFIG_NOSYSTEM: '1', GIT_DIR: path.join(scratch, '.git'), GIT_WORK_TREE: scratch };
    const git = { cwd: scratch, env };
    await runGit(git, ['init', '-q', scratch]);
    await fsp.writeFile(path.join(scratch, '.git', 'info', 'attributes'), `${attributeLines.join('\n')}\n`);
    const paths = [...CONTROL_FILES, ...CONTROL_FILES.map((f) => `sub/${f}`)];
    const r = await runGit(git, ['check-attr', '-z', 'filter', '--', ...paths]);
    const fields = r.stdout.toString('utf8').split('\0');
    const matched: string[] = [];
    for (let i = 0; i + 2 < fields.length; i += 3) if (fields[i + 2] === 'gitml') matched.push(fields[i]!);
    return matched;
  } finally {
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}
