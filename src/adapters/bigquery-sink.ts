import { BigQuery } from '@google-cloud/bigquery';
import { TributaryError, type ErrorCode } from '../errors.js';
import type { PreparedRow, RowFailure, Sink, SinkLimits, WriteOutcome } from '../core/sink.js';
import type { Row, TableRef, TableSchema } from '../core/table-schema.js';
import { formatTableRef } from '../core/table-schema.js';
import { withTimeout } from './with-timeout.js';
import { BODY_OVERHEAD_BYTES, insertAllBody, rowEnvelopeBytes } from './insert-all-body.js';

/** insertAll takes 10 MB per request; the client library itself splits at 9 MiB, and so do we. */
export const INSERT_ALL_MAX_REQUEST_BYTES = 9 * 1024 * 1024;
export const INSERT_ALL_MAX_REQUEST_ROWS = 50_000;
/** Legacy streaming bills each row as at least 1 KB. */
const MIN_BILLED_ROW_BYTES = 1024;

export interface BigQuerySinkOptions {
  projectId: string;
  apiEndpoint?: string | undefined;
  timeoutMs: number;
}

interface ApiErrorShape {
  code?: number | string;
  message?: string;
  errors?: Array<{ reason?: string; message?: string }>;
}

/** tabledata.insertAll's answer: per-row failures of a request that itself succeeded. */
export interface InsertAllResponse {
  insertErrors?: Array<{ index?: number; errors?: Array<{ reason?: string; message?: string; location?: string }> }>;
}

/**
 * tabledata.insertAll through the real client, with every retry of the library turned off. The
 * request is made with the table's own `request()` rather than `insert()`: rows carry our insertIds
 * (insert() would invent new ones per call unless `raw`), nothing is resent by the library
 * (insert() resends partial failures unless `partialRetries: 0`), and per-row failures are read
 * from the answer. Retries belong to the route.
 */
export class BigQuerySink implements Sink {
  private readonly client: BigQuery;
  readonly name = 'insert-all';
  readonly limits: SinkLimits = { maxRequestBytes: INSERT_ALL_MAX_REQUEST_BYTES - BODY_OVERHEAD_BYTES, maxRequestRows: INSERT_ALL_MAX_REQUEST_ROWS };

  constructor(private readonly options: BigQuerySinkOptions) {
    this.client = new BigQuery({
      projectId: options.projectId,
      ...(options.apiEndpoint ? { apiEndpoint: options.apiEndpoint } : {}),
      retryOptions: { autoRetry: false, maxRetries: 0 },
    } as ConstructorParameters<typeof BigQuery>[0]);
  }

  /**
   * The v8 client's `timeout` option reaches node-fetch v3, which ignores it, and a request cannot be
   * aborted: the timer gives up waiting. The rows may still land, so the retry reuses the insertIds.
   */
  private withTimeout<T>(promise: Promise<T>, table: TableRef): Promise<T> {
    return withTimeout(
      promise,
      this.options.timeoutMs,
      () => new TributaryError('BIGQUERY_UNAVAILABLE', `${formatTableRef(table)}: no answer within ${this.options.timeoutMs} ms`),
    );
  }

  /** The row's JSON, made once: it sizes the batch (envelope and insertId included) and is what is sent. */
  prepare(id: string, row: Row): PreparedRow {
    const text = JSON.stringify(row);
    const bytes = Buffer.byteLength(text) + rowEnvelopeBytes(id);
    if (bytes > this.limits.maxRequestBytes) {
      throw new TributaryError('ROW_TOO_LARGE', `row is ${bytes} bytes in an insert request, which holds at most ${this.limits.maxRequestBytes}`);
    }
    return { id, row, bytes, encoded: text };
  }

  async write(table: TableRef, rows: readonly PreparedRow[]): Promise<WriteOutcome> {
    const target = this.client.dataset(table.datasetId, { projectId: table.projectId }).table(table.tableId);
    const body = insertAllBody(rows);
    let response: InsertAllResponse;
    try {
      const [answer] = await this.withTimeout(
        target.request({ method: 'POST', uri: '/insertAll', body, headers: { 'Content-Type': 'application/json' } }),
        table,
      );
      response = (typeof answer === 'string' ? JSON.parse(answer) : answer) as InsertAllResponse;
    } catch (err) {
      if (err instanceof TributaryError) throw err;
      throw classifyBigQueryError(err, table);
    }
    const failures = rowFailures(response?.insertErrors ?? [], rows.length, table);
    let billedBytes = 0;
    const failed = new Set(failures.map((f) => f.index));
    for (let i = 0; i < rows.length; i++) {
      if (failed.has(i)) continue;
      const row = rows[i] as PreparedRow;
      billedBytes += Math.max(MIN_BILLED_ROW_BYTES, row.bytes - rowEnvelopeBytes(row.id));
    }
    return { failures, billedBytes };
  }

