import { originalAttributes, REPLAY_COUNT_ATTRIBUTE, TRIBUTARY_ATTRIBUTE_PREFIX, unwrapDeadLetter, WRAPPED_ATTRIBUTE } from '../core/dead-letter-attributes.js';
import { CONFLUENT_HEADER_BYTES, CONFLUENT_MAGIC_BYTE, PUBSUB_SCHEMA_ATTRIBUTES, TRIBUTARY_SCHEMA_ATTRIBUTES } from '../core/schema-reference.js';
import type { ReplayFilter } from './replay-options.js';

/** One message pulled from the dead-letter subscription. */
export interface DeadLetterMessage {
  readonly ackId: string;
  /** The dead-letter message's own id (not the original one). */
  readonly messageId: string;
  readonly data: Buffer;
  readonly attributes: Readonly<Record<string, string>>;
  readonly publishTimeMs: number;
  readonly deliveryAttempt: number;
}

/** Where and why a message failed, and who it was, read from the dead-letter attributes. */
export interface DeadLetterInfo {
  code: string;
  route: string;
  /** The id the message had when first published; the dead letter's own id if it names none. */
  sourceMessageId: string;
  sourcePublishTimeMs: number;
  sourceSubscription: string | undefined;
  sourceTopic: string | undefined;
  failedAtMs: number | undefined;
  /** Replays so far; a value that is not a count reads as infinite, so it is never replayed in a loop. */
  replayCount: number;
}

/** Shown for a dead letter that names no route (it failed before routing) or no code. */
export const UNROUTED = 'unrouted';
export const UNKNOWN_CODE = 'UNKNOWN';

