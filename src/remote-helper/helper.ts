import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../log';
import { fetchModeOf, skipSmudge } from '../config';
import { openGitml, type Gitml } from '../context';
import { installLfsCompat } from '../install';
import { describeError, GitmlError } from '../errors';
import { runGit } from '../git/exec';
import type { ProgressSink } from '../progress';
import { fetchObjectsForCommits } from '../sync/fetch';
import { pushObjectsForRefs, summarizeUpload, type RefUpdate } from '../sync/push';
import { isSafeUnderlyingUrl, parsePorcelainLine, parsePushSpec, type PushSpec } from './refspec';

/**
 * `git-remote-gitml <remote> <url>`: git runs it for remotes written `gitml::<url>` (gitremote-helpers(7)).
 * The git objects travel through the real git against <url>; gitml adds the bytes behind pointers:
 * uploaded to the store before a ref moves on push, downloaded in parallel after a fetch.
 * stdout carries the protocol and nothing else.
 */
export interface RemoteHelperOptions {
  remoteName: string;
  url: string;
  input: Readable;
  output: Writable;
  env: NodeJS.ProcessEnv;
  cwd: string;
  log: Logger;
  stderr: ProgressSink;
}

/** The name the real fetch gives the underlying remote (never written to the repository's config). */
const UNDERLYING = 'gitml-underlying';

interface RemoteRef {
  sha: string;
  name: string;
}

export class RemoteHelper {
  private progress: boolean;
  private verbosity = 1;
  private dryRun = false;
  private atomic = false;
  private cloning = false;
  private depth: string | null = null;
  private readonly pushOptions: string[] = [];
  /** `--force-with-lease` expectations, `<ref>:<expected sha>`, passed on to the real push. */
  private readonly leases: string[] = [];
  /** A partial clone's filter (`--filter=blob:none`), passed on to the real fetch. */
  private filter: string | null = null;
  private remoteRefs: RemoteRef[] | null = null;
  private headTarget: string | null = null;
  private gitmlPromise: Promise<Gitml> | null = null;

  constructor(private readonly options: RemoteHelperOptions) {
    if (!isSafeUnderlyingUrl(options.url)) {
      throw new GitmlError('E_USAGE', `invalid remote URL ${JSON.stringify(options.url)} after gitml::`, {
        hint: 'Write the remote as gitml::<git url>, for example gitml::/srv/git/repo.git or gitml::https://host/repo.git.',
      });
    }
    this.progress = false;
  }

  async run(): Promise<void> {
    const lines = readline.createInterface({ input: this.options.input, crlfDelay: Infinity })[Symbol.asyncIterator]();
    const next = async (): Promise<string | null> => {
      const r = await lines.next();
      return r.done ? null : r.value;
    };
    for (;;) {
      const line = await next();
      if (line === null || line === '') break;
      this.options.log.debug({ line }, 'helper command');
      if (line === 'capabilities') {
        await this.send('fetch\npush\noption\n\n');
      } else if (line === 'list' || line === 'list for-push') {
        await this.list(line === 'list for-push');
      } else if (line.startsWith('option ')) {
        await this.send(`${this.option(line.slice('option '.length))}\n`);
      } else if (line.startsWith('fetch ')) {
        const batch = [line];
        for (let l = await next(); l !== null && l !== ''; l = await next()) batch.push(l);
        await this.fetch(batch);
        await this.send('\n');
      } else if (line.startsWith('push ')) {
        const batch = [line];
        for (let l = await next(); l !== null && l !== ''; l = await next()) batch.push(l);
        await this.send(await this.push(batch));
      } else {
        throw new GitmlError('E_PROTOCOL', `remote helper: unknown command ${JSON.stringify(line)}`);
      }
    }
  }

  private option(text: string): 'ok' | 'unsupported' {
    const space = text.indexOf(' ');
    const name = space < 0 ? text : text.slice(0, space);
    const value = space < 0 ? '' : text.slice(space + 1);
    switch (name) {
      case 'progress':
        this.progress = value === 'true';
        return 'ok';
      case 'verbosity':
        this.verbosity = Number(value) || 0;
        return 'ok';
      case 'dry-run':
        this.dryRun = value === 'true';
        return 'ok';
      case 'atomic':
        this.atomic = value === 'true';
        return 'ok';
      case 'cloning':
        this.cloning = value === 'true';
        return 'ok';
      case 'depth':
        if (!/^[1-9][0-9]*$/.test(value)) return 'unsupported';
        this.depth = value;
        return 'ok';
      case 'push-option':
        this.pushOptions.push(unquote(value));
        return 'ok';
      case 'cas':
        this.leases.push(unquote(value));
        return 'ok';
      case 'filter':
        if (!/^[a-z0-9:=+_.,-]+$/i.test(value)) return 'unsupported';
        this.filter = value;
        return 'ok';
      case 'from-promisor':
        return 'ok';
      case 'followtags':
      case 'check-connectivity':
        return 'ok';
      default:
        return 'unsupported';
    }
  }

