/** What was done to a table: created, columns added, modes relaxed, or a change refused as incompatible. */
export type TableChangeKind = 'created' | 'added-columns' | 'relaxed' | 'refused';

/**
 * How the attempt ended: `ok`; `rate-limited` (403 rateLimitExceeded, backed off and retried);
 * `conflict` (412 etag mismatch, or 409 when another replica created the table first); `error`.
 */
export type TableChangeResult = 'ok' | 'rate-limited' | 'conflict' | 'error';

/** Told of every table change attempt; the metrics implement it. `table` is `project.dataset.table`. */
export interface TableChangeObserver {
  tableChanged(table: string, kind: TableChangeKind, result: TableChangeResult): void;
}
