export interface BackoffPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
}

/**
 * Exponential backoff with full jitter: uniform in [0, min(max, initial * 2^(attempt-1))].
 * Full jitter spreads replicas that failed together, so they do not retry in lockstep into a quota.
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, Math.min(attempt - 1, 52)));
  return Math.floor(random() * exp);
}

/** The longest a message can spend in retries: the sum of the caps of every backoff. */
export function worstCaseRetryMs(policy: BackoffPolicy, maxAttempts: number, perAttemptTimeoutMs: number): number {
  let total = 0;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    total += perAttemptTimeoutMs;
    if (attempt < maxAttempts) total += Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (attempt - 1));
  }
  return total;
}
