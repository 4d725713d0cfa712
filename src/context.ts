import type { Logger } from './log';
import { ObjectCache } from './cache';
import { boolOf, cacheRootOf, concurrencyOf, loadSettings, retriesOf, storeLocationOf, timeoutMsOf, type Settings } from './config';
import { ObjectStore } from './objects/object-store';
import type { ProgressSink } from './progress';
import type { TransferOptions } from './transfer/transfer';
import { DEFAULT_RETRY, type RetryPolicy } from './util/retry';
import { GitmlError } from './errors';
import { openRepo, type Repo } from './git/repo';
import { openStore } from './store/open';
import type { Store } from './store/store';

/**
 * Everything one gitml operation needs, resolved once: the repository, its settings, the cache and
 * (lazily, because many operations never touch it) the store. Passed explicitly; there is no global.
 */
export class Gitml {
  private storePromise: Promise<Store> | null = null;
  private objectsPromise: Promise<ObjectStore> | null = null;

  constructor(
    readonly repo: Repo,
    readonly settings: Settings,
    readonly cache: ObjectCache,
    readonly log: Logger,
    readonly env: NodeJS.ProcessEnv,
    readonly cwd: string,
  ) {}

  get concurrency(): number {
    return concurrencyOf(this.settings);
  }

  get retry(): RetryPolicy {
    return { ...DEFAULT_RETRY, retries: retriesOf(this.settings) };
  }

  /** The store the settings name; E_STORE_UNCONFIGURED with what to do when none does. */
  store(): Promise<Store> {
    this.storePromise ??= Promise.resolve().then(() => {
      const location = storeLocationOf(this.settings);
      if (!location) throw noStoreError();
      const store = openStore(location, { settings: this.settings, env: this.env });
      this.log.debug({ store: store.url, source: location.source }, 'store resolved');
      return store;
    });
    return this.storePromise;
  }

  /** The store as gitml's objects live in it (src/objects/): what every transfer talks to. */
  objects(): Promise<ObjectStore> {
    this.objectsPromise ??= this.store().then(
      (store) =>
        new ObjectStore(store, {
          retry: this.retry,
          timeoutMs: timeoutMsOf(this.settings),
          log: this.log,
          chunking: boolOf(this.settings, 'gitml.chunking', true),
          cacheRoot: this.cache.root,
          rangesInFlight: this.concurrency,
        }),
    );
    return this.objectsPromise;
  }

  /** How transfers run for this repository: its cache, its store, its concurrency. */
  async transferOptions(progress?: { sink: ProgressSink; enabled: boolean }): Promise<TransferOptions> {
    return { cache: this.cache, objects: await this.objects(), concurrency: this.concurrency, log: this.log, progress };
  }

  /** The same repository and cache with settings read as of another commit's .gitmlconfig. */
  async atTreeish(treeish: string): Promise<Gitml> {
    const settings = await loadSettings(this.repo, { env: this.env, cwd: this.cwd, treeish });
    return new Gitml(this.repo, settings, this.cache, this.log, this.env, this.cwd);
  }

  async close(): Promise<void> {
    if (this.storePromise) await (await this.storePromise.catch(() => null))?.close();
  }
}

export interface OpenOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  log: Logger;
  treeish?: string;
  /** False in the remote helper (see openRepo). */
  workTree?: boolean;
}

export async function openGitml(options: OpenOptions): Promise<Gitml> {
  const repo = await openRepo(options.cwd, options.env, { workTree: options.workTree });
  const settings = await loadSettings(repo, { env: options.env, cwd: options.cwd, treeish: options.treeish });
  const cacheRoot = cacheRootOf(repo, settings, options.env);
  const cache = new ObjectCache(cacheRoot.path, { fsync: boolOf(settings, 'gitml.fsync', false) });
  return new Gitml(repo, settings, cache, options.log, options.env, options.cwd);
}

export function noStoreError(): GitmlError {
  return new GitmlError('E_STORE_UNCONFIGURED', 'no gitml store is configured for this repository', {
    hint:
      'Name one for everyone with `git config -f .gitmlconfig gitml.store <url>` (then commit .gitmlconfig), ' +
      'for this clone only with `git config gitml.store <url>`, or for one command with GITML_STORE=<url>.',
  });
}
