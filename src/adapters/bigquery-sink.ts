import { BigQuery } from '@google-cloud/bigquery';
import { TributaryError, type ErrorCode } from '../errors.js';
import type { InsertOutcome, InsertRow, RowFailure, Sink } from '../core/ports.js';
import type { TableRef, TableSchema } from '../core/table-schema.js';
import { formatTableRef } from '../core/table-schema.js';
import { withTimeout } from './with-timeout.js';
import { insertAllBody } from './insert-all-body.js';

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
interface InsertAllResponse {
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
    return withTimeout(promise, this.options.timeoutMs, () => new TributaryError('BIGQUERY_UNAVAILABLE', `${formatTableRef(table)}: no answer within ${this.options.timeoutMs} ms`));
  }

  async insert(table: TableRef, rows: InsertRow[]): Promise<InsertOutcome> {
    const target = this.client.dataset(table.datasetId, { projectId: table.projectId }).table(table.tableId);
    const body = insertAllBody(rows);
    let response: InsertAllResponse;
    try {
      const [answer] = await this.withTimeout(target.request({ method: 'POST', uri: '/insertAll', body, headers: { 'Content-Type': 'application/json' } }), table);
      response = (typeof answer === 'string' ? JSON.parse(answer) : answer) as InsertAllResponse;
    } catch (err) {
      if (err instanceof TributaryError) throw err;
      throw classifyBigQueryError(err, table);
    }
    const failures: RowFailure[] = [];
    for (const entry of response?.insertErrors ?? []) {
      for (const e of entry.errors ?? []) {
        failures.push({ index: entry.index ?? -1, reason: e.reason ?? 'unknown', message: e.message ?? '', location: e.location ?? '' });
      }
    }
    return { failures };
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

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** Maps a client error to our code; the route decides what to do with it from the code alone. */
export function classifyBigQueryError(err: unknown, table: TableRef): TributaryError {
  const shape = err as ApiErrorShape;
  const status = typeof shape.code === 'number' ? shape.code : undefined;
  const reason = shape.errors?.[0]?.reason ?? '';
  const detail = `${formatTableRef(table)}: ${status ?? shape.code ?? 'network'} ${reason} ${shape.message ?? String(err)}`.replace(/\s+/g, ' ').slice(0, 500);
  let code: ErrorCode;
  if (reason === 'notFound' || status === 404) code = 'TABLE_NOT_FOUND';
  else if (reason === 'accessDenied' || status === 401 || (status === 403 && !['rateLimitExceeded', 'quotaExceeded'].includes(reason))) code = 'ACCESS_DENIED';
  else if (reason === 'rateLimitExceeded' || status === 429) code = 'BIGQUERY_RATE_LIMITED';
  else if (reason === 'quotaExceeded') code = 'BIGQUERY_QUOTA_EXCEEDED';
  else if (status !== undefined && status >= 500) code = 'BIGQUERY_UNAVAILABLE';
  else if (typeof shape.code === 'string' && NETWORK_CODES.has(shape.code)) code = 'BIGQUERY_UNAVAILABLE';
  else if (status === 400 && reason === 'invalid') code = 'INTERNAL';
  else code = 'BIGQUERY_UNAVAILABLE';
  return new TributaryError(code, detail, { cause: err });
}