function parseInstant(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

export function readDeadLetterInfo(message: DeadLetterMessage): DeadLetterInfo {
  const a = message.attributes;
  const count = a[REPLAY_COUNT_ATTRIBUTE];
  return {
    code: a.tributary_error_code ?? UNKNOWN_CODE,
    route: a.tributary_route ?? UNROUTED,
    sourceMessageId: a.tributary_source_message_id ?? message.messageId,
    sourcePublishTimeMs: parseInstant(a.tributary_source_publish_time) ?? message.publishTimeMs,
    sourceSubscription: a.tributary_source_subscription,
    sourceTopic: a.tributary_source_topic,
    failedAtMs: parseInstant(a.tributary_failed_at),
    replayCount: count === undefined ? 0 : /^\d+$/.test(count) ? Number(count) : Number.POSITIVE_INFINITY,
  };
}

export type Verdict = 'replay' | 'filtered' | 'outside-window' | 'over-max-replays';

/** Whether this run takes a message; everything it does not take stays in the subscription. */
export function judge(info: DeadLetterInfo, filter: ReplayFilter, maxReplays: number): Verdict {
  if (filter.codes.size > 0 && !filter.codes.has(info.code)) return 'filtered';
  if (filter.routes.size > 0 && !filter.routes.has(info.route)) return 'filtered';
  if (filter.sinceMs !== undefined || filter.untilMs !== undefined) {
    const at = info.failedAtMs;
    if (at === undefined) return 'outside-window';
    if (filter.sinceMs !== undefined && at < filter.sinceMs) return 'outside-window';
    if (filter.untilMs !== undefined && at >= filter.untilMs) return 'outside-window';
  }
  if (info.replayCount >= maxReplays) return 'over-max-replays';
  return 'replay';
}

/**
 * A dead letter as if it had never been wrapped: when the original attributes did not fit next to
 * ours, they travel inside the data (`tributary_wrapped`); here they come back out, next to our
 * `tributary_*` keys, and the data is the original payload again. Throws on a damaged header.
 */
export function unwrapped(message: DeadLetterMessage): DeadLetterMessage {
  if (message.attributes[WRAPPED_ATTRIBUTE] === undefined) return message;
  const original = unwrapDeadLetter(message.data, message.attributes);
  const attributes: Record<string, string> = { ...original.attributes };
  for (const [key, value] of Object.entries(message.attributes))
    if (key.startsWith(TRIBUTARY_ATTRIBUTE_PREFIX) && key !== WRAPPED_ATTRIBUTE) attributes[key] = value;
  return { ...message, data: original.data, attributes };
}

/**
 * The attributes a direct replay hands the pipeline: the message as first delivered (the schema
 * reference back under the keys Pub/Sub set, so the metadata columns hold what the first attempt
 * would have written), plus the replay count this attempt is. Nothing here is ever published as
 * is: a new dead letter moves the schema reference under `tributary_schema_*` again.
 */
export function replayEnvelopeAttributes(attributes: Readonly<Record<string, string>>, replayCount: number): Record<string, string> {
  const out = originalAttributes(attributes);
  const name = attributes[TRIBUTARY_SCHEMA_ATTRIBUTES.name];
  const revision = attributes[TRIBUTARY_SCHEMA_ATTRIBUTES.revisionId];
  const encoding = attributes[TRIBUTARY_SCHEMA_ATTRIBUTES.encoding];
  if (name !== undefined) out[PUBSUB_SCHEMA_ATTRIBUTES.name] = name;
  if (revision !== undefined) out[PUBSUB_SCHEMA_ATTRIBUTES.revisionId] = revision;
  if (encoding !== undefined) out[PUBSUB_SCHEMA_ATTRIBUTES.encoding] = encoding;
  out[REPLAY_COUNT_ATTRIBUTE] = String(replayCount);
  return out;
}

/** What `--to-topic` needs to know about its target. */
export interface TargetTopic {
  /** The topic validates messages against a Pub/Sub schema (and sets `googclient_*` itself). */
  schemaTopic: boolean;
}

/**
 * The message to republish: the original bytes and attributes. A schema topic gets the bare
 * Avro body (a Confluent header would fail its validation) and sets the schema reference itself.
 * Any other topic keeps what a worker needs to decode it again: the Confluent header stays in the
 * payload, and a Pub/Sub schema reference stays under `tributary_schema_*` (the promise in docs/replay.md
 * for messages tributary republishes). The replay count always travels, so a message that fails
 * again is dead-lettered with it and the loop guard holds; so does its first identity
 * (`tributary_source_*`), so its next dead letter names the message this run took and the run
 * leaves it for the report instead of taking it again.
 */
export function republishMessage(message: DeadLetterMessage, replayCount: number, target: TargetTopic): { data: Buffer; attributes: Record<string, string> } {
  const a = message.attributes;
  const attributes = originalAttributes(a);
  attributes[REPLAY_COUNT_ATTRIBUTE] = String(replayCount);
  const first = readDeadLetterInfo(message);
  attributes.tributary_source_message_id = first.sourceMessageId;
  attributes.tributary_source_publish_time = new Date(first.sourcePublishTimeMs).toISOString();
  if (first.sourceSubscription !== undefined) attributes.tributary_source_subscription = first.sourceSubscription;
  if (first.sourceTopic !== undefined) attributes.tributary_source_topic = first.sourceTopic;
  let data = message.data;
  if (target.schemaTopic) {
    const confluentFramed =
      a[TRIBUTARY_SCHEMA_ATTRIBUTES.confluentId] !== undefined && data.length >= CONFLUENT_HEADER_BYTES && data[0] === CONFLUENT_MAGIC_BYTE;
    if (confluentFramed) data = data.subarray(CONFLUENT_HEADER_BYTES);
  } else {
    for (const key of [TRIBUTARY_SCHEMA_ATTRIBUTES.name, TRIBUTARY_SCHEMA_ATTRIBUTES.revisionId, TRIBUTARY_SCHEMA_ATTRIBUTES.encoding]) {
      const value = a[key];
      if (value !== undefined) attributes[key] = value;
    }
  }
  return { data, attributes };
}
