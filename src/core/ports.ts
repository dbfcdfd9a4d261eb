import type { TributaryError } from '../errors.js';
import type { Row, TableRef, TableSchema } from './table-schema.js';

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
  nack(): void;
}

/** A row to insert, with the id BigQuery deduplicates on. */
export interface InsertRow {
  insertId: string;
  json: Row;
  /** `json` serialized, when the caller already has it: a sink that sends JSON uses it as is. */
  text?: string;
}

/** A per-row failure in a 200 insertAll response. */
export interface RowFailure {
  index: number;
  /** BigQuery's reason: `invalid`, `stopped`, `timeout`, `backendError`, … */
  reason: string;
  message: string;
  location?: string;
}

export interface InsertOutcome {
  /** Empty when every row was written. */
  failures: RowFailure[];
}

/**
 * The destination. Request-level failures are thrown as TributaryError with a code that says what
 * kind of failure it was; per-row failures come back in the outcome.
 */
export interface Sink {
  insert(table: TableRef, rows: InsertRow[]): Promise<InsertOutcome>;
  getTableSchema(table: TableRef): Promise<TableSchema>;
  /** Releases what the sink holds (an embedded database file); called once, after the last insert. */
  close?(): Promise<void>;
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

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

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
};

/** What the core logs through; pino's logger satisfies it. */
export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}
