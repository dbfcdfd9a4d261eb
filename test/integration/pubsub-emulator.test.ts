import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Message, PubSub, Subscription } from '@google-cloud/pubsub';
import { createAvroType, type AvroSchema } from '../../src/core/avro-type.js';
import {
  closePubSub,
  commitSchemaRevision,
  createAvroSchema,
  createPubSub,
  createSchemaTopic,
  createTopicAndSubscription,
  getSchemaRevision,
  pullAll,
  uniqueName,
} from '../support/pubsub-fixtures.js';

/*
 * What the emulator (cloud-pubsub-emulator 0.8.20, Cloud SDK 528) was seen to do:
 *
 * - A message published to a topic with schemaSettings gets three attributes, e.g.
 *     googclient_schemaname:       'projects/test-project/schemas/log-event-<unique>'   (full path, no @revision)
 *     googclient_schemarevisionid: '9ffa1716'   (the revision the body matched: 8 lowercase hex chars)
 *     googclient_schemaencoding:   'BINARY' or 'JSON'
 * - Revision ids are 8 lowercase hex characters, random (not ordered). createSchema's answer carries the
 *   first one; commitSchema's the new one. getSchema({name: 'projects/p/schemas/s@<rev>'}) answers
 *   that revision's definition, byte for byte as sent, with `name` WITHOUT the `@<rev>` suffix.
 * - With two revisions accepted, each binary body is tagged with the revision it fully decodes with
 *   (a v2 body, which a v1 reader would read with bytes left over, is tagged v2).
 * - A body that matches no accepted revision is refused at publish: INVALID_ARGUMENT (code 3),
 *   "Could not parse message".
 * - JSON encoding is Avro's JSON encoding, strictly: a union value must be wrapped
 *   (`{"long": 5}`; a bare `5` is refused), and a field may not be left out even with a default.
 *   The body is delivered verbatim (whitespace kept), not re-encoded.
 * - Subscription filters are stored and echoed back, but NOT applied: every message is delivered
 *   (the emulator gained filtering in Cloud SDK 555.0.0). Filtering is therefore not tested here.
 * - Dead-lettering works, lazily: after maxDeliveryAttempts deliveries the message moves to the
 *   dead-letter topic on the NEXT pull of the source subscription (that pull answers nothing). The
 *   dead-lettered copy keeps its attributes, gains CloudPubSubDeadLetterSourceDeliveryCount ('5'),
 *   CloudPubSubDeadLetterSourceSubscription (the short id), CloudPubSubDeadLetterSourceSubscriptionProject
 *   and CloudPubSubDeadLetterSourceTopicPublishTime, and has deliveryAttempt 0 on the dead-letter
 *   subscription (which has no dead-letter policy of its own).
 */

const LOG_EVENT_V1: AvroSchema = {
  type: 'record',
  name: 'LogEvent',
  namespace: 'com.example.logs',
  fields: [
    { name: 'log_type', type: 'string' },
    { name: 'message', type: 'string' },
  ],
};

const LOG_EVENT_V2: AvroSchema = {
  type: 'record',
  name: 'LogEvent',
  namespace: 'com.example.logs',
  fields: [
    { name: 'log_type', type: 'string' },
    { name: 'message', type: 'string' },
    { name: 'status', type: ['null', 'int'], default: null },
  ],
};

let pubsub: PubSub;

beforeAll(() => {
  const host = inject('pubsubEmulatorHost');
  if (!host) throw new Error('no Pub/Sub emulator: run vitest with globalSetup test/support/global-setup.ts');
  pubsub = createPubSub(host);
});

afterAll(async () => {
  await closePubSub(pubsub);
});

