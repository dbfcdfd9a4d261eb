import type { TributaryError } from '../errors.js';

/** One Pub/Sub message as the core sees it; settled exactly once through `ack` or `nack`. */
export interface Envelope {
  readonly id: string;
  readonly data: Buffer;
  readonly attributes: Readonly<Record<string, string>>;
  readonly publishTimeMs: number;
  /** Full subscription path the message came from. */
  readonly subscription: string;
  /** Full topic path of that subscription, when known. */
  readonly topic: string | undefined;
  readonly deliveryAttempt: number;
  readonly receivedAtMs: number;
  ack(): void;
  /**
   * Hands the message back to Pub/Sub: redelivered at once, or not before `redeliverAfterMs` when
   * given (a route at its share asks for later, so a shared subscription does not spin).
   */
  nack(redeliverAfterMs?: number): void;
}

export interface DeadLetterContext {
  route: string | undefined;
  attempts: number;
  schemaKey: string | undefined;
}

/** Publishes a message that can never succeed; resolves only once the publish is confirmed. */
export interface DeadLetterPublisher {
  publish(envelope: Envelope, error: TributaryError, context: DeadLetterContext): Promise<void>;
}

/** A scheduled callback that can be called off. */
export interface Timer {
  cancel(): void;
}

/** Time as the core sees it: tests drive a manual clock, production the system one. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  setTimer(ms: number, callback: () => void): Timer;
}

/** A uniform number in [0, 1): jitter comes through it so tests can pin it. */
export type Random = () => number;

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
  setTimer: (ms, callback) => {
    const timer = setTimeout(callback, ms);
    return { cancel: () => clearTimeout(timer) };
  },
};

/** What the core logs through; pino's logger satisfies it. */
export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}
