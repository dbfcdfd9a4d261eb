import { describe, expect, it } from 'vitest';
import { backoffDelay, worstCaseRetryMs } from '../../src/core/retry.js';

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