function receive(subscription: Subscription, count: number, timeoutMs = 10_000): Promise<Message[]> {
  return new Promise((resolve, reject) => {
    const got: Message[] = [];
    const timer = setTimeout(() => {
      subscription.removeListener('message', onMessage);
      void subscription.close();
      reject(new Error(`received ${got.length} of ${count} messages in ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (message: Message): void => {
      message.ack();
      got.push(message);
      if (got.length === count) {
        clearTimeout(timer);
        subscription.removeListener('message', onMessage);
        subscription.close().then(() => resolve(got), reject);
      }
    };
    subscription.on('message', onMessage);
    subscription.once('error', reject);
  });
}

describe('Pub/Sub emulator', () => {
  it('delivers published messages with their attributes (streaming pull and synchronous pull)', async () => {
    const { topic, subscription } = await createTopicAndSubscription(pubsub);
    const ids = await Promise.all(
      ['one', 'two', 'three'].map((text) => topic.publishMessage({ data: Buffer.from(text), attributes: { log_type: 'access', n: text } })),
    );
    expect(new Set(ids).size).toBe(3);

    const messages = await receive(subscription, 3);
    expect(messages.map((m) => m.data.toString()).sort()).toEqual(['one', 'three', 'two']);
    for (const m of messages) expect(m.attributes).toEqual({ log_type: 'access', n: m.data.toString() });

    const { topic: topic2, subscription: subscription2 } = await createTopicAndSubscription(pubsub, { ackDeadlineSeconds: 30 });
    await topic2.publishMessage({ data: Buffer.from('pulled'), attributes: { a: 'b' } });
    const pulled = await pullAll(subscription2, { max: 1 });
    expect(pulled).toHaveLength(1);
    expect(pulled[0]?.data.toString()).toBe('pulled');
    expect(pulled[0]?.attributes).toEqual({ a: 'b' });
    expect(pulled[0]?.publishTime).toBeInstanceOf(Date);
    // Acked by pullAll: nothing comes back.
    expect(await pullAll(subscription2, { timeoutMs: 300 })).toEqual([]);
  });

  it('keeps a subscription filter (the emulator of this SDK stores filters but does not apply them)', async () => {
    const filter = 'attributes.log_type = "access"';
    const { subscription } = await createTopicAndSubscription(pubsub, { filter });
    const [metadata] = await subscription.getMetadata();
    expect(metadata.filter).toBe(filter);
  });

  it('tags Avro BINARY messages with the schema revision they match, on a topic accepting two revisions', async () => {
    const schemaId = uniqueName('log-event');
    const first = await createAvroSchema(pubsub, schemaId, LOG_EVENT_V1);
    const second = await commitSchemaRevision(pubsub, schemaId, LOG_EVENT_V2);
    const schemaName = `projects/test-project/schemas/${schemaId}`;
    expect(first.name).toBe(schemaName);
    expect(second.name).toBe(schemaName);
    expect(first.revisionId).toMatch(/^[0-9a-f]{8}$/);
    expect(second.revisionId).toMatch(/^[0-9a-f]{8}$/);
    expect(second.revisionId).not.toBe(first.revisionId);

    const topic = await createSchemaTopic(pubsub, uniqueName('schema-topic'), schemaId, 'BINARY', {
      firstRevisionId: first.revisionId,
      lastRevisionId: second.revisionId,
    });
    const [topicMetadata] = await topic.getMetadata();
    expect(topicMetadata.schemaSettings).toMatchObject({
      schema: schemaName,
      encoding: 'BINARY',
      firstRevisionId: first.revisionId,
      lastRevisionId: second.revisionId,
    });
    const [subscription] = await topic.createSubscription(uniqueName('schema-sub'));

    const v1 = createAvroType(LOG_EVENT_V1);
    const v2 = createAvroType(LOG_EVENT_V2);
    const v1Body = v1.toBuffer({ log_type: 'access', message: 'GET /' });
    const v2Body = v2.toBuffer({ log_type: 'access', message: 'GET /x', status: { int: 200 } });
    await topic.publishMessage({ data: v1Body, attributes: { n: '1' } });
    await topic.publishMessage({ data: v2Body, attributes: { n: '2' } });
    await expect(topic.publishMessage({ data: Buffer.from('not avro at all') })).rejects.toMatchObject({ code: 3 });

    const pulled = await pullAll(subscription, { max: 2 });
    const byN = new Map(pulled.map((m) => [m.attributes.n, m]));
    expect(byN.get('1')?.attributes).toEqual({
      n: '1',
      googclient_schemaname: schemaName,
      googclient_schemarevisionid: first.revisionId,
      googclient_schemaencoding: 'BINARY',
    });
    expect(byN.get('2')?.attributes).toEqual({
      n: '2',
      googclient_schemaname: schemaName,
      googclient_schemarevisionid: second.revisionId,
      googclient_schemaencoding: 'BINARY',
    });
    expect(byN.get('1')?.data.equals(v1Body)).toBe(true);
    expect(byN.get('2')?.data.equals(v2Body)).toBe(true);

    // The writer schema of each message is found from its attributes alone.
    for (const message of pulled) {
      const revision = await getSchemaRevision(pubsub, message.attributes.googclient_schemaname ?? '', message.attributes.googclient_schemarevisionid);
      expect(revision.name).toBe(schemaName);
      expect(revision.revisionId).toBe(message.attributes.googclient_schemarevisionid);
      const writer = createAvroType(JSON.parse(revision.definition) as AvroSchema);
      expect(writer.fromBuffer(message.data)).toMatchObject({ log_type: 'access' });
    }
    expect((await getSchemaRevision(pubsub, schemaName, first.revisionId)).definition).toBe(JSON.stringify(LOG_EVENT_V1));
    expect((await getSchemaRevision(pubsub, schemaName, second.revisionId)).definition).toBe(JSON.stringify(LOG_EVENT_V2));
    expect((await getSchemaRevision(pubsub, schemaName)).revisionId).toBe(second.revisionId);

    // A topic pinned to the second revision refuses a first-revision body.
    const pinned = await createSchemaTopic(pubsub, uniqueName('pinned-topic'), schemaId, 'BINARY', {
      firstRevisionId: second.revisionId,
      lastRevisionId: second.revisionId,
    });
    await expect(pinned.publishMessage({ data: v1Body })).rejects.toMatchObject({ code: 3 });
    await expect(pinned.publishMessage({ data: v2Body })).resolves.toMatch(/\S/);
  });

  it('passes Avro JSON-encoded messages through verbatim on a JSON schema topic', async () => {
    const schemaId = uniqueName('log-event-json');
    const created = await createAvroSchema(pubsub, schemaId, LOG_EVENT_V2);
    const topic = await createSchemaTopic(pubsub, uniqueName('json-topic'), schemaId, 'JSON');
    const [subscription] = await topic.createSubscription(uniqueName('json-sub'));

    const bodies = ['{"log_type":"access","message":"GET /","status":{"int":404}}', '{ "log_type": "audit", "message": "x", "status": null }'];
    for (const body of bodies) await topic.publishMessage({ data: Buffer.from(body) });
    // Avro JSON encoding is strict: unwrapped union values and missing fields are refused.
    await expect(topic.publishMessage({ data: Buffer.from('{"log_type":"a","message":"b","status":404}') })).rejects.toMatchObject({ code: 3 });
    await expect(topic.publishMessage({ data: Buffer.from('{"log_type":"a","message":"b"}') })).rejects.toMatchObject({ code: 3 });

    const pulled = await pullAll(subscription, { max: 2 });
    expect(pulled.map((m) => m.data.toString()).sort()).toEqual([...bodies].sort());
    for (const message of pulled) {
      expect(message.attributes).toEqual({
        googclient_schemaname: `projects/test-project/schemas/${schemaId}`,
        googclient_schemarevisionid: created.revisionId,
        googclient_schemaencoding: 'JSON',
      });
    }
  });

  it('dead-letters a message after maxDeliveryAttempts nacks', async () => {
    const { topic: deadLetterTopic, subscription: deadLetterSubscription } = await createTopicAndSubscription(pubsub);
    const { topic, subscription } = await createTopicAndSubscription(pubsub, { deadLetterTopic, maxDeliveryAttempts: 5, ackDeadlineSeconds: 10 });
    await topic.publishMessage({ data: Buffer.from('poison'), attributes: { log_type: 'access' } });

    const attempts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const [message] = await pullAll(subscription, { max: 1, settle: 'nack' });
      attempts.push(message?.deliveryAttempt ?? -1);
    }
    expect(attempts).toEqual([1, 2, 3, 4, 5]);
    // The emulator moves the message to the dead-letter topic when it would deliver it a 6th time,
    // i.e. on the next pull: without this pull it stays put.
    expect(await pullAll(subscription, { timeoutMs: 300 })).toEqual([]);

    const dead = await pullAll(deadLetterSubscription, { max: 1, timeoutMs: 10_000 });
    expect(dead).toHaveLength(1);
    expect(dead[0]?.data.toString()).toBe('poison');
    expect(dead[0]?.attributes).toMatchObject({
      log_type: 'access',
      CloudPubSubDeadLetterSourceDeliveryCount: '5',
      CloudPubSubDeadLetterSourceSubscription: subscription.name.split('/').pop(),
      CloudPubSubDeadLetterSourceSubscriptionProject: 'test-project',
    });
    expect(dead[0]?.deliveryAttempt).toBe(0);
  });
});