  async getTableSchema(table: TableRef): Promise<TableSchema> {
    const target = this.client.dataset(table.datasetId, { projectId: table.projectId }).table(table.tableId);
    try {
      const [metadata] = (await this.withTimeout(target.getMetadata(), table)) as unknown as [{ schema?: TableSchema }];
      return { fields: metadata.schema?.fields ?? [] };
    } catch (err) {
      if (err instanceof TributaryError) throw err;
      throw classifyBigQueryError(err, table);
    }
  }
}

/**
 * insertAll's per-row answers in the neutral terms of the sink contract: `invalid` is this row's own
 * fault (dead-lettered), `stopped` is a valid row held back by an invalid neighbour (sent again at
 * once), anything else is retried with backoff. An entry that names no row of the request cannot
 * say which rows were written: the whole request counts as failed.
 */
export function rowFailures(entries: NonNullable<InsertAllResponse['insertErrors']>, rowCount: number, table: TableRef): RowFailure[] {
  const failures: RowFailure[] = [];
  for (const entry of entries) {
    const index = entry.index;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= rowCount) {
      throw new TributaryError(
        'BIGQUERY_UNAVAILABLE',
        `${formatTableRef(table)}: insertAll answered an error for row ${String(index)} of a request of ${rowCount} rows`,
      );
    }
    const errors = entry.errors ?? [];
    const invalid = errors.find((e) => e.reason === 'invalid');
    if (invalid !== undefined) {
      const where = invalid.location ? `field "${invalid.location}": ` : '';
      const message = invalid.message ?? '';
      failures.push({
        index,
        kind: 'rejected',
        code: 'BIGQUERY_ROW_INVALID',
        reason: `BigQuery rejected the row: ${where}${message}`,
        staleSchema: /no such field/i.test(message),
      });
    } else if (errors.length > 0 && errors.every((e) => e.reason === 'stopped')) {
      failures.push({ index, kind: 'retry', code: 'BIGQUERY_ROW_RETRYABLE', immediate: true });
    } else {
      failures.push({ index, kind: 'retry', code: 'BIGQUERY_ROW_RETRYABLE' });
    }
  }
  return failures;
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** Maps a client error to our code; the route decides what to do with it from the code alone. */
export function classifyBigQueryError(err: unknown, table: TableRef): TributaryError {
  const shape = err as ApiErrorShape;
  const status = typeof shape.code === 'number' ? shape.code : undefined;
  const reason = shape.errors?.[0]?.reason ?? '';
  const detail = `${formatTableRef(table)}: ${status ?? shape.code ?? 'network'} ${reason} ${shape.message ?? String(err)}`.replace(/\s+/g, ' ').slice(0, 500);
  let code: ErrorCode;
  if (status === 413 || (status === 400 && /payload size exceeds|request size|too large/i.test(shape.message ?? ''))) code = 'REQUEST_TOO_LARGE';
  else if (reason === 'notFound' || status === 404) code = 'TABLE_NOT_FOUND';
  else if (reason === 'accessDenied' || status === 401 || (status === 403 && !['rateLimitExceeded', 'quotaExceeded'].includes(reason))) code = 'ACCESS_DENIED';
  else if (reason === 'rateLimitExceeded' || status === 429) code = 'BIGQUERY_RATE_LIMITED';
  else if (reason === 'quotaExceeded') code = 'BIGQUERY_QUOTA_EXCEEDED';
  else if (status !== undefined && status >= 500) code = 'BIGQUERY_UNAVAILABLE';
  else if (typeof shape.code === 'string' && NETWORK_CODES.has(shape.code)) code = 'BIGQUERY_UNAVAILABLE';
  else if (status === 400 && reason === 'invalid') code = 'INTERNAL';
  else code = 'BIGQUERY_UNAVAILABLE';
  return new TributaryError(code, detail, { cause: err });
}
