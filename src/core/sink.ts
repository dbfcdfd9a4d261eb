import type { ErrorCode } from '../errors.js';
import type { Row, TableRef, TableSchema } from './table-schema.js';

/**
 * A row made ready for one sink, once, when it enters its route: the sink's own encoding of it
 * (JSON text for a JSON API, nothing for a sink that encodes per request) and its size in the unit
 * of that sink's request limit, envelope included. Batches are measured in these bytes.
 */
export interface PreparedRow {
  /** Stable across redeliveries: the message id, or `<messageId>:<n>` when a message holds several rows. */
  readonly id: string;
  readonly row: Row;
  readonly bytes: number;
  /** Whatever the sink wants to keep from preparing the row; the core never reads it. */
  readonly encoded?: unknown;
}

/**
 * What became of one row the sink could not write. Rows of the batch not listed were written.
 * - `rejected`: the destination refuses this row as it is; it is dead-lettered with the reason.
 *   `staleSchema` says the destination's schema may have changed since the core read it (a field
 *   the row has is unknown to it), so the core re-reads the schema before judging more rows.
 * - `retry`: not written, may be written later; `immediate` when it failed only because of another
 *   row of the same request (it is sent again at once, without backoff, but still counted).
 */
export type RowFailure =
  | { readonly index: number; readonly kind: 'rejected'; readonly code: ErrorCode; readonly reason: string; readonly staleSchema?: boolean }
  | { readonly index: number; readonly kind: 'retry'; readonly code: ErrorCode; readonly immediate?: boolean };

export interface WriteOutcome {
  readonly failures: readonly RowFailure[];
  /** What the destination bills for the rows written, in bytes (with its per-row minimum, if it has one). */
  readonly billedBytes: number;
}

/** The request limits of a sink, so the core cuts batches that one request can carry. */
export interface SinkLimits {
  readonly maxRequestBytes: number;
  readonly maxRequestRows: number;
}

/**
 * The destination, in terms of rows and tables only. A request-level failure is thrown as a
 * TributaryError whose code says what kind it was: TABLE_NOT_FOUND / ACCESS_DENIED (the route
 * pauses), BIGQUERY_RATE_LIMITED / BIGQUERY_QUOTA_EXCEEDED (throttled), BIGQUERY_UNAVAILABLE
 * (transient), REQUEST_TOO_LARGE (the batch is split and sent in halves). Per-row failures come back in the outcome.
 */
export interface Sink {
  /** What the sink writes through (`insert-all`, `storage-write`, `duckdb`): the `write_api` label of its metrics. */
  readonly name: string;
  readonly limits: SinkLimits;
  /** Throws ROW_TOO_LARGE when the row alone exceeds a request. */
  prepare(id: string, row: Row): PreparedRow;
  write(table: TableRef, rows: readonly PreparedRow[]): Promise<WriteOutcome>;
  getTableSchema(table: TableRef): Promise<TableSchema>;
  /** Releases what the sink holds (an embedded database file); called once, after the last write. */
  close?(): Promise<void>;
}
