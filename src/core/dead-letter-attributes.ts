import type { TributaryError } from '../errors.js';
import type { DeadLetterContext, Envelope } from './ports.js';
import { PUBSUB_SCHEMA_ATTRIBUTES, TRIBUTARY_SCHEMA_ATTRIBUTES } from './schema-reference.js';

/** Pub/Sub's limit on an attribute value, in bytes of UTF-8. */
export const MAX_ATTRIBUTE_VALUE_BYTES = 1024;
export const MAX_ATTRIBUTES = 100;

/**
 * How many times a message has been replayed from the dead-letter topic. It travels with the
 * message (on a replayed envelope, and on a message republished to its source topic) so that a
 * message that keeps failing cannot be replayed forever.
 */
export const REPLAY_COUNT_ATTRIBUTE = 'tributary_replay_count';

/** Keys tributary sets on the messages it publishes; never taken as part of the original message. */
export const TRIBUTARY_ATTRIBUTE_PREFIX = 'tributary_';

/** Cuts a string to at most `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(value: string, maxBytes: number): string {
  if (Buffer.byteLength(value) <= maxBytes) return value;
  const ellipsis = maxBytes >= 16 ? '…' : '';
  const budget = maxBytes - Buffer.byteLength(ellipsis);
  let bytes = 0;
  let end = 0;
  for (const char of value) {
    const size = Buffer.byteLength(char);
    if (bytes + size > budget) break;
    bytes += size;
    end += char.length;
  }
  return value.slice(0, end) + ellipsis;
}

/** Lone surrogates are not valid UTF-8; Pub/Sub would reject the attribute. */
function wellFormed(value: string): string {
  return value.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/**
 * The attributes of a dead-letter message: the original ones (without Google's reserved `goog*`
 * keys, whose schema reference moves under `tributary_schema_*`), plus why and where it failed.
 *
 * A replayed message that fails again keeps its first identity: `tributary_source_*` already on
 * the envelope win over the envelope's own id and subscription (which may be the dead-letter
 * message's), so the new dead letter still names the message as first published. Its replay count
 * is kept; every other `tributary_*` key of the envelope is stale and replaced.
 */
export function deadLetterAttributes(envelope: Envelope, error: TributaryError, context: DeadLetterContext, failedAtMs: number): Record<string, string> {
  const attrs = envelope.attributes;
  const ours: Record<string, string> = {
    tributary_error_code: error.code,
    tributary_error_message: truncateUtf8(wellFormed(error.message), MAX_ATTRIBUTE_VALUE_BYTES),
    tributary_source_subscription: attrs.tributary_source_subscription ?? envelope.subscription,
    tributary_source_message_id: attrs.tributary_source_message_id ?? envelope.id,
    tributary_source_publish_time: attrs.tributary_source_publish_time ?? new Date(envelope.publishTimeMs).toISOString(),
    tributary_attempts: String(context.attempts),
    tributary_failed_at: new Date(failedAtMs).toISOString(),
  };
  if (context.route) ours.tributary_route = context.route;
  const topic = attrs.tributary_source_topic ?? envelope.topic;
  if (topic) ours.tributary_source_topic = topic;
  const replayCount = attrs[REPLAY_COUNT_ATTRIBUTE];
  if (replayCount !== undefined) ours[REPLAY_COUNT_ATTRIBUTE] = replayCount;
  const name = attrs[PUBSUB_SCHEMA_ATTRIBUTES.name] ?? attrs[TRIBUTARY_SCHEMA_ATTRIBUTES.name];
  const revision = attrs[PUBSUB_SCHEMA_ATTRIBUTES.revisionId] ?? attrs[TRIBUTARY_SCHEMA_ATTRIBUTES.revisionId];
  const encoding = attrs[PUBSUB_SCHEMA_ATTRIBUTES.encoding] ?? attrs[TRIBUTARY_SCHEMA_ATTRIBUTES.encoding];
  if (name) ours[TRIBUTARY_SCHEMA_ATTRIBUTES.name] = name;
  if (revision) ours[TRIBUTARY_SCHEMA_ATTRIBUTES.revisionId] = revision;
  if (encoding) ours[TRIBUTARY_SCHEMA_ATTRIBUTES.encoding] = encoding;
  if (context.schemaKey?.startsWith('confluent:')) ours[TRIBUTARY_SCHEMA_ATTRIBUTES.confluentId] = context.schemaKey.slice('confluent:'.length);

  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith('goog') || key.startsWith(TRIBUTARY_ATTRIBUTE_PREFIX)) continue;
    result[key] = value;
  }
  return Object.assign(result, ours);
}

