import { describe, expect, it } from 'vitest';
import { ConcurrencyController } from '../../src/core/route/concurrency-controller.js';
import { ManualClock } from '../support/manual-clock.js';

describe('ConcurrencyController (AIMD and pacing)', () => {
  it('halves on throttling down to one request, then paces at 20 ms, doubling to at most 5 s', async () => {
    const clock = new ManualClock();
    const c = new ConcurrencyController(8, clock);
    const limits: number[] = [];
    for (let i = 0; i < 3; i++) {
      await clock.advance(1);
      c.throttled(clock.now());
      limits.push(c.limit);
    }
    expect(limits).toEqual([4, 2, 1]);
    await clock.advance(1);
    c.throttled(clock.now());
    expect(c.pacingMs).toBe(20);
    for (let i = 0; i < 20; i++) {
      await clock.advance(1);
      c.throttled(clock.now());
    }
    expect(c.pacingMs).toBe(5000);
  });

  it('decreases once per round trip: rejections of requests sent before the last decrease do not count', async () => {
    const clock = new ManualClock();
    const c = new ConcurrencyController(8, clock);
    const sentAt = clock.now();
    await clock.advance(10);
    c.throttled(sentAt);
    c.throttled(sentAt);
    c.throttled(sentAt - 5);
    expect(c.limit).toBe(4);
  });

  it('spaces request starts by the pacing gap', async () => {
    const clock = new ManualClock();
    const c = new ConcurrencyController(1, clock);
    c.throttled(clock.now());
    await clock.advance(1);
    c.throttled(clock.now());
    expect(c.pacingMs).toBe(40);
    expect([c.reserveStart(), c.reserveStart(), c.reserveStart()]).toEqual([0, 40, 80]);
  });

  it('climbs back: the paced rate first, then one more request in flight per window of successes', async () => {
    const clock = new ManualClock();
    const c = new ConcurrencyController(4, clock);
    for (let i = 0; i < 3; i++) {
      await clock.advance(1);
      c.throttled(clock.now());
    }
    expect(c.limit).toBe(1);
    expect(c.pacingMs).toBe(20);
    c.succeeded();
    expect(c.pacingMs).toBe(0);
    let successes = 0;
    while (c.limit < 4) {
      c.succeeded();
      successes++;
    }
    // each success adds 1/c: 1 -> 2 takes one success, 2 -> 3.2 three, 3.2 -> 4 three
    expect(successes).toBe(7);
    c.succeeded();
    expect(c.limit).toBe(4);
  });
});
