import fsp from 'node:fs/promises';
import readline from 'node:readline';
import { GitmlError } from '../errors';
import { remoteUrl, stripHelperPrefix, HELPER_PREFIX } from '../git/remote';
import { runGit } from '../git/exec';
import { checkChange, headTree, indexTree } from '../assets/immutability';
import { mergePointers } from '../merge';
import { pushObjectsForRefs, summarizeUpload, type RefUpdate } from '../sync/push';
import { VERSION } from '../version';
import { err, openHere, out, progressFor, type Command } from './io';

const ZERO = /^0+$/;

/** `gitml pre-push <remote> <url>`, run by the pre-push hook `gitml install --hooks` writes. */
export const prePushCommand: Command = (io) => ({
  command: 'pre-push <remote> [url]',
  describe: false as unknown as string,
  handler: async (argv) => {
    const url = (argv.url as string | undefined) ?? (await remoteUrl({ cwd: io.cwd, env: io.env }, argv.remote as string));
    // Pushes through gitml:: remotes are handled by git-remote-gitml; the hook has nothing to add.
    if (url.startsWith(HELPER_PREFIX) || io.env.GITML_IN_REMOTE_HELPER) {
      for await (const _line of readline.createInterface({ input: io.stdin })) void _line;
      return;
    }
    const gitml = await openHere(io);
    try {
      const updates: RefUpdate[] = [];
      const remoteHas: string[] = [];
      for await (const line of readline.createInterface({ input: io.stdin, crlfDelay: Infinity })) {
        const [, localSha, remoteRef, remoteSha] = line.split(' ');
        if (!localSha || !remoteRef) continue;
        updates.push({ dst: remoteRef, sha: ZERO.test(localSha) ? null : localSha });
        if (remoteSha && !ZERO.test(remoteSha)) remoteHas.push(remoteSha);
      }
      // What the remote-tracking refs say the remote has (no network call, like git-lfs).
      const tracking = await runGit(gitml.repo.git, ['for-each-ref', '--format=%(objectname)', `refs/remotes/${argv.remote as string}/`]);
      remoteHas.push(...tracking.stdout.toString('utf8').split('\n').filter(Boolean));
      const started = Date.now();
      const result = await pushObjectsForRefs(gitml, updates, { remoteHas, progress: progressFor(io), repoUrl: url, gitPushFollows: true });
      // git moves the refs after this hook exits; gc's grace period covers that moment.
      await result.release();
      const summary = summarizeUpload(result, (Date.now() - started) / 1000);
      if (summary) err(io, summary);
      if (result.blocked.size > 0) {
        for (const why of new Set(result.blocked.values())) err(io, why);
        throw new GitmlError('E_PUSH_INCOMPLETE', `push stopped: the bytes of some files could not be stored (remote ${stripHelperPrefix(url)})`, {
          hint: 'Nothing was pushed. Fix the cause above and push again.',
        });
      }
    } finally {
      await gitml.close();
    }
  },
});

/** `gitml pre-commit`, run by the pre-commit hook: refuses commits that change a registered version. */
export const preCommitCommand: Command = (io) => ({
  command: 'pre-commit',
  describe: false as unknown as string,
  handler: async () => {
    const gitml = await openHere(io);
    // HEAD against what this commit would record: cost follows the versions the commit touches.
    const git = gitml.repo.git;
    const problems = await checkChange(git, await headTree(git), await indexTree(git));
    if (problems.length > 0) {
      for (const p of problems) err(io, `gitml: ${p.dir} is a registered version and must not change: ${p.problem}`);
      throw new GitmlError('E_USAGE', 'commit refused: it modifies or drops registered asset versions', {
        hint: 'Unstage the change (git restore --staged <dir>) and register it as a new version (gitml register ... --version auto); to retire a version: gitml deprecate <ref> --reason "..." [--remove].',
      });
    }
  },
});

/** `gitml merge-driver %O %A %B %P` (merge.gitml.driver). Exit 1 tells git the file conflicts. */
export const mergeDriverCommand: Command = (_io) => ({
  command: 'merge-driver <base> <ours> <theirs> [path]',
  describe: false as unknown as string,
  handler: async (argv) => {
    const [base, ours, theirs] = await Promise.all([argv.base, argv.ours, argv.theirs].map((f) => fsp.readFile(f as string)));
    const outcome = mergePointers(base!, ours!, theirs!);
    if (outcome.result === 'theirs') await fsp.writeFile(argv.ours as string, theirs!);
    if (outcome.conflict) {
      throw new GitmlError('E_USAGE', `both sides changed '${(argv.path as string | undefined) ?? argv.ours}'; kept ours`, {
        hint: 'Choose a side: git checkout --theirs -- <path> (or --ours), then git add <path>.',
      });
    }
  },
});

export const versionCommand: Command = (io) => ({
  command: 'version',
  describe: 'print the gitml version',
  handler: async () => {
    out(io, `gitml ${VERSION} (node ${process.version})`);
  },
});
