import { redactText } from './url-secrets';

/**
 * Typed errors. Library code throws these; only entry points turn them into exit codes.
 *
 * Exit codes (docs/cli.md): 0 ok, 1 user error (bad input, bad usage), 2 environment or store error
 * (missing object, unreachable store, git failure, corrupt data).
 */
export type ErrorCode =
  | 'E_USAGE'
  | 'E_POINTER_INVALID'
  | 'E_NOT_A_REPO'
  | 'E_CONFIG'
  | 'E_STORE_URL'
  | 'E_STORE_UNCONFIGURED'
  | 'E_STORE_IO'
  | 'E_STORE_CONFLICT'
  | 'E_OBJECT_MISSING'
  | 'E_OBJECT_CORRUPT'
  | 'E_CACHE_IO'
  | 'E_CHANGED'
  | 'E_GIT'
  | 'E_PROTOCOL'
  | 'E_HOOK_EXISTS'
  | 'E_PUSH_INCOMPLETE'
  | 'E_UNSAFE_PATH'
  | 'E_IO'
  | 'E_UNTRUSTED_SETTING'
  | 'E_INTERNAL';

const USER_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'E_USAGE',
  'E_POINTER_INVALID',
  'E_NOT_A_REPO',
  'E_CONFIG',
  'E_STORE_URL',
  'E_HOOK_EXISTS',
  'E_UNSAFE_PATH',
  'E_UNTRUSTED_SETTING',
]);

export interface GitmlErrorOptions {
  /** What the person should do next: one actionable sentence. */
  hint?: string;
  cause?: unknown;
  /** A transient failure (throttling, a reset connection): trying again may succeed. */
  retryable?: boolean;
}

export class GitmlError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: GitmlErrorOptions = {}) {
    // Messages quote URLs and git's own output; a credential in one must not reach the screen or a log.
    super(redactText(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GitmlError';
    this.code = code;
    this.hint = options.hint === undefined ? undefined : redactText(options.hint);
    this.retryable = options.retryable ?? false;
  }

  get exitCode(): 1 | 2 {
    return USER_ERRORS.has(this.code) ? 1 : 2;
  }
}

export function isGitmlError(e: unknown, code?: ErrorCode): e is GitmlError {
  return e instanceof GitmlError && (code === undefined || e.code === code);
}

/** The message a person reads: what happened, then what to do. */
export function describeError(e: unknown): string {
  if (e instanceof GitmlError) {
    return e.hint ? `${e.message}\n  hint: ${e.hint}` : e.message;
  }
  if (e instanceof Error) return redactText(e.message);
  return redactText(String(e));
}

export function exitCodeOf(e: unknown): number {
  return e instanceof GitmlError ? e.exitCode : 2;
}

const SYSTEM_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EEXIST: 'it already exists',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
  EXDEV: 'it crosses file systems',
  EBUSY: 'the resource is busy',
  EIO: 'an input/output error of the device',
};

/**
 * An operating-system error (a path the person typed that cannot be written, a full disk) as a
 * GitmlError that names the path and the cause, instead of an "internal error". Anything else is
 * returned as it is.
 */
export function asUserFacing(e: unknown): unknown {
  if (e instanceof GitmlError) return e;
  const code = errnoCode(e);
  const meaning = code ? SYSTEM_ERRORS[code] : undefined;
  if (!code || !meaning) return e;
  const sys = e as { syscall?: string; path?: string; dest?: string };
  const where = sys.path ? ` ${sys.path}${sys.dest ? ` -> ${sys.dest}` : ''}` : '';
  const hint =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? 'Free space on that disk, or choose another location.'
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? 'Choose a location you may write to, or fix its permissions.'
        : 'Check the path and try again.';
  return new GitmlError('E_IO', `cannot ${sys.syscall ?? 'access'}${where}: ${meaning} (${code})`, { hint, cause: e });
}

/** Node system errors carry a string code (ENOENT, EACCES...). */
export function errnoCode(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

/** A failure of the local object cache, naming its disk and what to do. */
export function cacheIoError(message: string, cause: unknown): GitmlError {
  if (cause instanceof GitmlError) return cause;
  const code = errnoCode(cause);
  const hint =
    code === 'ENOSPC'
      ? 'The disk holding the gitml cache is full: free space, or point gitml.cachedir at a larger disk.'
      : code === 'EACCES' || code === 'EPERM'
        ? 'Check the permissions of the gitml cache directory (gitml.cachedir).'
        : 'Check that the gitml cache directory is writable (`gitml env` shows where it is).';
  return new GitmlError('E_CACHE_IO', `${message}: ${cause instanceof Error ? cause.message : String(cause)}`, { hint, cause });
}
