import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { GitmlError } from '../errors';
import type { Requests } from '../store/requests';
import { stripCredentials } from '../url-secrets';
import { bufferBody } from './chunked-upload';
import { LOCKS_PREFIX, parseKey, REPOS_PREFIX } from './layout';

/**
 * Who is writing to a store right now (docs/store.md, "Garbage collection and concurrent pushes").
 *
 * A push holds a shared lock while it uploads and until its refs have moved; gc holds an exclusive
 * one. Each side first writes its own lock, then lists the others: with a store whose listings see
 * every completed write (S3, Azure Blob and a local or NFS directory all do), of two that overlap at
 * least one sees the other, and gc never deletes while a push is on its way. Locks are refreshed
 * while they are held; one not refreshed for STALE_MS belongs to a process that died.
 */
export const STALE_MS = 15 * 60 * 1000;
const REFRESH_MS = 2 * 60 * 1000;

export interface LockInfo {
  kind: 'push' | 'gc';
  host: string;
  pid: number;
  started: string;
  refreshed: string;
  /** The repository pushing (no credentials). */
  repo?: string;
}

export interface HeldLock {
  key: string;
  release(): Promise<void>;
}

function describeLock(l: LockInfo): string {
  return `${l.kind} by pid ${l.pid} on ${l.host}${l.repo ? ` (${l.repo})` : ''}, started ${l.started}`;
}

/** Live locks other than `own`: read, parsed, and not stale. */
async function otherLocks(requests: Requests, own: string, now: number): Promise<LockInfo[]> {
  const out: LockInfo[] = [];
  for (const e of await requests.list(LOCKS_PREFIX)) {
    if (e.key === own || parseKey(e.key).kind !== 'lock') continue;
    const data = await requests.readAll(e.key, 64 * 1024, 'a lock').catch(() => null);
    if (!data) continue;
    try {
      const l = JSON.parse(data.toString('utf8')) as LockInfo;
      if (now - Date.parse(l.refreshed) < STALE_MS) out.push(l);
    } catch {
      // A lock being written right now, or garbage: neither blocks anyone.
    }
  }
  return out;
}

/** Takes a lock of `kind`, or fails naming who holds the conflicting one. */
export async function acquireLock(requests: Requests, kind: 'push' | 'gc', repo?: string): Promise<HeldLock> {
  const id = `${kind}-${randomBytes(8).toString('hex')}`;
  const key = `${LOCKS_PREFIX}${id}.json`;
  const started = new Date().toISOString();
  const write = () => {
    const info: LockInfo = { kind, host: os.hostname(), pid: process.pid, started, refreshed: new Date().toISOString(), ...(repo ? { repo: stripCredentials(repo) } : {}) };
    return requests.put(key, bufferBody(Buffer.from(JSON.stringify(info))), { overwrite: true });
  };
  await write();
  const others = await otherLocks(requests, key, Date.now()).catch(async (e) => {
    await requests.delete(key).catch(() => undefined);
    throw e;
  });
  const blocking = kind === 'gc' ? others : others.filter((l) => l.kind === 'gc');
  if (blocking.length > 0) {
    await requests.delete(key).catch(() => undefined);
    const who = blocking.map(describeLock).join('; ');
    throw new GitmlError('E_STORE_CONFLICT', kind === 'gc' ? `gitml gc cannot run now: ${requests.url} is in use (${who})` : `${requests.url} is being garbage-collected (${who}): the push waits for no one, so it stopped before uploading`, {
      hint:
        kind === 'gc'
          ? `Try again when it is done. A lock not refreshed for ${STALE_MS / 60000} minutes is ignored (its process died).`
          : 'Push again when gitml gc is done (it prints when it ends); nothing was changed.',
    });
  }
  const timer = setInterval(() => void write().catch(() => undefined), REFRESH_MS);
  timer.unref();
  let released = false;
  return {
    key,
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(timer);
      await requests.delete(key).catch(() => undefined);
    },
  };
}

/** A repository that uses the store, as its pushes record it (gc must consult every one). */
export interface RepoRecord {
  id: string;
  url: string;
  lastPush: string;
}

/** The store key a repository is recorded under: from its URL, without credentials. Pure. */
export function repoId(url: string): string {
  return createHash('sha256').update(stripCredentials(url).replace(/\/+$/, '').replace(/\.git$/, '')).digest('hex').slice(0, 32);
}

export async function recordRepository(requests: Requests, url: string): Promise<void> {
  const record: RepoRecord = { id: repoId(url), url: stripCredentials(url), lastPush: new Date().toISOString() };
  await requests.put(`${REPOS_PREFIX}${record.id}.json`, bufferBody(Buffer.from(JSON.stringify(record))), { overwrite: true });
}

export async function recordedRepositories(requests: Requests): Promise<RepoRecord[]> {
  const out: RepoRecord[] = [];
  for (const e of await requests.list(REPOS_PREFIX)) {
    const k = parseKey(e.key);
    if (k.kind !== 'repo') continue;
    const data = await requests.readAll(e.key, 64 * 1024, 'a repository record').catch(() => null);
    try {
      const r = data ? (JSON.parse(data.toString('utf8')) as RepoRecord) : null;
      out.push({ id: k.id, url: typeof r?.url === 'string' ? r.url : '(unreadable record)', lastPush: typeof r?.lastPush === 'string' ? r.lastPush : '' });
    } catch {
      out.push({ id: k.id, url: '(unreadable record)', lastPush: '' });
    }
  }
  return out;
}
