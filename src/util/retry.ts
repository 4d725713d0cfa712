import { setTimeout as sleep } from 'node:timers/promises';
import { GitmlError } from '../errors';

export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  /** First delay; doubles each time up to maxDelayMs, with full jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 8, baseDelayMs: 250, maxDelayMs: 10_000 };

/** Delay before attempt `attempt` (1-based retry count): exponential with full jitter. Pure. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export function isRetryable(e: unknown): boolean {
  return e instanceof GitmlError && e.retryable;
}

/**
 * Runs `fn` until it succeeds, fails with a non-retryable error, or runs out of attempts.
 * A retryable error may carry `retryAfterMs` (from a server's Retry-After), which is honoured.
 *
 * Written here rather than taken from p-retry: the CommonJS release (v4) ignores Retry-After and our
 * errors decide retryability themselves (GitmlError.retryable).
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      // An error may cap its own retries: a host nobody answers at is not worth eight tries.
      const limit = Math.min(policy.retries, (e as { retryLimit?: number }).retryLimit ?? Number.POSITIVE_INFINITY);
      if (attempt >= limit || !isRetryable(e)) throw e;
      const retryAfter = (e as { retryAfterMs?: number }).retryAfterMs;
      const delay = typeof retryAfter === 'number' && retryAfter > 0 ? Math.min(retryAfter, 60_000) : backoffDelay(policy, attempt + 1);
      onRetry?.(e, attempt + 1, delay);
      await sleep(delay);
    }
  }
}
