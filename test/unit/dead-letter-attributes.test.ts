import { describe, expect, it } from 'vitest';
import { deadLetterAttributes, deadLetterMessage, MAX_MESSAGE_BYTES, truncateUtf8, unwrapDeadLetter } from '../../src/core/dead-letter-attributes.js';
import { TributaryError } from '../../src/errors.js';
import { trackedEnvelope } from '../support/fake-envelopes.js';

describe('truncateUtf8', () => {
  it('never cuts a character in half and stays within the byte limit', () => {
    const text = '€'.repeat(600) + '😀'.repeat(300);
    for (const limit of [1, 2, 3, 4, 5, 100, 1023, 1024]) {
      const out = truncateUtf8(text, limit);
      expect(Buffer.byteLength(out)).toBeLessThanOrEqual(limit);
      expect(Buffer.from(out, 'utf8').toString('utf8')).toBe(out);
      expect(out).not.toMatch(/\uFFFD/);
    }
    expect(truncateUtf8('short', 1024)).toBe('short');
  });
});

describe('deadLetterAttributes', () => {
  it('keeps the original attributes, moves the schema reference off goog* keys, adds the reason', () => {
    const envelope = trackedEnvelope(Buffer.from('x'), {
      log_type: 'access',
      googclient_schemaname: 'projects/p/schemas/logs',
      googclient_schemarevisionid: 'r1',
      googclient_schemaencoding: 'BINARY',
    });
    const error = new TributaryError('DECODE_FAILED', `bad ${'é'.repeat(2000)}`);
    const attrs = deadLetterAttributes(envelope, error, { route: 'access', attempts: 2, schemaKey: 'projects/p/schemas/logs@r1' }, Date.UTC(2026, 0, 2));
    expect(Object.keys(attrs).filter((k) => k.startsWith('goog'))).toEqual([]);
    expect(attrs).toMatchObject({
      log_type: 'access',
      tributary_error_code: 'DECODE_FAILED',
      tributary_route: 'access',
      tributary_source_subscription: envelope.subscription,
      tributary_source_topic: envelope.topic,
      tributary_source_message_id: envelope.id,
      tributary_attempts: '2',
      tributary_failed_at: '2026-01-02T00:00:00.000Z',
      tributary_schema_name: 'projects/p/schemas/logs',
      tributary_schema_revision_id: 'r1',
      tributary_schema_encoding: 'BINARY',
    });
    expect(attrs.tributary_source_publish_time).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(Buffer.byteLength(attrs.tributary_error_message ?? '')).toBeLessThanOrEqual(1024);
    for (const value of Object.values(attrs)) expect(Buffer.byteLength(value)).toBeLessThanOrEqual(1024);
  });

  it('records a Confluent id', () => {
    const attrs = deadLetterAttributes(
      trackedEnvelope(Buffer.alloc(5), { a: 'v' }),
      new TributaryError('UNROUTED', 'x'),
      { route: undefined, attempts: 1, schemaKey: 'confluent:42' },
      0,
    );
    expect(attrs.tributary_schema_confluent_id).toBe('42');
    expect(attrs.tributary_route).toBeUndefined();
  });
});

