import type { Envelope } from '../../src/core/ports.js';

export interface TrackedEnvelope extends Envelope {
  readonly settledAs: 'ack' | 'nack' | undefined;
  readonly settleCount: number;
  /** The redelivery delay a nack asked for, if any. */
  readonly redeliverAfterMs: number | undefined;
}

let counter = 0;

/** An envelope that records how it was settled, for tests of the core without Pub/Sub. */
export function trackedEnvelope(data: Buffer = Buffer.alloc(0), attributes: Record<string, string> = {}, id?: string): TrackedEnvelope {
  let settledAs: 'ack' | 'nack' | undefined;
  let settleCount = 0;
  let redeliverAfterMs: number | undefined;
  const messageId = id ?? `m-${++counter}`;
  return {
    id: messageId,
    data,
    attributes,
    publishTimeMs: Date.now(),
    subscription: 'projects/test-project/subscriptions/s',
    topic: 'projects/test-project/topics/t',
    deliveryAttempt: 1,
    receivedAtMs: Date.now(),
    ack() {
      settleCount++;
      settledAs ??= 'ack';
    },
    nack(delayMs?: number) {
      settleCount++;
      if (settledAs === undefined) redeliverAfterMs = delayMs;
      settledAs ??= 'nack';
    },
    get settledAs() {
      return settledAs;
    },
    get settleCount() {
      return settleCount;
    },
    get redeliverAfterMs() {
      return redeliverAfterMs;
    },
  };
}
