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
  let count = Object.keys(ours).length;
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith('goog') || key.startsWith(TRIBUTARY_ATTRIBUTE_PREFIX)) continue;
    if (count >= MAX_ATTRIBUTES) break;
    result[key] = value;
    count++;
  }
  return Object.assign(result, ours);
}