describe('deadLetterMessage at the edges of Pub/Sub limits', () => {
  const error = new TributaryError('DECODE_FAILED', `bad payload ${'x'.repeat(3000)}`);
  const context = { route: 'access', attempts: 1, schemaKey: 'confluent:7' };

  it('is the original bytes and attributes plus ours when they fit', () => {
    const envelope = trackedEnvelope(Buffer.from('payload'), { log_type: 'access' });
    const message = deadLetterMessage(envelope, error, context, 0);
    expect(message.data).toBe(envelope.data);
    expect(message.attributes.tributary_wrapped).toBeUndefined();
    expect(unwrapDeadLetter(message.data, message.attributes)).toEqual({ data: envelope.data, attributes: { log_type: 'access' } });
  });

  it('an original with 100 attributes of 1024-byte values: wrapped, within limits, nothing lost', () => {
    const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`key_${i}`, `${i}`.padEnd(1024, 'é').slice(0, 600)]));
    const envelope = trackedEnvelope(Buffer.from([0, 0, 0, 0, 7, 1, 2, 3]), many);
    const message = deadLetterMessage(envelope, error, context, 0);
    expect(Object.keys(message.attributes).length).toBeLessThanOrEqual(100);
    for (const value of Object.values(message.attributes)) expect(Buffer.byteLength(value)).toBeLessThanOrEqual(1024);
    expect(message.attributes).toMatchObject({ tributary_wrapped: '1', tributary_error_code: 'DECODE_FAILED', tributary_route: 'access' });
    const original = unwrapDeadLetter(message.data, message.attributes);
    expect(original.data.equals(envelope.data)).toBe(true);
    expect(original.attributes).toEqual(many);
  });

  it('an original near 10 MB: our error message gives way, the original stays whole', () => {
    const attributes = { log_type: 'access' };
    const data = Buffer.alloc(MAX_MESSAGE_BYTES - 600, 1);
    const message = deadLetterMessage(trackedEnvelope(data, attributes), error, context, 0);
    const size = message.data.length + Object.entries(message.attributes).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    expect(size).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    expect(message.data).toBe(data);
    expect(message.attributes.tributary_error_code).toBe('DECODE_FAILED');
    expect(message.attributes.log_type).toBe('access');
  });

  it('rejects a wrapped dead letter whose header is damaged instead of guessing', () => {
    const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, 'v']));
    const message = deadLetterMessage(trackedEnvelope(Buffer.from('x'), many), error, context, 0);
    expect(() => unwrapDeadLetter(message.data.subarray(0, 20), message.attributes)).toThrow(/truncated|header/);
    expect(() => unwrapDeadLetter(Buffer.from('plain'), message.attributes)).toThrow(/header/);
  });
});

describe('deadLetterAttributes of a replayed message', () => {
  it('keeps the replay count and the first identity, and replaces the stale reason', () => {
    // What the replay puts on an envelope: the original id and attributes, the schema reference as
    // first delivered, the new replay count, and the source keys of the previous dead letter.
    const envelope = trackedEnvelope(
      Buffer.from('x'),
      {
        log_type: 'access',
        googclient_schemaname: 'projects/p/schemas/logs',
        googclient_schemarevisionid: 'r1',
        tributary_replay_count: '2',
        tributary_error_code: 'UNKNOWN_FIELD',
        tributary_error_message: 'old reason',
        tributary_source_message_id: 'first-id',
        tributary_source_publish_time: '2026-01-01T00:00:00.000Z',
        tributary_source_subscription: 'projects/p/subscriptions/source',
        tributary_source_topic: 'projects/p/topics/source',
      },
      'dead-letter-message-id',
    );
    const attrs = deadLetterAttributes(envelope, new TributaryError('ROW_INVALID', 'new reason'), { route: 'access', attempts: 1, schemaKey: undefined }, 0);
    expect(attrs).toMatchObject({
      log_type: 'access',
      tributary_replay_count: '2',
      tributary_error_code: 'ROW_INVALID',
      tributary_error_message: 'new reason',
      tributary_source_message_id: 'first-id',
      tributary_source_publish_time: '2026-01-01T00:00:00.000Z',
      tributary_source_subscription: 'projects/p/subscriptions/source',
      tributary_source_topic: 'projects/p/topics/source',
      tributary_schema_name: 'projects/p/schemas/logs',
      tributary_schema_revision_id: 'r1',
    });
    expect(Object.keys(attrs).filter((k) => k.startsWith('goog'))).toEqual([]);
  });

  it('reads a schema reference kept under tributary_schema_* keys', () => {
    const envelope = trackedEnvelope(Buffer.from('x'), {
      tributary_schema_name: 'projects/p/schemas/logs',
      tributary_schema_revision_id: 'r2',
      tributary_schema_encoding: 'JSON',
    });
    const attrs = deadLetterAttributes(envelope, new TributaryError('DECODE_FAILED', 'x'), { route: undefined, attempts: 1, schemaKey: undefined }, 0);
    expect(attrs).toMatchObject({
      tributary_schema_name: 'projects/p/schemas/logs',
      tributary_schema_revision_id: 'r2',
      tributary_schema_encoding: 'JSON',
      tributary_source_message_id: envelope.id,
    });
    expect(attrs.tributary_replay_count).toBeUndefined();
  });
});
