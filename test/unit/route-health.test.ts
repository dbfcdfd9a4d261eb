import { describe, expect, it } from 'vitest';
import { TributaryError } from '../../src/errors.js';
import type { RouteStateName } from '../../src/core/observer.js';
import { RouteHealth, type ProbeResult } from '../../src/core/route/route-health.js';
import { ManualClock } from '../support/manual-clock.js';

function setup(results: ProbeResult[]) {
  const clock = new ManualClock();
  const probesAt: number[] = [];
  const states: RouteStateName[] = [];
  const health = new RouteHealth({ initialProbeDelayMs: 100, probeIntervalMs: 1000 }, clock, {
    probe: () => {
      probesAt.push(clock.now());
      return Promise.resolve(results.shift() ?? { ok: true });
    },
    changed: (state) => states.push(state),
  });
  return { clock, health, probesAt, states, t0: clock.now() };
}

const gone = new TributaryError('TABLE_NOT_FOUND', 'gone');
const denied = new TributaryError('ACCESS_DENIED', 'denied');

describe('RouteHealth', () => {
  it('probes with doubling waits up to the probe interval, then resumes on success', async () => {
    const { clock, health, probesAt, states, t0 } = setup([
      { ok: false, error: gone },
      { ok: false, error: gone },
      { ok: false, error: gone },
      { ok: false, error: gone },
      { ok: false, error: gone },
    ]);
    health.pause(gone);
    expect(health.sending).toBe(false);
    await clock.advance(10_000);
    expect(probesAt.slice(0, 7).map((t) => t - t0)).toEqual([100, 300, 700, 1500, 2500, 3500]);
    expect(health.state).toBe('running');
    expect(states).toEqual(['paused', 'running']);
  });

  it('keeps its backoff across a resume that is followed by another pause; a successful write resets it', async () => {
    const { clock, health, probesAt } = setup([{ ok: false, error: denied }, { ok: true }, { ok: false, error: denied }]);
    health.pause(denied);
    await clock.advance(300); // probes at 100 (fails) and 300 (ok): running
    expect(health.state).toBe('running');
    health.pause(denied); // the first write after the resume fails again
    const pausedAt = clock.now();
    await clock.advance(2000);
    // three failures so far: the next probe waits 400 ms, not 100 ms
    expect(probesAt[2]! - pausedAt).toBe(400);
    health.recovered();
    expect(health.failedProbes).toBe(0);
  });

  it('a probe that fails for a passing reason keeps the destination error that paused the route', async () => {
    const { clock, health } = setup([{ ok: false, error: new TributaryError('BIGQUERY_UNAVAILABLE', '503') }]);
    health.pause(gone);
    await clock.advance(100);
    expect(health.state).toBe('paused');
    expect(health.error?.code).toBe('TABLE_NOT_FOUND');
  });

  it('stops probing when draining', async () => {
    const { clock, health, probesAt } = setup([]);
    health.pause(gone);
    health.draining();
    await clock.advance(10_000);
    expect(probesAt).toEqual([]);
    expect(health.state).toBe('draining');
    health.pause(gone);
    expect(health.state).toBe('draining');
  });
});
