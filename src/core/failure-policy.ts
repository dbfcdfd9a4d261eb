import type { ErrorCode, TributaryError } from '../errors.js';

/**
 * What happens to a message that failed with a given error: the one place that reads an error's
 * class. Every stage throws or returns a TributaryError and asks here; none decides by itself.
 *
 * - `dead-letter`: the message can never succeed as it is; publish it with the reason, then ack.
 * - `retry`: might succeed later; retry with backoff within the budget, then nack for redelivery.
 * - `pause`: the destination is unusable (table missing, no permission); the route holds a bounded
 *   share of its messages, probes, and gives the rest back to Pub/Sub. While draining there is no
 *   time to probe: the messages are nacked at once.
 * - `split`: the request was larger than the destination takes; the batch is sent in halves.
 * - `nack`: give the message back to Pub/Sub now (shutting down, or retries exhausted).
 */
export type FailureAction = 'dead-letter' | 'retry' | 'pause' | 'split' | 'nack';

export interface FailureContext {
  /** The worker is shutting down: nothing waits for a destination to recover. */
  draining?: boolean;
}

export function actionFor(error: TributaryError, context: FailureContext = {}): FailureAction {
  if (error.code === 'SHUTTING_DOWN' || error.code === 'ROUTE_FULL') return 'nack';
  if (error.code === 'REQUEST_TOO_LARGE') return 'split';
  switch (error.errorClass) {
    case 'data':
      return 'dead-letter';
    case 'destination':
      return context.draining ? 'nack' : 'pause';
    case 'transient':
      return 'retry';
  }
}

/** Codes that mean "slow down": the route's concurrency and pacing react to them. */
export function isThrottle(code: ErrorCode): boolean {
  return code === 'BIGQUERY_RATE_LIMITED' || code === 'BIGQUERY_QUOTA_EXCEEDED';
}
