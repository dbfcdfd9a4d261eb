import { randomBytes } from 'node:crypto';
import { PubSub, v1, type Subscription, type Topic, type SchemaEncoding } from '@google-cloud/pubsub';

/**
 * Helpers for tests against the Pub/Sub emulator (see global-setup.ts).
 *
 * Emulator behaviour seen with cloud-pubsub-emulator 0.8.20 (Cloud SDK 528):
 * - topic and subscription ids need 3+ characters (`t1` is INVALID_ARGUMENT);
 * - schema revision ids are 8 lowercase hex characters (`9ffa1716`);
 * - subscription filters are stored (and echoed by getMetadata) but NOT applied: every message is
 *   delivered. Filtering arrived in the emulator with Cloud SDK 555.0.0;
 * - dead-lettering works: after maxDeliveryAttempts the message goes to the dead-letter topic with
 *   extra attributes `CloudPubSubDeadLetterSourceDeliveryCount`, `...SourceSubscription`,
 *   `...SourceSubscriptionProject`, `...SourceTopicPublishTime`.
 */

export const DEFAULT_PROJECT_ID = 'test-project';

/** A client talking to the emulator at `host` (`127.0.0.1:PORT`), without credentials. */
export function createPubSub(host: string, projectId: string = DEFAULT_PROJECT_ID): PubSub {
  return new PubSub({ projectId, apiEndpoint: host, emulatorMode: true });
}

let nameCounter = 0;

/**
 * A resource id unique across runs against one emulator: `prefix-<time>-<n>-<random>`. Pub/Sub ids
 * must start with a letter, be 3–255 characters of `[A-Za-z0-9-_.~+%]` and not start with `goog`.
 */
export function uniqueName(prefix: string): string {
  let clean = prefix.replace(/[^A-Za-z0-9\-_.~+%]/g, '-');
  if (!/^[A-Za-z]/.test(clean) || /^goog/i.test(clean)) clean = `t-${clean}`;
  nameCounter += 1;
  return `${clean}-${Date.now().toString(36)}-${nameCounter}-${randomBytes(3).toString('hex')}`.slice(0, 255);
}

async function projectId(pubsub: PubSub): Promise<string> {
  const config = await pubsub.getClientConfig();
  const id = config.projectId ?? pubsub.projectId;
  if (id === undefined || id === '') throw new Error('the PubSub client has no project id: pass one to createPubSub');
  return id;
}

/** `projects/<project>/schemas/<name>` (a full path is returned as is). */
export async function schemaPath(pubsub: PubSub, name: string): Promise<string> {
  return name.startsWith('projects/') ? name : `projects/${await projectId(pubsub)}/schemas/${name}`;
}

export interface TopicAndSubscriptionOptions {
  topicName?: string;
  subscriptionName?: string;
  /** A Pub/Sub filter, e.g. `attributes.log_type = "access"` (ignored by emulators before SDK 555). */
  filter?: string;
  ackDeadlineSeconds?: number;
  /** Messages nacked `maxDeliveryAttempts` times go there. */
  deadLetterTopic?: Topic | string;
  /** 5–100; default 5. Only with `deadLetterTopic`. */
  maxDeliveryAttempts?: number;
  enableMessageOrdering?: boolean;
}

export async function createTopicAndSubscription(
  pubsub: PubSub,
  options: TopicAndSubscriptionOptions = {},
): Promise<{ topic: Topic; subscription: Subscription }> {
  const [topic] = await pubsub.createTopic(options.topicName ?? uniqueName('topic'));
  const deadLetterTopic = options.deadLetterTopic;
  const [subscription] = await topic.createSubscription(options.subscriptionName ?? uniqueName('sub'), {
    ...(options.filter !== undefined ? { filter: options.filter } : {}),
    ...(options.ackDeadlineSeconds !== undefined ? { ackDeadlineSeconds: options.ackDeadlineSeconds } : {}),
    ...(options.enableMessageOrdering !== undefined ? { enableMessageOrdering: options.enableMessageOrdering } : {}),
    ...(deadLetterTopic !== undefined
      ? {
          deadLetterPolicy: {
            deadLetterTopic: typeof deadLetterTopic === 'string' ? pubsub.topic(deadLetterTopic).name : deadLetterTopic.name,
            maxDeliveryAttempts: options.maxDeliveryAttempts ?? 5,
          },
        }
      : {}),
  });
  return { topic, subscription };
}

export interface SchemaRevision {
  /** `projects/<project>/schemas/<id>` — without `@revision`, also for a revision fetched by `name@rev`. */
  name: string;
  /** 8 hex characters on the emulator. */
  revisionId: string;
  definition: string;
}

function toRevision(schema: { name?: string | null; revisionId?: string | null; definition?: string | null }): SchemaRevision {
  if (!schema.name || !schema.revisionId || typeof schema.definition !== 'string') {
    throw new Error(`incomplete schema in a Pub/Sub answer: ${JSON.stringify(schema)}`);
  }
  return { name: schema.name, revisionId: schema.revisionId, definition: schema.definition };
}

function definitionText(definition: string | object): string {
  return typeof definition === 'string' ? definition : JSON.stringify(definition);
}

/** Creates an AVRO schema (its first revision). `name` is the schema id. */
export async function createAvroSchema(pubsub: PubSub, name: string, definition: string | object): Promise<SchemaRevision> {
  const client = await pubsub.getSchemaClient();
  const [schema] = await client.createSchema({
    parent: `projects/${await projectId(pubsub)}`,
    schemaId: name,
    schema: { type: 'AVRO', definition: definitionText(definition) },
  });
  return toRevision(schema);
}

