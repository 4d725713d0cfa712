import { GitmlError } from '../errors';

/**
 * The one classifier of store failures. Each backend reads the facts out of its SDK's error (status,
 * code, message, Retry-After) and names its own settings in the hints; what a failure *means* is
 * decided here, the same way for every service:
 *   - throttling, 5xx, broken or timed-out connections: transient, retried with backoff;
 *   - a range the object does not have (416): the stored object is damaged, never retried;
 *   - missing credentials, refused access, a missing bucket or container: fix something first.
 */
export interface FailureFacts {
  /** HTTP status, when the service answered. */
  status?: number;
  /** The service's error code (NoSuchBucket, AuthenticationFailed, ...) or the SDK's error name. */
  code?: string;
  message: string;
  /** Seconds from a Retry-After header. */
  retryAfterSeconds?: number;
}

export interface BackendHints {
  /** Where credentials come from for this kind of store. */
  credentials: string;
  /** What to do when the bucket or container does not exist. */
  missingContainer: string;
  /** The settings that say where the service is (for network failures). */
  reach: string;
}

const NETWORK = /ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|EAI_AGAIN|ENOTFOUND|ECONNABORTED|EHOSTUNREACH|ENETUNREACH|UND_ERR|socket hang up|network|aborted|premature|terminated|timed? ?out|TimeoutError|AbortError/i;
const CREDENTIALS = /^(CredentialsProviderError|InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|InvalidToken|UnrecognizedClientException|AuthenticationFailed|AuthorizationFailure|AuthorizationPermissionMismatch|CredentialUnavailableError|InvalidAuthenticationInfo|NoAuthenticationInformation)$/;
const MISSING_CONTAINER = /^(NoSuchBucket|ContainerNotFound)$/;
const THROTTLED = /^(SlowDown|Throttling|ThrottlingException|ServerBusy|RequestLimitExceeded|TooManyRequests|OperationTimedOut|InternalError|ServiceUnavailable)$/;

/** A retryable error may carry how long the service asked us to wait, and how often to try. */
export type StoreFailure = GitmlError & { retryAfterMs?: number; retryLimit?: number };

const CANNOT_CONNECT = /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|getaddrinfo/i;

export function storeError(url: string, what: string, facts: FailureFacts, hints: BackendHints, cause?: unknown): StoreFailure {
  const { status, code = 'Error' } = facts;
  const reason = `${code}${status ? ` (HTTP ${status})` : ''}: ${facts.message.split('\n')[0]}`;
  let hint = `Check ${hints.reach} and that the store is reachable (\`gitml env\`).`;
  let retryable = false;
  let errorCode: 'E_STORE_IO' | 'E_OBJECT_CORRUPT' = 'E_STORE_IO';
  if (MISSING_CONTAINER.test(code)) {
    hint = hints.missingContainer;
  } else if (CREDENTIALS.test(code) || /credential/i.test(`${code} ${facts.message}`) || status === 401) {
    hint = hints.credentials;
  } else if (status === 403 || code === 'AccessDenied') {
    hint = `The store refused the credentials in use, or they may not do this. ${hints.credentials}`;
  } else if (status === 416 || code === 'InvalidRange') {
    errorCode = 'E_OBJECT_CORRUPT';
    hint = 'The stored object is shorter than gitml expects: it is damaged. Run `gitml fsck --store`, then `gitml push --repair` from a clone that has the file.';
  } else if (status === 429 || status === 408 || (status !== undefined && status >= 500) || THROTTLED.test(code)) {
    retryable = true;
    hint = 'The service is busy or failing; gitml retried with backoff. Try again later, or lower gitml.concurrency.';
  } else if (status === undefined && CANNOT_CONNECT.test(`${code} ${facts.message}`)) {
    // Nothing listens there, or the name does not resolve: two quick tries, then say so.
    retryable = true;
    hint = `gitml cannot connect to the store: nothing answers at the address it uses, or the host name is unknown. Check the network (VPN?) and ${hints.reach} (\`gitml env\` shows where it comes from).`;
  } else if (status === undefined && NETWORK.test(`${code} ${facts.message}`)) {
    retryable = true;
    hint = `The connection to the store failed or timed out; gitml retried with backoff. Check the network and ${hints.reach}.`;
  }
  const err: StoreFailure = new GitmlError(errorCode, `${what} in ${url}: ${reason}`, { hint, cause, retryable });
  if (retryable && status === undefined && CANNOT_CONNECT.test(`${code} ${facts.message}`)) err.retryLimit = 2;
  if (retryable && facts.retryAfterSeconds !== undefined && Number.isFinite(facts.retryAfterSeconds) && facts.retryAfterSeconds > 0) {
    err.retryAfterMs = facts.retryAfterSeconds * 1000;
  }
  return err;
}

/** Errors of a local or mounted file system (the directory store), by errno code. */
export function fileStoreError(url: string, root: string, what: string, cause: unknown): GitmlError {
  const code = (cause as { code?: string } | null)?.code;
  const message = cause instanceof Error ? cause.message : String(cause);
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new GitmlError('E_STORE_IO', `${what} in ${url}: the store's disk is full (${code})`, { hint: `Free space on the volume holding ${root}, or move the store.`, cause });
    case 'EROFS':
      return new GitmlError('E_STORE_IO', `${what} in ${url}: the store directory is on a read-only file system (EROFS)`, { hint: `Mount ${root} read-write to push; reading (clone, fetch) works as it is.`, cause });
    case 'EACCES':
    case 'EPERM':
      return new GitmlError('E_STORE_IO', `${what} in ${url}: permission denied (${code})`, { hint: `Check that you may write to ${root} (its tmp/ folder too).`, cause });
    case 'EISDIR':
      return new GitmlError('E_OBJECT_CORRUPT', `${what} in ${url}: the key is a directory, not an object`, { hint: 'The store is damaged: run `gitml fsck --store`, then `gitml push --repair`.', cause });
    case 'EAGAIN':
    case 'EBUSY':
    case 'ESTALE':
    case 'EINTR':
    case 'ETIMEDOUT':
    case 'EIO':
      return new GitmlError('E_STORE_IO', `${what} in ${url}: ${message}`, { hint: 'The store directory (a network mount?) failed for a moment; gitml retried.', cause, retryable: true });
    default:
      return new GitmlError('E_STORE_IO', `${what} in ${url}: ${message}`, { hint: 'Check that the store directory is mounted and reachable (`gitml env`).', cause });
  }
}
