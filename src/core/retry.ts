import { toTributaryError, type TributaryError } from '../errors.js';
import { actionFor } from './failure-policy.js';
import type { Clock, Random } from './ports.js';

export interface BackoffPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
}

export interface RetryPolicy extends BackoffPolicy {
  maxAttempts: number;
}

/**
 * Exponential backoff with full jitter: uniform in [0, min(max, initial * 2^(attempt-1))].
 * Full jitter spreads replicas that failed together, so they do not retry in lockstep into a quota.
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: Random): number {
  return Math.floor(random() * backoffCap(policy, attempt));
}

/** The upper bound of the backoff before retry number `attempt`. */
export function backoffCap(policy: BackoffPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, Math.min(attempt - 1, 52)));
}

/** The longest a message can spend in retries: the sum of the caps of every backoff. */
export function worstCaseRetryMs(policy: BackoffPolicy, maxAttempts: number, perAttemptTimeoutMs: number): number {
  let total = 0;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    total += perAttemptTimeoutMs;
    if (attempt < maxAttempts) total += backoffCap(policy, attempt);
  }
  return total;
}

export interface RetryOptions {
  policy: RetryPolicy;
  clock: Clock;
  random: Random;
  /** Aborting ends the wait at once; the last error is thrown. */
  signal?: AbortSignal | undefined;
  /** Called before each wait, with the error that caused it: metrics and logs. */
  onRetry?: (error: TributaryError, attempt: number) => void;
  /**
   * The wait before the next attempt, when the caller knows better than the backoff (a paced route
   * waits for its turn instead). Defaults to full-jitter backoff.
   */
  delayMs?: (error: TributaryError, attempt: number) => number;
}

/**
 * The one retry loop: runs `operation` until it succeeds, fails with an error the failure policy
 * does not retry, the attempts run out, or the signal aborts. Throws the last error as a
 * TributaryError; the caller settles its messages from that error's code.
 */
export async function retry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { policy, clock, random, signal } = options;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (err) {
      const error = toTributaryError(err);
      if (actionFor(error) !== 'retry' || attempt >= policy.maxAttempts || signal?.aborted) throw error;
      options.onRetry?.(error, attempt);
      const delay = options.delayMs ? options.delayMs(error, attempt) : backoffDelay(policy, attempt, random);
      if (delay > 0) await clock.sleep(delay, signal);
      if (signal?.aborted) throw error;
    }
  }
}