  private async list(forPush: boolean): Promise<void> {
    const refs = await this.lsRemote();
    const out: string[] = refs.map((r) => `${r.sha} ${r.name}`);
    if (!forPush && this.headTarget && refs.some((r) => r.name === this.headTarget)) out.push(`@${this.headTarget} HEAD`);
    await this.send(out.map((l) => `${l}\n`).join('') + '\n');
  }

  private async lsRemote(): Promise<RemoteRef[]> {
    const r = await runGit(this.gitCtx(), ['ls-remote', '--symref', this.options.url]);
    const refs: RemoteRef[] = [];
    this.headTarget = null;
    for (const line of r.stdout.toString('utf8').split('\n')) {
      if (!line) continue;
      const [left, name] = line.split('\t') as [string, string | undefined];
      if (!name) continue;
      if (left.startsWith('ref: ')) {
        if (name === 'HEAD') this.headTarget = left.slice('ref: '.length);
        continue;
      }
      if (name === 'HEAD' || name.endsWith('^{}')) continue;
      refs.push({ sha: left, name });
    }
    this.remoteRefs = refs;
    return refs;
  }

  private async fetch(batch: string[]): Promise<void> {
    const wanted = batch.map((l) => {
      const [, sha, name] = l.split(' ');
      return { sha: sha!, name: name! };
    });
    const args = ['fetch', '--no-write-fetch-head', '--no-tags', this.progress ? '--progress' : '--no-progress'];
    if (this.verbosity === 0) args.push('--quiet');
    if (this.depth) args.push(`--depth=${this.depth}`);
    // A partial clone stays partial: the real fetch gets the same filter (git then lazily fetches
    // missing objects through this helper, by their ids).
    // The real fetch goes to a remote named for the occasion: a partial clone's pack must come from
    // a promisor remote (git marks it so), and a URL cannot be one.
    const config: string[] = [];
    if (this.filter) {
      args.push(`--filter=${this.filter}`);
      config.push('-c', `remote.${UNDERLYING}.url=${this.options.url}`, '-c', `remote.${UNDERLYING}.promisor=true`, '-c', `remote.${UNDERLYING}.partialclonefilter=${this.filter}`);
    }
    args.push(this.filter ? UNDERLYING : this.options.url, ...new Set(wanted.map((w) => w.name)));
    await runGit(this.gitCtx(), [...config, ...args], { inheritStderr: true });
    // A new clone of a repository migrated from git-lfs still has commits naming filter=lfs: where
    // git-lfs is not set up, gitml serves them (it reads git-lfs pointers). git-lfs's own config wins.
    if (this.cloning && !(await this.isBare())) await installLfsCompat(this.gitCtx(), { kind: 'local' }, false).catch(() => undefined);

    // Large files' bytes ahead of what git does next (gitml.fetch, docs/config.md).
    if (skipSmudge(this.options.env)) return;
    const gitml = await this.gitml();
    const mode = fetchModeOf(gitml.settings);
    let commits: string[];
    if (mode === 'none') return;
    if (mode === 'checkout') {
      // A clone's checkout downloads exactly what it writes (the branch it checks out, the sparse
      // cone; nothing for --no-checkout or --mirror), in parallel: nothing to do ahead of it. A fetch
      // brings the upstream of the current branch, which a pull merges next.
      if (this.cloning || (await this.isBare())) return;
      const upstream = await this.upstreamOfCurrentBranch();
      commits = wanted.filter((w) => w.name === upstream).map((w) => w.sha);
    } else {
      commits = wanted.filter((w) => w.name.startsWith('refs/heads/') || w.name.startsWith('refs/tags/') || w.name === 'HEAD').map((w) => w.sha);
    }
    if (commits.length === 0) return;
    try {
      const result = await fetchObjectsForCommits(gitml, commits, {
        mode: mode === 'all' ? 'all' : 'tips',
        progress: { sink: this.options.stderr, enabled: this.progress },
      });
      for (const f of result.report?.failed ?? []) this.say(`gitml: warning: ${f.error.message}`);
    } catch (e) {
      // The git objects are in; checkout will name each file it cannot get. Say why here once.
      this.say(`gitml: warning: could not prefetch large files: ${describeError(e)}`);
    }
  }

  private async isBare(): Promise<boolean> {
    const r = await runGit(this.gitCtx(), ['rev-parse', '--is-bare-repository'], { okCodes: [128] });
    return r.stdout.toString('utf8').trim() !== 'false';
  }

  /** `refs/heads/<b>` on this remote that the current branch tracks, or null. */
  private async upstreamOfCurrentBranch(): Promise<string | null> {
    const head = await runGit(this.gitCtx(), ['symbolic-ref', '-q', '--short', 'HEAD'], { okCodes: [1, 128] });
    const branch = head.stdout.toString('utf8').trim();
    if (head.code !== 0 || !branch) return null;
    const remote = await runGit(this.gitCtx(), ['config', '--get', `branch.${branch}.remote`], { okCodes: [1] });
    if (remote.stdout.toString('utf8').trim() !== this.options.remoteName) return null;
    const merge = await runGit(this.gitCtx(), ['config', '--get', `branch.${branch}.merge`], { okCodes: [1] });
    return merge.stdout.toString('utf8').trim() || null;
  }

