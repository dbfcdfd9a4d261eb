import { describe, expect, it } from 'vitest';
import { WindowShare, type WindowMember } from '../../src/core/route/window-share.js';

function member(unsettledRows: number, mayBorrow = true): WindowMember {
  return { unsettledRows, share: 1000, mayBorrow };
}

describe('WindowShare', () => {
  it('a quick running route borrows what the others leave; never less than its share', () => {
    const window = new WindowShare(2000);
    const busy = member(0);
    const idle = member(0);
    window.join(busy);
    window.join(idle);
    expect(window.limitFor(busy)).toBe(2000);
    const working = member(800);
    const other = new WindowShare(2000);
    other.join(busy);
    other.join(working);
    expect(other.limitFor(busy)).toBe(1200);
    const full = member(1900);
    const third = new WindowShare(2000);
    third.join(busy);
    third.join(full);
    expect(third.limitFor(busy)).toBe(1000);
  });

  it('a paused or slow route keeps to its share, whatever the others leave', () => {
    const window = new WindowShare(2000);
    const paused = member(0, false);
    window.join(paused);
    window.join(member(0));
    expect(window.limitFor(paused)).toBe(1000);
  });

  it('a route alone on its subscription has its share', () => {
    const window = new WindowShare(2000);
    const alone = member(0);
    window.join(alone);
    expect(window.limitFor(alone)).toBe(1000);
  });
});
