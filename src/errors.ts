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
  | 'E_INTERNAL';

const USER_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'E_USAGE',
  'E_POINTER_INVALID',
  'E_NOT_A_REPO',
  'E_CONFIG',
  'E_STORE_URL',
  'E_HOOK_EXISTS',
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
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GitmlError';
    this.code = code;
    this.hint = options.hint;
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
  if (e instanceof Error) return e.message;
  return String(e);
}

export function exitCodeOf(e: unknown): number {
  return e instanceof GitmlError ? e.exitCode : 2;
}

/** Node system errors carry a string code (ENOENT, EACCES...). */
export function errnoCode(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}