  private async push(batch: string[]): Promise<string> {
    const specs: PushSpec[] = [];
    const replies = new Map<string, string>();
    for (const line of batch) {
      const spec = parsePushSpec(line.slice('push '.length));
      if (!spec) throw new GitmlError('E_PROTOCOL', `remote helper: cannot parse ${JSON.stringify(line)}`);
      specs.push(spec);
    }
    const gitml = await this.gitml();
    const updates: RefUpdate[] = [];
    for (const spec of specs) {
      const sha = spec.src ? await this.resolveLocal(spec.src) : null;
      if (spec.src && !sha) {
        replies.set(spec.dst, `error ${spec.dst} gitml: cannot resolve ${spec.src}`);
        continue;
      }
      updates.push({ dst: spec.dst, sha });
    }
    const remoteRefs = this.remoteRefs ?? (await this.lsRemote());
    const started = Date.now();
    const objects = await pushObjectsForRefs(gitml, updates, {
      remoteHas: remoteRefs.map((r) => r.sha),
      progress: { sink: this.options.stderr, enabled: this.progress },
      dryRun: this.dryRun,
      repoUrl: this.options.url,
      gitPushFollows: true,
    });
    try {
      for (const [dst, why] of objects.blocked) replies.set(dst, `error ${dst} ${oneLine(why)}`);
      if (objects.blocked.size > 0) {
        for (const why of new Set(objects.blocked.values())) this.say(why);
      }
      const summary = summarizeUpload(objects, (Date.now() - started) / 1000);
      if (summary && this.verbosity > 0 && !this.dryRun) this.say(summary);

      let go = specs.filter((s) => !replies.has(s.dst));
      if (this.atomic && replies.size > 0) {
        for (const s of go) replies.set(s.dst, `error ${s.dst} atomic push failed: another ref could not be pushed`);
        go = [];
      }
      if (go.length > 0) {
        for (const [dst, reply] of await this.gitPush(go)) replies.set(dst, reply);
      }
    } finally {
      // The refs have moved (or will not): gc may run again.
      await objects.release();
    }
    return specs.map((s) => `${replies.get(s.dst) ?? `error ${s.dst} gitml: no status from git push`}\n`).join('') + '\n';
  }

  /** Moves the refs with the real git, and reads each ref's fate from --porcelain. */
  private async gitPush(specs: PushSpec[]): Promise<Map<string, string>> {
    // --no-verify: git already ran the pre-push hook for this push; running it again would repeat it.
    // Never --quiet: it also silences the --porcelain lines this reads each ref's status from.
    const args = ['push', '--porcelain', '--no-verify', this.progress ? '--progress' : '--no-progress'];
    if (this.dryRun) args.push('--dry-run');
    if (this.atomic) args.push('--atomic');
    for (const o of this.pushOptions) args.push(`--push-option=${o}`);
    for (const lease of this.leases) args.push(`--force-with-lease=${lease}`);
    args.push(this.options.url, ...specs.map((s) => s.raw));
    const r = await runGit(this.gitCtx(), args, { okCodes: [1, 128] });
    const stderr = r.stderr.trim();
    if (stderr) this.say(stderr);
    const out = new Map<string, string>();
    for (const line of r.stdout.toString('utf8').split('\n')) {
      const status = parsePorcelainLine(line);
      if (!status) continue;
      out.set(status.dst, status.ok ? `ok ${status.dst}` : `error ${status.dst} ${oneLine(status.reason)}`);
    }
    for (const s of specs) {
      if (!out.has(s.dst)) out.set(s.dst, `error ${s.dst} ${oneLine(lastLine(stderr) || `git push exited with ${r.code}`)}`);
    }
    return out;
  }

  private async resolveLocal(src: string): Promise<string | null> {
    const r = await runGit(this.gitCtx(), ['rev-parse', '--verify', '--quiet', src], { okCodes: [1, 128] });
    return r.code === 0 ? r.stdout.toString('utf8').trim() : null;
  }

  private gitml(): Promise<Gitml> {
    this.gitmlPromise ??= openGitml({ cwd: this.options.cwd, env: this.options.env, log: this.options.log, workTree: false });
    return this.gitmlPromise;
  }

  private gitCtx() {
    return { cwd: this.options.cwd, env: this.options.env };
  }

  private say(message: string): void {
    this.options.stderr.write(message.endsWith('\n') ? message : `${message}\n`);
  }

  private send(text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.options.output.write(text, (err) => (err ? reject(err) : resolve()));
    });
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim());
  return lines[lines.length - 1] ?? '';
}

/** Option values may come C-quoted ("a\"b"). Pure. */
export function unquote(value: string): string {
  if (!value.startsWith('"') || !value.endsWith('"') || value.length < 2) return value;
  return value.slice(1, -1).replace(/\\(["\\])/g, '$1').replace(/\\n/g, '\n').replace(/\\t/g, '\t');
}
