import { describe, expect, it } from 'vitest';
import { backoffDelay, retry, worstCaseRetryMs } from '../../src/core/retry.js';
import { TributaryError } from '../../src/errors.js';
import { ManualClock } from '../support/manual-clock.js';

const policy = { initialDelayMs: 250, maxDelayMs: 30_000 };

describe('backoffDelay', () => {
  it('is full jitter under an exponential cap', () => {
    expect(backoffDelay(policy, 1, () => 0.999999)).toBe(249);
    expect(backoffDelay(policy, 2, () => 0.999999)).toBe(499);
    expect(backoffDelay(policy, 5, () => 0.999999)).toBe(3999);
    expect(backoffDelay(policy, 1, () => 0)).toBe(0);
  });

  it('never exceeds maxDelayMs, even for huge attempt numbers', () => {
    for (const attempt of [8, 20, 60, 1000]) {
      expect(backoffDelay(policy, attempt, () => 0.999999)).toBeLessThan(30_000);
      expect(backoffDelay(policy, attempt, () => 0.999999)).toBeGreaterThanOrEqual(29_999);
    }
  });

  it('spreads delays over the whole interval', () => {
    const seen = Array.from({ length: 2000 }, () => backoffDelay(policy, 4, Math.random));
    expect(Math.min(...seen)).toBeLessThan(200);
    expect(Math.max(...seen)).toBeGreaterThan(1800);
    expect(Math.max(...seen)).toBeLessThan(2000);
  });

  it('bounds the worst-case time spent retrying', () => {
    // 6 attempts of at most 60 s each and backoffs capped at 250, 500, 1000, 2000, 4000 ms.
    expect(worstCaseRetryMs(policy, 6, 60_000)).toBe(6 * 60_000 + 7750);
  });
});

describe('retry (the one retry loop)', () => {
  const policy3 = { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 1000 };

  it('retries a transient error after full-jitter backoff on the injected clock, then returns', async () => {
    const clock = new ManualClock();
    const attempts: number[] = [];
    const result = retry(
      (attempt) => {
        attempts.push(clock.now());
        return attempt < 3 ? Promise.reject(new TributaryError('BIGQUERY_UNAVAILABLE', '503')) : Promise.resolve('done');
      },
      { policy: policy3, clock, random: () => 0.5 },
    );
    await clock.advance(1000);
    await expect(result).resolves.toBe('done');
    expect(attempts.map((t) => t - (attempts[0] ?? 0))).toEqual([0, 50, 150]);
  });

  it('does not retry what the failure policy does not: a data error is thrown at once', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const result = retry(
      () => {
        calls++;
        return Promise.reject(new TributaryError('DECODE_FAILED', 'bad'));
      },
      { policy: policy3, clock, random: () => 0.5 },
    );
    await expect(result).rejects.toMatchObject({ code: 'DECODE_FAILED' });
    expect(calls).toBe(1);
  });

  it('stops after maxAttempts with the last error; unknown errors are transient', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const retried: number[] = [];
    const result = retry(
      () => {
        calls++;
        return Promise.reject(new Error(`boom ${calls}`));
      },
      { policy: policy3, clock, random: () => 1 - Number.EPSILON, onRetry: (_e, attempt) => retried.push(attempt) },
    );
    result.catch(() => undefined);
    await clock.runAll();
    await expect(result).rejects.toMatchObject({ code: 'INTERNAL', message: 'boom 3' });
    expect(calls).toBe(3);
    expect(retried).toEqual([1, 2]);
  });

  it('an abort ends the wait at once and throws the last error', async () => {
    const clock = new ManualClock();
    const stop = new AbortController();
    let calls = 0;
    const result = retry(
      () => {
        calls++;
        return Promise.reject(new TributaryError('REGISTRY_UNAVAILABLE', 'down'));
      },
      { policy: { maxAttempts: 10, initialDelayMs: 10_000, maxDelayMs: 10_000 }, clock, random: () => 0.9, signal: stop.signal },
    );
    result.catch(() => undefined);
    await clock.advance(0);
    stop.abort();
    await expect(result).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
    expect(calls).toBe(1);
  });
});
