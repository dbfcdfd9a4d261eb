import { describe, expect, it } from 'vitest';
import { fanOutEnvelope } from '../../src/core/message-fan-out.js';
import { trackedEnvelope } from '../support/fake-envelopes.js';

describe('fanOutEnvelope', () => {
  it('keeps a single-record message as it is', () => {
    const e = trackedEnvelope(Buffer.from('x'), {}, 'm1');
    expect(fanOutEnvelope(e, 1)).toEqual([e]);
  });

  it('gives each row the id <messageId>:<n> and the whole message', () => {
    const e = trackedEnvelope(Buffer.from('file'), { log_type: 'a' }, 'm1');
    const rows = fanOutEnvelope(e, 3);
    expect(rows.map((r) => r.id)).toEqual(['m1:0', 'm1:1', 'm1:2']);
    for (const r of rows) {
      expect(r.data).toBe(e.data);
      expect(r.attributes).toBe(e.attributes);
    }
  });

  it('acks the message once, when the last row is acked, whatever the order and repeats', () => {
    const e = trackedEnvelope(Buffer.alloc(0), {}, 'm1');
    const [a, b, c] = fanOutEnvelope(e, 3);
    c!.ack();
    a!.ack();
    a!.ack(); // a row settled twice counts once
    expect(e.settleCount).toBe(0);
    b!.ack();
    expect(e.settledAs).toBe('ack');
    expect(e.settleCount).toBe(1);
  });

  it('nacks the message at the first nacked row, and nothing settles it again', () => {
    const e = trackedEnvelope(Buffer.alloc(0), {}, 'm1');
    const [a, b, c] = fanOutEnvelope(e, 3);
    a!.ack();
    b!.nack();
    expect(e.settledAs).toBe('nack');
    c!.ack();
    c!.nack();
    expect(e.settleCount).toBe(1);
  });
});