/**
 * Set on a dead letter whose original attributes travel inside its data (see `deadLetterMessage`).
 * Its value is the wrapping format's version.
 */
export const WRAPPED_ATTRIBUTE = 'tributary_wrapped';
const WRAP_MAGIC = Buffer.from('TRIBUTARY-DL\n', 'latin1');
/** Pub/Sub's limit on a publish request (10 MB); the attributes count towards it. */
export const MAX_MESSAGE_BYTES = 10_000_000;

export interface OutgoingMessage {
  data: Buffer;
  attributes: Record<string, string>;
}

function attributeBytes(attributes: Record<string, string>): number {
  let bytes = 0;
  for (const [key, value] of Object.entries(attributes)) bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  return bytes;
}

/**
 * The dead-letter message for an envelope: the original bytes with the original attributes plus
 * ours, within Pub/Sub's limits and without dropping anything of the original.
 * - Over the request size (an original within a kilobyte of 10 MB): our error message is
 *   shortened first; it is the only value of ours that is long.
 * - Over 100 attributes: the original attributes move into the data, after a header, and
 *   `tributary_wrapped` says so; `unwrapDeadLetter` gives back the exact original message.
 * An original so close to the limit that even our short keys do not fit fails to publish and is
 * nacked, counted as DEAD_LETTER_FAILED: loud, and still in its subscription.
 */
export function deadLetterMessage(envelope: Envelope, error: TributaryError, context: DeadLetterContext, failedAtMs: number): OutgoingMessage {
  const attributes = deadLetterAttributes(envelope, error, context, failedAtMs);
  const over = envelope.data.length + attributeBytes(attributes) - MAX_MESSAGE_BYTES;
  if (over > 0) {
    const message = attributes.tributary_error_message ?? '';
    attributes.tributary_error_message = truncateUtf8(message, Math.max(0, Buffer.byteLength(message) - over));
  }
  if (Object.keys(attributes).length <= MAX_ATTRIBUTES) return { data: envelope.data, attributes };
  const original: Record<string, string> = {};
  const ours: Record<string, string> = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (key.startsWith(TRIBUTARY_ATTRIBUTE_PREFIX)) ours[key] = value;
    else original[key] = value;
  }
  ours[WRAPPED_ATTRIBUTE] = '1';
  const header = Buffer.from(JSON.stringify(original), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(header.length);
  return { data: Buffer.concat([WRAP_MAGIC, length, header, envelope.data]), attributes: ours };
}

/** The message's own attributes, as its producer set them: every `tributary_*` key removed. */
export function originalAttributes(attributes: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(attributes)) {
    // goog* keys never reach a dead letter; dropping them again guards against a hand-made one.
    if (key.startsWith(TRIBUTARY_ATTRIBUTE_PREFIX) || key.startsWith('goog')) continue;
    out[key] = value;
  }
  return out;
}

/** The original data and attributes of a dead letter, wrapped or not (tributary_* keys removed). */
export function unwrapDeadLetter(data: Buffer, attributes: Readonly<Record<string, string>>): OutgoingMessage {
  const own = originalAttributes(attributes);
  if (attributes[WRAPPED_ATTRIBUTE] === undefined) return { data, attributes: own };
  const start = WRAP_MAGIC.length + 4;
  if (data.length < start || !data.subarray(0, WRAP_MAGIC.length).equals(WRAP_MAGIC)) throw new Error('a wrapped dead letter does not start with its header');
  const length = data.readUInt32BE(WRAP_MAGIC.length);
  if (start + length > data.length) throw new Error('a wrapped dead letter is truncated');
  const parsed: unknown = JSON.parse(data.toString('utf8', start, start + length));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('a wrapped dead letter has no attribute map');
  const restored: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) if (typeof value === 'string') restored[key] = value;
  return { data: data.subarray(start + length), attributes: { ...restored, ...own } };
}
