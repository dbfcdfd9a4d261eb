import { describe, expect, it } from 'vitest';
import { deadLetterMessage } from '../../src/core/dead-letter-attributes.js';
import { TributaryError } from '../../src/errors.js';
import {
  judge,
  readDeadLetterInfo,
  replayEnvelopeAttributes,
  republishMessage,
  unwrapped,
  type DeadLetterMessage,
} from '../../src/replay/dead-letter-message.js';
import { trackedEnvelope } from '../support/fake-envelopes.js';
import { buildReplayOptions, parseFilter, parseRate, parseTime, ReplayUsageError } from '../../src/replay/replay-options.js';
import { exitCodeOf, formatSummary, ReplayStats } from '../../src/replay/replay-stats.js';
import { formatProgressLine, progressFigures } from '../../src/replay/progress-reporter.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');

function deadLetter(attributes: Record<string, string>, data: Buffer = Buffer.from([0, 0, 0, 0, 7, 1, 2])): DeadLetterMessage {
  return { ackId: 'a1', messageId: 'dl-1', data, attributes, publishTimeMs: NOW, deliveryAttempt: 1 };
}

const BASE = {
  log_type: 'access',
  tributary_error_code: 'ROW_INVALID',
  tributary_error_message: 'field "status": NULL in a REQUIRED column',
  tributary_route: 'access',
  tributary_source_message_id: 'm-42',
  tributary_source_publish_time: '2026-03-01T10:00:00.000Z',
  tributary_source_subscription: 'projects/p/subscriptions/logs',
  tributary_failed_at: '2026-03-01T11:00:00.000Z',
  tributary_schema_name: 'projects/p/schemas/access',
  tributary_schema_revision_id: 'abcd1234',
  tributary_schema_encoding: 'BINARY',
};

describe('replay options', () => {
  it('parses filters, rates and times', () => {
    expect(parseFilter(['code=ROW_INVALID|UNKNOWN_FIELD,route=access', 'route=audit'])).toEqual({
      codes: new Set(['ROW_INVALID', 'UNKNOWN_FIELD']),
      routes: new Set(['access', 'audit']),
    });
    expect(() => parseFilter(['code=NOPE'])).toThrow(ReplayUsageError);
    expect(() => parseFilter(['colour=red'])).toThrow(/unknown key/);
    expect(parseRate('200/s')).toBe(200);
    expect(parseRate('120/m')).toBe(2);
    expect(() => parseRate('0/s')).toThrow(ReplayUsageError);
    expect(parseTime('--since', '6h', NOW)).toBe(NOW - 6 * 3_600_000);
    expect(parseTime('--since', '2026-01-02', NOW)).toBe(Date.parse('2026-01-02T00:00:00Z'));
    expect(() => parseTime('--since', 'yesterday', NOW)).toThrow(ReplayUsageError);
  });

  it('builds the options from flags or the replay argument, and refuses contradictions', () => {
    const options = buildReplayOptions({ 'replay-dlq': 'dl-sub', max: '10', rate: '5/s', filter: ['code=ROW_INVALID'], since: '1d' }, [], NOW);
    expect(options).toMatchObject({ subscription: 'dl-sub', max: 10, ratePerSecond: 5, maxReplays: 3, dryRun: false, idleTimeoutMs: 10_000 });
    expect(options.filter.sinceMs).toBe(NOW - 86_400_000);
    expect(buildReplayOptions({}, ['dl-sub'], NOW).subscription).toBe('dl-sub');
    expect(() => buildReplayOptions({}, [], NOW)).toThrow(/name the dead-letter subscription/);
    expect(() => buildReplayOptions({ 'replay-dlq': 'a' }, ['b'], NOW)).toThrow(/two dead-letter subscriptions/);
    expect(() => buildReplayOptions({ 'replay-dlq': 'a', 'dry-run': true, 'to-topic': 't' }, [], NOW)).toThrow(/publishes nothing/);
    expect(() => buildReplayOptions({ 'replay-dlq': 'a', since: '1h', until: '2h' }, [], NOW)).toThrow(/before --until/);
    expect(() => buildReplayOptions({ 'replay-dlq': 'a', 'max-replays': '0' }, [], NOW)).toThrow(ReplayUsageError);
  });
});