/** Commits a new revision of an existing schema; returns it with its new revision id. */
export async function commitSchemaRevision(pubsub: PubSub, name: string, definition: string | object): Promise<SchemaRevision> {
  const client = await pubsub.getSchemaClient();
  const path = await schemaPath(pubsub, name);
  const [schema] = await client.commitSchema({ name: path, schema: { name: path, type: 'AVRO', definition: definitionText(definition) } });
  return toRevision(schema);
}

/** One revision (`getSchema({name: 'projects/p/schemas/s@rev'})`), or the newest without `revisionId`. */
export async function getSchemaRevision(pubsub: PubSub, name: string, revisionId?: string): Promise<SchemaRevision> {
  const client = await pubsub.getSchemaClient();
  const path = await schemaPath(pubsub, name);
  const [schema] = await client.getSchema({ name: revisionId === undefined ? path : `${path}@${revisionId}`, view: 'FULL' });
  return toRevision(schema);
}

/** A topic whose messages must match `schemaName` (revisions `firstRevisionId`..`lastRevisionId`). */
export async function createSchemaTopic(
  pubsub: PubSub,
  name: string,
  schemaName: string,
  encoding: SchemaEncoding,
  revisions: { firstRevisionId?: string; lastRevisionId?: string } = {},
): Promise<Topic> {
  const [topic] = await pubsub.createTopic({
    name,
    schemaSettings: {
      schema: await schemaPath(pubsub, schemaName),
      encoding,
      ...(revisions.firstRevisionId !== undefined ? { firstRevisionId: revisions.firstRevisionId } : {}),
      ...(revisions.lastRevisionId !== undefined ? { lastRevisionId: revisions.lastRevisionId } : {}),
    },
  });
  return topic;
}

export interface PulledMessage {
  ackId: string;
  messageId: string;
  data: Buffer;
  attributes: Record<string, string>;
  publishTime: Date | undefined;
  orderingKey: string;
  /** Set on subscriptions with a dead-letter policy (1 on the first delivery), 0 otherwise. */
  deliveryAttempt: number;
}

export interface PullAllOptions {
  /** Return as soon as this many messages have arrived. Default: no limit (wait `timeoutMs`). */
  max?: number;
  /** Give up after this long, returning what arrived. Default 5 000 ms. */
  timeoutMs?: number;
  /**
   * What to do with what was pulled: `ack` (default); `nack` (ack deadline 0: redelivered at once,
   * and counted as a delivery attempt for dead-lettering); `leave` (leased until its deadline).
   */
  settle?: 'ack' | 'nack' | 'leave';
}

const subscriberClients = new WeakMap<PubSub, Promise<v1.SubscriberClient>>();

/** The GAPIC subscriber for `pubsub`, built from `getClientConfig()` so it keeps the emulator's insecure channel. */
export function subscriberClient(pubsub: PubSub): Promise<v1.SubscriberClient> {
  let client = subscriberClients.get(pubsub);
  if (client === undefined) {
    client = pubsub.getClientConfig().then(
      // ClientConfig types `port` as string | number; the GAPIC options want a number.
      (config) => new v1.SubscriberClient({ ...config, port: config.port === undefined ? undefined : Number(config.port) }),
    );
    subscriberClients.set(pubsub, client);
  }
  return client;
}

/** Closes the clients made here for `pubsub`, then `pubsub` itself. */
export async function closePubSub(pubsub: PubSub): Promise<void> {
  const client = subscriberClients.get(pubsub);
  subscriberClients.delete(pubsub);
  if (client !== undefined) await (await client).close();
  await pubsub.close();
}

function toDate(timestamp: { seconds?: number | string | { toString(): string } | null; nanos?: number | null } | null | undefined): Date | undefined {
  if (!timestamp || timestamp.seconds === undefined || timestamp.seconds === null) return undefined;
  return new Date(Number(timestamp.seconds.toString()) * 1000 + Math.floor((timestamp.nanos ?? 0) / 1e6));
}

/**
 * Synchronous pull (the v1 SubscriberClient, not the streaming `Subscription`), e.g. to read a
 * dead-letter subscription; acks what it returns unless told otherwise. Uses `returnImmediately` — deprecated on the real service, honoured by
 * the emulator — and polls every 50 ms, so no pull is left hanging (and no message stays leased by a
 * cancelled call) when the time is up.
 */
export async function pullAll(subscription: Subscription, options: PullAllOptions = {}): Promise<PulledMessage[]> {
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const deadline = Date.now() + (options.timeoutMs ?? 5_000);
  const settle = options.settle ?? 'ack';
  const client = await subscriberClient(subscription.pubsub);
  const out: PulledMessage[] = [];
  while (out.length < max) {
    const [response] = await client.pull({
      subscription: subscription.name,
      maxMessages: Math.min(max - out.length, 1_000),
      returnImmediately: true,
    });
    const received = response.receivedMessages ?? [];
    const ackIds: string[] = [];
    for (const { ackId, message, deliveryAttempt } of received) {
      if (!ackId || !message) continue;
      ackIds.push(ackId);
      const data = message.data;
      out.push({
        ackId,
        messageId: message.messageId ?? '',
        data: typeof data === 'string' ? Buffer.from(data, 'base64') : Buffer.from(data ?? new Uint8Array()),
        attributes: { ...(message.attributes ?? {}) },
        publishTime: toDate(message.publishTime),
        orderingKey: message.orderingKey ?? '',
        deliveryAttempt: deliveryAttempt ?? 0,
      });
    }
    if (ackIds.length > 0) {
      if (settle === 'ack') await client.acknowledge({ subscription: subscription.name, ackIds });
      else if (settle === 'nack') await client.modifyAckDeadline({ subscription: subscription.name, ackIds, ackDeadlineSeconds: 0 });
    }
    if (out.length >= max || Date.now() >= deadline) break;
    if (received.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return out;
}
