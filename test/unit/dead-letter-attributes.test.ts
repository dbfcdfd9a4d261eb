import { describe, expect, it } from 'vitest';
import { deadLetterAttributes, truncateUtf8 } from '../../src/core/dead-letter-attributes.js';
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

  it('records a Confluent id and never exceeds 100 attributes', () => {
    const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`a${i}`, 'v']));
    const attrs = deadLetterAttributes(trackedEnvelope(Buffer.alloc(5), many), new TributaryError('UNROUTED', 'x'), { route: undefined, attempts: 1, schemaKey: 'confluent:42' }, 0);
    expect(attrs.tributary_schema_confluent_id).toBe('42');
    expect(Object.keys(attrs).length).toBeLessThanOrEqual(100);
    expect(attrs.tributary_route).toBeUndefined();
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
    const envelope = trackedEnvelope(Buffer.from('x'), { tributary_schema_name: 'projects/p/schemas/logs', tributary_schema_revision_id: 'r2', tributary_schema_encoding: 'JSON' });
    const attrs = deadLetterAttributes(envelope, new TributaryError('DECODE_FAILED', 'x'), { route: undefined, attempts: 1, schemaKey: undefined }, 0);
    expect(attrs).toMatchObject({ tributary_schema_name: 'projects/p/schemas/logs', tributary_schema_revision_id: 'r2', tributary_schema_encoding: 'JSON', tributary_source_message_id: envelope.id });
    expect(attrs.tributary_replay_count).toBeUndefined();
  });
});