describe('dead-letter messages', () => {
  it('reads who the message was and judges it', () => {
    const info = readDeadLetterInfo(deadLetter(BASE));
    expect(info).toMatchObject({
      code: 'ROW_INVALID',
      route: 'access',
      sourceMessageId: 'm-42',
      replayCount: 0,
      failedAtMs: Date.parse(BASE.tributary_failed_at),
    });
    const none = { codes: new Set<string>(), routes: new Set<string>(), sinceMs: undefined, untilMs: undefined };
    expect(judge(info, none, 3)).toBe('replay');
    expect(judge(info, { ...none, codes: new Set(['UNROUTED']) }, 3)).toBe('filtered');
    expect(judge(info, { ...none, routes: new Set(['audit']) }, 3)).toBe('filtered');
    expect(judge(info, { ...none, sinceMs: Date.parse('2026-03-01T11:30:00Z') }, 3)).toBe('outside-window');
    expect(judge(info, { ...none, untilMs: Date.parse('2026-03-01T11:00:00Z') }, 3)).toBe('outside-window');
    expect(judge(readDeadLetterInfo(deadLetter({ ...BASE, tributary_replay_count: '3' })), none, 3)).toBe('over-max-replays');
    // A count that is not a number is never replayed in a loop.
    expect(judge(readDeadLetterInfo(deadLetter({ ...BASE, tributary_replay_count: 'x' })), none, 3)).toBe('over-max-replays');
  });

  it('gives the pipeline the original attributes with the schema reference back where Pub/Sub put it', () => {
    expect(replayEnvelopeAttributes(BASE, 1)).toEqual({
      log_type: 'access',
      googclient_schemaname: 'projects/p/schemas/access',
      googclient_schemarevisionid: 'abcd1234',
      googclient_schemaencoding: 'BINARY',
      tributary_replay_count: '1',
    });
  });

  it('republishes without goog* keys, with its first identity: the schema reference stays under tributary_schema_* unless the topic sets it', () => {
    const plain = republishMessage(deadLetter({ ...BASE, googclient_schemaname: 'x' }), 2, { schemaTopic: false });
    expect(plain.attributes).toEqual({
      log_type: 'access',
      tributary_replay_count: '2',
      tributary_source_message_id: 'm-42',
      tributary_source_publish_time: '2026-03-01T10:00:00.000Z',
      tributary_source_subscription: 'projects/p/subscriptions/logs',
      tributary_schema_name: 'projects/p/schemas/access',
      tributary_schema_revision_id: 'abcd1234',
      tributary_schema_encoding: 'BINARY',
    });
    const confluent = deadLetter({ log_type: 'access', tributary_schema_confluent_id: '7' });
    expect(republishMessage(confluent, 1, { schemaTopic: false }).data).toEqual(confluent.data);
    // A schema topic validates the bare Avro body and sets its own googclient_* attributes.
    const toSchemaTopic = republishMessage(confluent, 1, { schemaTopic: true });
    expect(toSchemaTopic.data).toEqual(Buffer.from([1, 2]));
    expect(toSchemaTopic.attributes).toMatchObject({ log_type: 'access', tributary_replay_count: '1', tributary_source_message_id: expect.any(String) });
    expect(Object.keys(toSchemaTopic.attributes).filter((k) => k.startsWith('tributary_schema_'))).toEqual([]);
  });
});

describe('wrapped dead letters', () => {
  it('replays a wrapped dead letter as the exact original: data, every attribute, and our keys', () => {
    const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, `v${i}`]));
    const envelope = trackedEnvelope(Buffer.from([0, 0, 0, 0, 7, 9, 9]), many);
    const out = deadLetterMessage(envelope, new TributaryError('ROW_INVALID', 'bad'), { route: 'access', attempts: 1, schemaKey: 'confluent:7' }, NOW);
    const message = unwrapped(deadLetter(out.attributes, out.data));
    expect(message.data.equals(envelope.data)).toBe(true);
    expect(message.attributes.tributary_wrapped).toBeUndefined();
    expect(readDeadLetterInfo(message)).toMatchObject({ code: 'ROW_INVALID', route: 'access', sourceMessageId: envelope.id });
    const replayed = replayEnvelopeAttributes(message.attributes, 1);
    expect(replayed).toEqual({ ...many, tributary_replay_count: '1' });
  });

  it('refuses a damaged wrapped dead letter instead of replaying garbage', () => {
    expect(() => unwrapped(deadLetter({ ...BASE, tributary_wrapped: '1' }, Buffer.from('not wrapped')))).toThrow(/header/);
  });
});

describe('replay stats', () => {
  it('summarises by route and code, and decides the exit code', () => {
    const stats = new ReplayStats('direct', 'projects/p/subscriptions/dl');
    const a = readDeadLetterInfo(deadLetter(BASE));
    const b = readDeadLetterInfo(deadLetter({ ...BASE, tributary_error_code: 'UNROUTED', tributary_route: 'audit' }));
    stats.take(a);
    stats.take(a);
    stats.take(b);
    stats.settle(a, { kind: 'replayed' });
    stats.settle(a, { kind: 'failed-again', code: 'BIGQUERY_ROW_INVALID' });
    stats.settle(b, { kind: 'replayed' });
    stats.notTaken('filtered');
    const summary = stats.summary(false, 1500);
    expect(summary.totals).toMatchObject({ taken: 3, replayed: 2, failedAgain: 1 });
    const text = formatSummary(summary);
    expect(text).toMatch(/access\s+ROW_INVALID\s+2\s+1\s+1\s+0\s+0/);
    expect(text).toContain('Failed again, dead-lettered with: BIGQUERY_ROW_INVALID 1.');
    expect(text).toContain('1 filtered');
    expect(exitCodeOf(summary)).toBe(1);
    expect(exitCodeOf(stats.summary(true, 1))).toBe(130);
    const clean = new ReplayStats('direct', 's');
    clean.take(a);
    clean.settle(a, { kind: 'replayed' });
    expect(exitCodeOf(clean.summary(false, 1))).toBe(0);
  });

  it('draws a progress line with a bar and an ETA when the total is known', () => {
    const stats = new ReplayStats('direct', 's');
    const a = readDeadLetterInfo(deadLetter(BASE));
    for (let i = 0; i < 50; i++) {
      stats.take(a);
      stats.settle(a, { kind: i < 48 ? 'replayed' : 'failed-again', code: 'ROW_INVALID' });
    }
    const line = formatProgressLine(progressFigures(stats, 100, 10), 100, 'inserted', 200);
    expect(line).toBe('[##########----------] 50/100 processed, 48 inserted, 2 failed again, 10.0/s, ETA 5s');
  });
});
