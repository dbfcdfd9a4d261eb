import type { Envelope } from './ports.js';
import { rowIdOf } from './message-decoder.js';

/**
 * One envelope per row of a message that holds several records (an Avro container file), so each
 * row travels and settles through its route like a message of its own, with its own insertId
 * (`<messageId>:<n>`). The message itself is settled once, from its rows:
 * - acked when every row is acked (inserted, or dead-lettered and confirmed);
 * - nacked as soon as one row is nacked: Pub/Sub redelivers the whole message, and the rows that
 *   had landed are sent again with the same insertIds (BigQuery deduplicates them on a best-effort
 *   basis for about a minute; the message id column makes the rest traceable).
 * A row settled twice counts once. A message with one record keeps its envelope as it is.
 */
export function fanOutEnvelope(envelope: Envelope, rows: number): Envelope[] {
  if (rows <= 1) return [envelope];
  let pending = rows;
  let settled = false;
  const done = new Uint8Array(rows);
  const children: Envelope[] = [];
  for (let i = 0; i < rows; i++) {
    children.push({
      id: rowIdOf(envelope.id, i, rows),
      data: envelope.data,
      attributes: envelope.attributes,
      publishTimeMs: envelope.publishTimeMs,
      subscription: envelope.subscription,
      topic: envelope.topic,
      deliveryAttempt: envelope.deliveryAttempt,
      receivedAtMs: envelope.receivedAtMs,
      ack() {
        if (done[i] || settled) return;
        done[i] = 1;
        if (--pending === 0) {
          settled = true;
          envelope.ack();
        }
      },
      nack(redeliverAfterMs?: number) {
        if (done[i] || settled) return;
        done[i] = 1;
        settled = true;
        envelope.nack(redeliverAfterMs);
      },
    });
  }
  return children;
}
