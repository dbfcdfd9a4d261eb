import { describe, expect, it } from 'vitest';
import { Batcher } from '../../src/core/route/batcher.js';
import { ManualClock } from '../support/manual-clock.js';

function setup(limits = { maxRows: 3, maxBytes: 100, maxDelayMs: 1000 }) {
  const clock = new ManualClock();
  const batches: Array<{ items: number[]; bytes: number }> = [];
  const batcher = new Batcher<number>(
    limits,
    clock,
    (n) => n,
    (items, bytes) => batches.push({ items, bytes }),
  );
  return { clock, batches, batcher };
}

describe('Batcher', () => {
  it('cuts at maxRows', () => {
    const { batcher, batches } = setup();
    for (const n of [1, 2, 3, 4]) batcher.add(n);
    expect(batches).toEqual([{ items: [1, 2, 3], bytes: 6 }]);
    expect(batcher.size).toBe(1);
  });

  it('never lets a batch exceed maxBytes: a row that would overflow starts the next batch', () => {
    const { batcher, batches } = setup({ maxRows: 100, maxBytes: 100, maxDelayMs: 1000 });
    for (const n of [40, 40, 30, 90, 10]) batcher.add(n);
    expect(batches).toEqual([
      { items: [40, 40], bytes: 80 },
      { items: [30], bytes: 30 },
      { items: [90, 10], bytes: 100 },
    ]);
  });

  it('a row larger than maxBytes alone goes alone', () => {
    const { batcher, batches } = setup();
    batcher.add(5);
    batcher.add(500);
    expect(batches).toEqual([
      { items: [5], bytes: 5 },
      { items: [500], bytes: 500 },
    ]);
  });

  it('cuts on age, counted from the first row of the batch', async () => {
    const { batcher, batches, clock } = setup();
    batcher.add(1);
    await clock.advance(600);
    batcher.add(2);
    await clock.advance(399);
    expect(batches).toEqual([]);
    await clock.advance(1);
    expect(batches).toEqual([{ items: [1, 2], bytes: 3 }]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a batch cut by size cancels its age timer; takeAll hands nothing on', async () => {
    const { batcher, batches, clock } = setup();
    for (const n of [1, 2, 3]) batcher.add(n);
    expect(clock.pendingTimers).toBe(0);
    batcher.add(4);
    expect(batcher.takeAll()).toEqual([4]);
    await clock.advance(5000);
    expect(batches).toHaveLength(1);
  });
});
