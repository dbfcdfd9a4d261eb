/**
 * A BigQuery REST test server (node:http only) for driving the REAL `@google-cloud/bigquery` v8
 * client, with programmatic fault injection.
 *
 * What the v8 client sends (read from build/src/{bigquery,dataset,table}.js and
 * @google-cloud/common 6.x, confirmed against this server):
 *
 * - `new BigQuery({apiEndpoint: 'http://127.0.0.1:PORT', projectId, autoRetry: false})` gives the
 *   base URL `${apiEndpoint}/bigquery/v2`; every request adds `?prettyPrint=false`. Bodies are
 *   plain JSON (`content-type: application/json`, never gzipped; the client only *accepts*
 *   gzip responses). A `Content-Encoding: gzip|deflate` body is still decoded here.
 * - `bigquery.createDataset(d)`            POST   /bigquery/v2/projects/P/datasets  {datasetReference:{datasetId}}
 * - `dataset.createTable(t, {schema})`     POST   /bigquery/v2/projects/P/datasets/D/tables
 *                                          {schema:{fields}, tableReference:{projectId, datasetId, tableId}}
 * - `table.getMetadata()`                  GET    /bigquery/v2/projects/P/datasets/D/tables/T
 * - `table.setMetadata({schema})`          PATCH  /bigquery/v2/projects/P/datasets/D/tables/T
 * - `table.delete()`                       DELETE /bigquery/v2/projects/P/datasets/D/tables/T  (204, empty body)
 * - `table.insert(rows, {raw: true, partialRetries: 0, skipInvalidRows, ignoreUnknownValues})`
 *                                          POST   /bigquery/v2/projects/P/datasets/D/tables/T/insertAll
 *   body = `{...options minus raw/partialRetries/createInsertId/schema, rows}`, i.e.
 *   `{"skipInvalidRows":false,"ignoreUnknownValues":false,"rows":[{"insertId":"i1","json":{...}}]}`.
 *   Options left undefined are simply absent. `partialRetries: 0` means exactly one HTTP attempt
 *   per insert() (the default, 3, re-sends the rows named in insertErrors). Without `schema` the
 *   client never auto-creates a table on 404.
 * - Without credentials the client tolerates google-auth-library's "Could not load the default
 *   credentials" and sends no Authorization header. Setting `METADATA_SERVER_DETECTION=none`
 *   stops it probing the GCE metadata server (and printing MetadataLookupWarning).
 *
 * How the client surfaces results (what the sink relies on):
 *
 * (a) 200 with `insertErrors`: `insert()` rejects with `PartialFailureError`
 *     (`err.name === 'PartialFailureError'`, no `code`). `err.errors` is
 *     `Array<{row, errors: Array<{reason, message}>}>` in the server's insertErrors order, where
 *     `row` is the SAME object (identity) that was passed in (`rows[insertError.index]`);
 *     `location`/`debugInfo` are dropped there. `err.response` is the parsed JSON body
 *     `{kind, insertErrors: [{index, errors: [{reason, location, debugInfo, message}]}]}`, so read
 *     `err.response.insertErrors[i].index` for indexes and locations. A 200 without insertErrors
 *     resolves to `[{kind: 'bigquery#tableDataInsertAllResponse'}]`.
 *     With skipInvalidRows=true the valid rows ARE stored but the call still rejects with
 *     PartialFailureError listing only the invalid rows.
 * (b) non-2xx with a JSON error body: `ApiError` (`err.name === 'Error'`), `err.code` =
 *     `body.error.code` (= HTTP status here), `err.errors` = `body.error.errors`
 *     (`[{reason, message, domain}]`), `err.message` = `body.error.message`, `err.response` = the
 *     HTTP response (`statusCode`, `headers`, `body` = the raw JSON TEXT, not parsed), so read
 *     `err.code` and `err.errors[0].reason`. A non-JSON body (the 413 the
 *     Google front end sends for far oversized payloads) gives `code` = HTTP status and
 *     `errors: []`. With autoRetry true (default) 408/429/5xx and reason rateLimitExceeded are
 *     retried by retry-request before surfacing; use `autoRetry: false` in the worker.
 * (c) connection destroyed without a response: a node-fetch `FetchError` with
 *     `code === 'ECONNRESET'`, `errno === 'ECONNRESET'`, `type === 'system'`, message
 *     "request to ... failed, reason: socket hang up"; no `response`, no `errors`.
 *     `new BigQuery({timeout})` does NOTHING in v8: teeny-request passes `timeout` to node-fetch
 *     v3, which dropped that option, and insert() exposes no abort. A sink needing a deadline must
 *     race its own timer and treat the outcome as unknown (the rows may still be stored: see
 *     `setLatency(ms, {afterCommit: true})`, and rely on insertId dedup when retrying).
 *
 * BigQuery semantics modelled for insertAll (tabledata.insertAll):
 * - missing dataset/table → 404 `notFound` ("Not found: Table P:D.T").
 * - per-row validation → `insertErrors[{index, errors:[{reason:'invalid', location, debugInfo:'', message}]}]`.
 *   If any row is invalid and skipInvalidRows is not true, every other row gets
 *   `{reason:'stopped', location:'', debugInfo:'', message:''}` and NOTHING is stored.
 * - ignoreUnknownValues drops unknown fields (at any depth) instead of rejecting the row.
 * - insertId best-effort dedup: a row whose insertId was stored for the table within
 *   `dedupWindowMs` (default 60 s) is acknowledged but not stored again.
 * - body > 10 MiB → 400 `badRequest` "Request payload size exceeds the limit: 10485760 bytes."
 *   (what BigQuery answers); body > `frontendMaxRequestBytes` (default 50 MiB) → 413 HTML, as the
 *   Google front end does; > 50,000 rows → 400 `invalid`; no rows → 400 `invalid`;
 *   malformed JSON → 400 `parseError`.
 * - Returned table schemas use legacy type names (INT64 → INTEGER, STRUCT → RECORD ...) as BigQuery does.
 *
 * Table management modelled (tables.insert / get / patch / update):
 * - `dataset.createTable(id, {schema, timePartitioning, clustering, description})` → POST; 409
 *   `duplicate` when the table exists. The partitioning field must be a top-level, non-repeated
 *   TIMESTAMP, DATE or DATETIME column, the type DAY|HOUR|MONTH|YEAR; at most 4 clustering columns,
 *   top-level, non-repeated, of a type BigQuery clusters on. All are stored and returned by get.
 * - `tables.get` returns an `etag` that changes with every metadata change (not with streamed rows).
 * - `table.setMetadata({schema, etag})` → PATCH with `If-Match: etag` (the client copies it from the
 *   body); a stale etag → 412 `conditionNotMet` "Precondition check failed.". PUT is tables.update.
 * - What an update may change: new NULLABLE/REPEATED fields at any depth, REQUIRED → NULLABLE.
 *   Refused with 400 `invalid` and BigQuery's "Provided Schema does not match Table P:D.T. ..."
 *   messages: a type change ("Field a has changed type from INTEGER to STRING"), a removal ("Field a
 *   is missing in new schema"), any other mode change ("Field a has changed mode from NULLABLE to
 *   REQUIRED"), a new REQUIRED field ("Cannot add required fields to an existing schema. (field: a.b)").
 *   Field order is not checked.
 * - At most `tableUpdateLimit` (default 5 per 10 s) successful metadata updates per table; beyond,
 *   403 `rateLimitExceeded` "Exceeded rate limits: too many table update operations for this table. ...".
 * - `schemaPropagationDelayMs`: after a schema change, insertAll keeps validating against the schema
 *   before the change (an unknown field is `invalid` "no such field") while get shows the new one.
 * - `notFoundAfterCreateMs`: insertAll answers 404 `notFound` for that long after tables.insert.
 * - `callCount(kind)` counts every call by API method (`tables.patch`, `tabledata.insertAll`, ...).
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';
import type { TableField, TableRef, TableSchema } from '../../src/core/table-schema.js';

export type KnownErrorReason =
  | 'backendError'
  | 'internalError'
  | 'rateLimitExceeded'
  | 'quotaExceeded'
  | 'accessDenied'
  | 'notFound'
  | 'badRequest'
  | 'invalid'
  | 'parseError'
  | 'duplicate'
  | 'resourceInUse';

/** An HTTP-level failure, answered with BigQuery's JSON error body. */
export interface Fault {
  status: number;
  reason: KnownErrorReason | (string & Record<never, never>);
  /** Defaults to a BigQuery-like message for the reason. */
  message?: string;
}

export interface TableFilter {
  /** Only insertAll requests for this table are affected. */
  table?: TableRef;
}

export interface DatasetRef {
  projectId: string;
  datasetId: string;
}

export interface StoredRow {
  insertId?: string;
  json: Record<string, unknown>;
}

export type RowFaultReason = 'backendError' | 'timeout' | 'stopped';
export type RowFaultFn = (row: StoredRow, table: TableRef, index: number) => RowFaultReason | null;
/** Makes BigQuery call a schema-valid row `invalid`, as it does for values only it can judge. */
export type RowRejectFn = (row: StoredRow, table: TableRef, index: number) => { location: string; message: string } | null;

export interface RecordedRequest {
  table: TableRef;
  /** insertId of each row, in request order (undefined when the row had none). */
  insertIds: Array<string | undefined>;
  rowCount: number;
  /** HTTP status sent; null when the connection was destroyed without a response. */
  status: number | null;
  /** Error reason of a non-2xx answer, else null. */
  reason: string | null;
  /** Rows newly stored by this request. */
  storedRowCount: number;
  /** Rows acknowledged but not stored because their insertId was already stored. */
  duplicateRowCount: number;
  /** Entries in insertErrors. */
  insertErrorCount: number;
  skipInvalidRows: boolean;
  ignoreUnknownValues: boolean;
  /** Answered 403 rateLimitExceeded by throttle(). */
  throttled: boolean;
  /** Failed by failNext/setOutage/failUntil/denyTable/dropNext. */
  injected: boolean;
  /** The client had already gone (e.g. its timeout fired during setLatency). */
  clientAborted: boolean;
  /** Arrival time (server clock, ms). */
  timestamp: number;
  completedAt: number;
}

export interface HttpLogEntry {
  method: string;
  path: string;
  status: number | null;
  timestamp: number;
}

export interface ThrottleOptions {
  rowsPerSecond?: number;
  requestsPerSecond?: number;
  /** Bucket sizes; default one second's worth (at least 1). */
  burstRows?: number;
  burstRequests?: number;
}

export interface LatencyOptions extends TableFilter {
  /** Store the rows first, then delay the response (a client timeout then hides a success). */
  afterCommit?: boolean;
}

export interface DropOptions extends TableFilter {
  /** Store the rows first, then destroy the socket (an ambiguous failure). */
  afterCommit?: boolean;
}

export interface OutageOptions extends TableFilter {
  /** Ends the outage at this server-clock time (ms), or once the predicate returns true. */
  until?: number | (() => boolean);
}

export interface BigQueryTestServerOptions {
  port?: number;
  host?: string;
  dedupWindowMs?: number;
  /** BigQuery's insertAll limit; larger bodies get 400 badRequest. Default 10 MiB. */
  maxRequestBytes?: number;
  /** Larger bodies get the front end's 413 HTML page. Default 50 MiB. */
  frontendMaxRequestBytes?: number;
  /** Default 50,000. */
  maxRowsPerRequest?: number;
  /** Per-row JSON size limit → per-row `invalid`. Default 10 MiB. */
  maxRowBytes?: number;
  /** Server clock (dedup window, throttle, outage deadlines, timestamps). Default Date.now. */
  now?: () => number;
  /** After a schema change, insertAll sees the previous schema for this long. Default 0. */
  schemaPropagationDelayMs?: number;
  /** After tables.insert, insertAll answers 404 notFound for this long. Default 0. */
  notFoundAfterCreateMs?: number;
  /** BigQuery's table-metadata update limit per table; null turns it off. Default 5 per 10 s. */
  tableUpdateLimit?: TableUpdateLimit | null;
}

export interface TableUpdateLimit {
  updates: number;
  windowMs: number;
}

/** API methods counted by callCount(). */
export type CallKind =
  | 'datasets.list'
  | 'datasets.insert'
  | 'datasets.get'
  | 'datasets.delete'
  | 'tables.list'
  | 'tables.insert'
  | 'tables.get'
  | 'tables.patch'
  | 'tables.update'
  | 'tables.delete'
  | 'tabledata.insertAll';

/** What tables.get shows of a table besides its schema. */
export interface TableInfo {
  schema: TableSchema;
  etag: string;
  timePartitioning?: Record<string, unknown>;
  clustering?: { fields: string[] };
  description?: string;
}

export interface BigQueryTestServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;

  createDataset(ref: DatasetRef): void;
  createTable(ref: TableRef, schema: TableSchema): void;
  /** Replaces the schema at once, bypassing update rules, limits and propagation. */
  setSchema(ref: TableRef, schema: TableSchema): void;
  deleteTable(ref: TableRef): void;
  hasTable(ref: TableRef): boolean;
  /** The table as tables.get shows it, undefined when missing. */
  tableInfo(ref: TableRef): TableInfo | undefined;
  /** The schema insertAll validates against right now (the previous one during propagation). */
  streamingSchema(ref: TableRef): TableSchema | undefined;
  rows(ref: TableRef): StoredRow[];
  /** Calls of one API method since start (or resetCallCounts). */
  callCount(kind: CallKind): number;
  resetCallCounts(): void;
  setSchemaPropagationDelay(ms: number): void;
  setNotFoundAfterCreate(ms: number): void;
  /** The table's schema as tables.get returns it, or undefined when there is no such table. */
  tableSchema(ref: TableRef): TableSchema | undefined;
  /**
   * Stores rows written by another write API (the Storage Write test server shares this table
   * store), so a test reads rows back the same way whichever API wrote them. Rows must be valid.
   */
  storeRows(ref: TableRef, rows: Array<Record<string, unknown>>): void;
  waitForRows(ref: TableRef, count: number, timeoutMs: number): Promise<void>;

  readonly requests: RecordedRequest[];
  readonly httpLog: HttpLogEntry[];
  clearRequests(): void;
  waitForRequests(count: number, timeoutMs: number): Promise<void>;

  failNext(n: number, fault: Fault, options?: TableFilter): void;
  setOutage(fault: Fault | null, options?: OutageOptions): void;
  failUntil(until: number | (() => boolean), fault: Fault, options?: TableFilter): void;
  rowFault(fn: RowFaultFn | null): void;
  rejectRow(fn: RowRejectFn | null): void;
  /** Delays insertAll answers; with `table`, only that table's (and it wins over the server-wide delay). */
  setLatency(ms: number, options?: LatencyOptions): void;
  dropNext(n: number, options?: DropOptions): void;
  throttle(options: ThrottleOptions | null): void;
  readonly throttledCount: number;
  denyTable(ref: TableRef, reason?: string): void;
  allowTable(ref: TableRef): void;
  /** Clears every fault, latency, throttle and denial (not data, not requests). */
  resetFaults(): void;
}

const MiB = 1024 * 1024;
const INSERT_ALL_KIND = 'bigquery#tableDataInsertAllResponse';

// ---------------------------------------------------------------------------------------------
// Helpers

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function tableKey(ref: TableRef): string {
  return `${ref.projectId}:${ref.datasetId}.${ref.tableId}`;
}

function datasetKey(ref: DatasetRef): string {
  return `${ref.projectId}:${ref.datasetId}`;
}

function sameTable(a: TableRef, b: TableRef): boolean {
  return a.projectId === b.projectId && a.datasetId === b.datasetId && a.tableId === b.tableId;
}

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  412: 'FAILED_PRECONDITION',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'NOT_IMPLEMENTED',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

function statusName(status: number): string {
  return STATUS_NAMES[status] ?? 'UNKNOWN';
}

function defaultMessage(reason: string, table: TableRef | null): string {
  const name = table ? `${table.projectId}:${table.datasetId}.${table.tableId}` : 'unknown';
  switch (reason) {
    case 'backendError':
      return 'Backend error. Retrying may solve the problem.';
    case 'internalError':
      return 'An internal error occurred and the request could not be completed. This is usually caused by a transient issue. Retrying with back-off should solve the problem.';
    case 'rateLimitExceeded':
      return `Exceeded rate limits: Your table: ${name} exceeded quota for streaming insert rows per second. For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas`;
    case 'quotaExceeded':
      return `Quota exceeded: Your table: ${name} exceeded quota for streaming insert bytes per second. For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas`;
    case 'accessDenied':
      return `Access Denied: Table ${name}: Permission bigquery.tables.updateData denied on table ${name} (or it may not exist).`;
    case 'notFound':
      return `Not found: Table ${name}`;
    default:
      return reason;
  }
}

interface ErrorBody {
  error: {
    code: number;
    message: string;
    errors: Array<{ message: string; domain: string; reason: string }>;
    status: string;
  };
}

function errorBody(status: number, reason: string, message: string): ErrorBody {
  return {
    error: {
      code: status,
      message,
      errors: [{ message, domain: 'global', reason }],
      status: statusName(status),
    },
  };
}

interface HttpAnswer {
  status: number;
  /** JSON body, or a raw string (HTML) when `contentType` says so, or null for no body. */
  body: unknown;
  contentType?: string;
  reason: string | null;
}

function jsonAnswer(status: number, body: unknown): HttpAnswer {
  return { status, body, reason: null };
}

function errorAnswer(status: number, reason: string, message: string): HttpAnswer {
  return { status, body: errorBody(status, reason, message), reason };
}

// ---------------------------------------------------------------------------------------------
// Schema

const TYPE_ALIASES: Record<string, string> = {
  STRING: 'STRING',
  BYTES: 'BYTES',
  INTEGER: 'INTEGER',
  INT64: 'INTEGER',
  FLOAT: 'FLOAT',
  FLOAT64: 'FLOAT',
  NUMERIC: 'NUMERIC',
  DECIMAL: 'NUMERIC',
  BIGNUMERIC: 'BIGNUMERIC',
  BIGDECIMAL: 'BIGNUMERIC',
  BOOLEAN: 'BOOLEAN',
  BOOL: 'BOOLEAN',
  TIMESTAMP: 'TIMESTAMP',
  DATE: 'DATE',
  TIME: 'TIME',
  DATETIME: 'DATETIME',
  GEOGRAPHY: 'GEOGRAPHY',
  JSON: 'JSON',
  INTERVAL: 'INTERVAL',
  RANGE: 'RANGE',
  RECORD: 'RECORD',
  STRUCT: 'RECORD',
};

class SchemaError extends Error {}

function normalizeFields(fields: unknown, prefix: string): TableField[] {
  if (!Array.isArray(fields)) {
    throw new SchemaError(`Invalid schema: fields of ${prefix || 'table'} must be an array.`);
  }
  const seen = new Set<string>();
  return fields.map((raw: unknown): TableField => {
    if (!isRecord(raw) || typeof raw['name'] !== 'string' || raw['name'] === '') {
      throw new SchemaError('Invalid schema: every field needs a name.');
    }
    const name = raw['name'];
    const path = prefix ? `${prefix}.${name}` : name;
    const lower = name.toLowerCase();
    if (seen.has(lower)) {
      throw new SchemaError(`Field ${path} already exists in schema`);
    }
    seen.add(lower);
    const rawType = typeof raw['type'] === 'string' ? raw['type'].toUpperCase() : '';
    const type = TYPE_ALIASES[rawType];
    if (type === undefined) {
      throw new SchemaError(`Invalid field type: ${String(raw['type'])} for field ${path}.`);
    }
    const mode = raw['mode'] === undefined ? undefined : String(raw['mode']).toUpperCase();
    if (mode !== undefined && mode !== 'NULLABLE' && mode !== 'REQUIRED' && mode !== 'REPEATED') {
      throw new SchemaError(`Invalid field mode: ${mode} for field ${path}.`);
    }
    const field: TableField = { ...(raw as Record<string, unknown>), name, type } as TableField;
    if (mode !== undefined) field.mode = mode;
    if (type === 'RECORD') {
      if (!Array.isArray(raw['fields']) || raw['fields'].length === 0) {
        throw new SchemaError(`Field ${path} is type RECORD but has no schema.`);
      }
      field.fields = normalizeFields(raw['fields'], path);
    } else if (raw['fields'] !== undefined) {
      delete field.fields;
    }
    return field;
  });
}

function normalizeSchema(schema: unknown): TableSchema {
  if (!isRecord(schema)) throw new SchemaError('Invalid schema.');
  return { fields: normalizeFields(schema['fields'] ?? [], '') };
}

// ---------------------------------------------------------------------------------------------
// Row validation (BigQuery's JSON coercions for insertAll)

export interface CellError {
  location: string;
  message: string;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const TIMESTAMP_MIN_SECONDS = -62135596800; // 0001-01-01T00:00:00Z
const TIMESTAMP_MAX_SECONDS = 253402300800; // exclusive: 10000-01-01T00:00:00Z

function describe(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function validDate(y: number, m: number, d: number): boolean {
  if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1) return false;
  const days = [31, isLeapYear(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1] ?? 0;
  return d <= days;
}

function validTime(h: number, mi: number, s: number): boolean {
  return h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && s >= 0 && s <= 59;
}

const DATE_RE = /^(\d{4})-(\d{1,2})-(\d{1,2})$/;
const TIME_RE = /^(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?$/;
const DATETIME_RE = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,6}))?)?)?$/;
const TIMESTAMP_RE =
  /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,6}))?)?)?(?:\s*(?:[Zz]|UTC|[+-]\d{1,2}(?::?\d{2})?|[A-Za-z_]+\/[A-Za-z_]+(?:\/[A-Za-z_]+)?))?$/;
const DECIMAL_RE = /^[+-]?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
const NUMBER_STRING_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function num(s: string | undefined): number {
  return s === undefined ? 0 : Number(s);
}

function checkDateParts(m: RegExpExecArray): boolean {
  return validDate(num(m[1]), num(m[2]), num(m[3]));
}

function checkDateTimeParts(m: RegExpExecArray): boolean {
  return checkDateParts(m) && validTime(num(m[4]), num(m[5]), num(m[6]));
}

/** Integer and fraction digit counts of a decimal literal (exponent applied), or null if not one. */
function decimalDigits(text: string): { intDigits: number; fracDigits: number } | null {
  const m = DECIMAL_RE.exec(text);
  if (!m) return null;
  const intPart = m[1] ?? '';
  const fracPart = m[2] ?? '';
  if (intPart === '' && fracPart === '') return null;
  const exp = m[3] === undefined ? 0 : Number(m[3]);
  if (!Number.isFinite(exp) || Math.abs(exp) > 1000) return null;
  const digits = intPart + fracPart;
  const point = intPart.length + exp;
  let integer: string;
  let fraction: string;
  if (point <= 0) {
    integer = '';
    fraction = '0'.repeat(-point) + digits;
  } else if (point >= digits.length) {
    integer = digits + '0'.repeat(point - digits.length);
    fraction = '';
  } else {
    integer = digits.slice(0, point);
    fraction = digits.slice(point);
  }
  integer = integer.replace(/^0+/, '');
  fraction = fraction.replace(/0+$/, '');
  return { intDigits: integer.length, fracDigits: fraction.length };
}

function numberText(value: number): string {
  // Number#toString may use exponent notation; decimalDigits handles it.
  return String(value);
}

/** Returns an error message, or null when the scalar is acceptable for the (legacy) type. */
function checkScalar(type: string, value: unknown, field: TableField, path: string): string | null {
  const bad = (what: string): string => `Cannot convert value to ${what}. Field: ${path}; Value: ${describe(value)}`;
  if (isRecord(value) && type !== 'JSON') return `This field: ${path} is not a record.`;
  switch (type) {
    case 'STRING':
    case 'GEOGRAPHY':
    case 'INTERVAL':
    case 'RANGE':
      if (typeof value === 'string') return null;
      if (type === 'STRING' && (typeof value === 'number' || typeof value === 'boolean')) return null;
      return bad(type.toLowerCase());
    case 'INTEGER': {
      if (typeof value === 'number') {
        return Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63 ? null : bad('integer');
      }
      if (typeof value === 'string' && /^[+-]?\d+$/.test(value)) {
        const big = BigInt(value);
        return big >= INT64_MIN && big <= INT64_MAX ? null : bad('integer');
      }
      return bad('integer');
    }
    case 'FLOAT': {
      if (typeof value === 'number') return Number.isFinite(value) ? null : bad('double');
      if (typeof value === 'string') {
        if (value === 'NaN' || value === 'Infinity' || value === '-Infinity' || value === '+Infinity') return null;
        if (NUMBER_STRING_RE.test(value) && Number.isFinite(Number(value))) return null;
      }
      return bad('double');
    }
    case 'BOOLEAN':
      if (typeof value === 'boolean') return null;
      if (typeof value === 'string' && /^(true|false)$/i.test(value)) return null;
      return bad('boolean');
    case 'BYTES':
      return typeof value === 'string' && BASE64_RE.test(value) ? null : bad('bytes (invalid base64)');
    case 'TIMESTAMP': {
      let seconds: number | null = null;
      if (typeof value === 'number') seconds = value;
      else if (typeof value === 'string' && NUMBER_STRING_RE.test(value)) seconds = Number(value);
      if (seconds !== null) {
        return Number.isFinite(seconds) && seconds >= TIMESTAMP_MIN_SECONDS && seconds < TIMESTAMP_MAX_SECONDS ? null : bad('timestamp (out of range)');
      }
      if (typeof value !== 'string') return bad('timestamp');
      const m = TIMESTAMP_RE.exec(value.trim());
      return m && checkDateTimeParts(m) ? null : bad('timestamp');
    }
    case 'DATE': {
      if (typeof value !== 'string') return bad('date');
      const m = DATE_RE.exec(value);
      return m && checkDateParts(m) ? null : bad('date');
    }
    case 'DATETIME': {
      if (typeof value !== 'string') return bad('datetime');
      const m = DATETIME_RE.exec(value);
      return m && checkDateTimeParts(m) ? null : bad('datetime');
    }
    case 'TIME': {
      if (typeof value !== 'string') return bad('time');
      const m = TIME_RE.exec(value);
      return m && validTime(num(m[1]), num(m[2]), num(m[3])) ? null : bad('time');
    }
    case 'NUMERIC':
    case 'BIGNUMERIC': {
      const big = type === 'BIGNUMERIC';
      const text = typeof value === 'number' ? numberText(value) : typeof value === 'string' ? value : null;
      if (text === null || (typeof value === 'number' && !Number.isFinite(value))) return bad(type.toLowerCase());
      const digits = decimalDigits(text);
      if (!digits) return bad(type.toLowerCase());
      const precision = field.precision !== undefined ? Number(field.precision) : big ? 76 : 38;
      const scale = field.scale !== undefined ? Number(field.scale) : big ? 38 : 9;
      const maxInt = big && field.precision === undefined ? 38 : precision - scale;
      if (digits.intDigits > maxInt || digits.fracDigits > scale) {
        return `Invalid ${type} value: ${describe(value)} (precision ${precision}, scale ${scale}). Field: ${path}`;
      }
      return null;
    }
    case 'JSON':
      if (typeof value === 'string') {
        try {
          JSON.parse(value);
          return null;
        } catch {
          return `Invalid JSON value. Field: ${path}; Value: ${value}`;
        }
      }
      return null;
    default:
      return `Unsupported field type ${type}. Field: ${path}`;
  }
}

/**
 * BigQuery's checks of one row's JSON values against a table's columns (as insertAll applies
 * them): the problems found, each with its location. Shared with the Storage Write test server.
 */
export function checkRowAgainstSchema(row: Record<string, unknown>, schema: TableSchema): CellError[] {
  return checkRecord(row, schema.fields, '', false).errors;
}

interface RecordCheck {
  errors: CellError[];
  /** The row as stored: unknown fields dropped when ignoreUnknownValues. */
  cleaned: Record<string, unknown>;
}

function checkRecord(value: Record<string, unknown>, fields: TableField[], prefix: string, ignoreUnknownValues: boolean): RecordCheck {
  const errors: CellError[] = [];
  const cleaned: Record<string, unknown> = {};
  const byName = new Map<string, TableField>();
  for (const field of fields) byName.set(field.name.toLowerCase(), field);
  const present = new Map<string, string>(); // lower-case field name → key used in the row

  for (const [key, cell] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const field = byName.get(key.toLowerCase());
    if (field === undefined) {
      if (!ignoreUnknownValues) errors.push({ location: path, message: `no such field: ${path}.` });
      continue;
    }
    if (present.has(field.name.toLowerCase())) {
      errors.push({ location: path, message: `Duplicate field: ${path}.` });
      continue;
    }
    present.set(field.name.toLowerCase(), key);
    const result = checkCell(cell, field, path, ignoreUnknownValues);
    errors.push(...result.errors);
    cleaned[key] = result.cleaned;
  }
  for (const field of fields) {
    if (field.mode === 'REQUIRED' && !present.has(field.name.toLowerCase())) {
      const path = prefix ? `${prefix}.${field.name}` : field.name;
      errors.push({ location: path, message: `Missing required field: ${path}.` });
    }
  }
  return { errors, cleaned };
}

function checkCell(cell: unknown, field: TableField, path: string, ignoreUnknownValues: boolean): { errors: CellError[]; cleaned: unknown } {
  const mode = field.mode ?? 'NULLABLE';
  if (cell === null || cell === undefined) {
    if (mode === 'REQUIRED') return { errors: [{ location: path, message: `Missing required field: ${path}.` }], cleaned: cell };
    return { errors: [], cleaned: cell };
  }
  if (mode === 'REPEATED') {
    if (!Array.isArray(cell)) {
      return {
        errors: [{ location: path, message: `Repeated field must be imported as a JSON array. Field: ${path}.` }],
        cleaned: cell,
      };
    }
    const errors: CellError[] = [];
    const cleaned: unknown[] = [];
    for (const element of cell) {
      if (element === null || element === undefined) {
        errors.push({ location: path, message: `Only optional fields can be set to NULL. Field: ${path}; Value: NULL` });
        continue;
      }
      const result = checkSingle(element, field, path, ignoreUnknownValues);
      errors.push(...result.errors);
      cleaned.push(result.cleaned);
    }
    return { errors, cleaned };
  }
  if (Array.isArray(cell) && field.type !== 'JSON') {
    return { errors: [{ location: path, message: `Array specified for non-repeated field: ${path}.` }], cleaned: cell };
  }
  return checkSingle(cell, field, path, ignoreUnknownValues);
}

function checkSingle(value: unknown, field: TableField, path: string, ignoreUnknownValues: boolean): { errors: CellError[]; cleaned: unknown } {
  if (field.type === 'RECORD') {
    if (!isRecord(value)) {
      return { errors: [{ location: path, message: `This field: ${path} is a record; value must be a JSON object.` }], cleaned: value };
    }
    return checkRecord(value, field.fields ?? [], path, ignoreUnknownValues);
  }
  const message = checkScalar(field.type, value, field, path);
  return { errors: message === null ? [] : [{ location: path, message }], cleaned: value };
}

// ---------------------------------------------------------------------------------------------
// Table layout and schema update rules

const PARTITION_TYPES: ReadonlySet<string> = new Set(['DAY', 'HOUR', 'MONTH', 'YEAR']);
const PARTITION_FIELD_TYPES: ReadonlySet<string> = new Set(['TIMESTAMP', 'DATE', 'DATETIME']);
const CLUSTERING_TYPES: ReadonlySet<string> = new Set([
  'STRING',
  'INTEGER',
  'NUMERIC',
  'BIGNUMERIC',
  'BOOLEAN',
  'DATE',
  'DATETIME',
  'TIMESTAMP',
  'GEOGRAPHY',
  'RANGE',
]);
const MAX_CLUSTERING_FIELDS = 4;

function topLevelField(schema: TableSchema, name: string): TableField | undefined {
  return schema.fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
}

/** tables.insert's checks of partitioning and clustering; the message BigQuery gives, or null. */
function layoutProblem(schema: TableSchema, timePartitioning: unknown, clustering: unknown): string | null {
  if (timePartitioning !== undefined) {
    if (!isRecord(timePartitioning)) return 'Invalid value for timePartitioning.';
    const type = timePartitioning['type'];
    if (typeof type !== 'string' || !PARTITION_TYPES.has(type)) return `Invalid value for type: ${String(type)} is not a valid value`;
    const fieldName = timePartitioning['field'];
    if (fieldName !== undefined) {
      if (typeof fieldName !== 'string') return 'Invalid value for timePartitioning.field.';
      const field = topLevelField(schema, fieldName);
      if (!field) return `The field specified for partitioning cannot be found in the schema. Invalid field: ${fieldName}.`;
      if (!PARTITION_FIELD_TYPES.has(field.type)) {
        return `The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME. The type found is: ${field.type}.`;
      }
      if (field.mode === 'REPEATED') return `The field specified for time partitioning cannot be REPEATED. Invalid field: ${fieldName}.`;
    }
  }
  if (clustering !== undefined) {
    const fields = isRecord(clustering) ? clustering['fields'] : undefined;
    if (!Array.isArray(fields) || !fields.every((f): f is string => typeof f === 'string')) return 'Invalid value for clustering.fields.';
    if (fields.length > MAX_CLUSTERING_FIELDS) return `Too many clustering fields: ${fields.length}, only up to ${MAX_CLUSTERING_FIELDS} are allowed.`;
    for (const name of fields) {
      const field = topLevelField(schema, name);
      if (!field) return `The field specified for clustering cannot be found in the schema. Invalid field: ${name}.`;
      if (field.mode === 'REPEATED' || !CLUSTERING_TYPES.has(field.type)) {
        return `Field ${name} is of type ${field.mode === 'REPEATED' ? `ARRAY<${field.type}>` : field.type} which is not supported for clustering.`;
      }
    }
  }
  return null;
}

/** What tables.patch/update refuses in a schema change; BigQuery's message (after its prefix), or null. Exported for property tests of the schema diff. */
export function schemaUpdateProblem(current: TableField[], next: TableField[], prefix: string): string | null {
  const byName = new Map(next.map((f) => [f.name.toLowerCase(), f]));
  for (const old of current) {
    const path = prefix ? `${prefix}.${old.name}` : old.name;
    const now = byName.get(old.name.toLowerCase());
    if (!now) return `Field ${path} is missing in new schema`;
    if (now.type !== old.type) return `Field ${path} has changed type from ${old.type} to ${now.type}`;
    const oldMode = old.mode ?? 'NULLABLE';
    const newMode = now.mode ?? 'NULLABLE';
    if (oldMode !== newMode && !(oldMode === 'REQUIRED' && newMode === 'NULLABLE')) {
      return `Field ${path} has changed mode from ${oldMode} to ${newMode}`;
    }
    if (old.type === 'RECORD') {
      const nested = schemaUpdateProblem(old.fields ?? [], now.fields ?? [], path);
      if (nested) return nested;
    }
  }
  const known = new Set(current.map((f) => f.name.toLowerCase()));
  for (const field of next) {
    if (known.has(field.name.toLowerCase())) continue;
    if (field.mode === 'REQUIRED') return `Cannot add required fields to an existing schema. (field: ${prefix ? `${prefix}.${field.name}` : field.name})`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// State

interface DatasetState {
  ref: DatasetRef;
  creationTime: number;
  tables: Map<string, TableState>;
}

interface TableState {
  ref: TableRef;
  schema: TableSchema;
  creationTime: number;
  lastModifiedTime: number;
  rows: StoredRow[];
  /** insertId → time it was stored. */
  insertIds: Map<string, number>;
  storedBytes: number;
  oldestEntryTime: number | null;
  /** Bumped by every metadata change; the etag is derived from it. */
  metadataRevision: number;
  timePartitioning?: Record<string, unknown>;
  clustering?: { fields: string[] };
  description?: string;
  /** What insertAll validates against until `streamingSchemaUntil` (propagation delay). */
  streamingSchema: TableSchema | null;
  streamingSchemaUntil: number;
  /** insertAll answers notFound until then (just created). */
  notFoundUntil: number;
  /** Times of the successful metadata updates inside the rate-limit window. */
  updateTimes: number[];
}

interface PendingFailure {
  remaining: number;
  fault: Fault;
  table?: TableRef;
}

interface PendingDrop {
  remaining: number;
  table?: TableRef;
  afterCommit: boolean;
}

interface Outage {
  fault: Fault;
  table?: TableRef;
  until?: number | (() => boolean);
}

interface Bucket {
  rate: number;
  capacity: number;
  tokens: number;
  last: number;
}

interface Waiter {
  check: () => boolean;
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

interface InsertOutcome {
  answer: HttpAnswer;
  storedRowCount: number;
  duplicateRowCount: number;
  insertErrorCount: number;
  throttled: boolean;
  injected: boolean;
}

interface InsertErrorEntry {
  index: number;
  errors: Array<{ reason: string; location: string; debugInfo: string; message: string }>;
}

function callKindOf(method: string, rest: string[]): CallKind | null {
  const [, datasetId, tables, tableId] = rest;
  if (datasetId === undefined) return method === 'GET' ? 'datasets.list' : method === 'POST' ? 'datasets.insert' : null;
  if (tables === undefined) return method === 'GET' ? 'datasets.get' : method === 'DELETE' ? 'datasets.delete' : null;
  if (tableId === undefined) return method === 'GET' ? 'tables.list' : method === 'POST' ? 'tables.insert' : null;
  switch (method) {
    case 'GET':
      return 'tables.get';
    case 'PATCH':
      return 'tables.patch';
    case 'PUT':
      return 'tables.update';
    case 'DELETE':
      return 'tables.delete';
    default:
      return null;
  }
}

class TestServer implements BigQueryTestServer {
  readonly requests: RecordedRequest[] = [];
  readonly httpLog: HttpLogEntry[] = [];
  url = '';
  port = 0;

  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly datasets = new Map<string, DatasetState>();
  private readonly events = new EventEmitter();
  private readonly waiters = new Set<Waiter>();
  private readonly now: () => number;
  private readonly dedupWindowMs: number;
  private readonly maxRequestBytes: number;
  private readonly frontendMaxRequestBytes: number;
  private readonly maxRowsPerRequest: number;
  private readonly maxRowBytes: number;

  private failures: PendingFailure[] = [];
  private drops: PendingDrop[] = [];
  private outage: Outage | null = null;
  private rowFaultFn: RowFaultFn | null = null;
  private rowRejectFn: RowRejectFn | null = null;
  private latencyMs = 0;
  private latencyAfterCommit = false;
  /** Per-table latency (setLatency with a table): replaces the server-wide one for that table. */
  private tableLatency = new Map<string, { ms: number; afterCommit: boolean }>();
  private rowBucket: Bucket | null = null;
  private requestBucket: Bucket | null = null;
  private throttled = 0;
  private readonly denied = new Map<string, string>();
  private closed = false;
  private schemaPropagationDelayMs: number;
  private notFoundAfterCreateMs: number;
  private readonly tableUpdateLimit: TableUpdateLimit | null;
  private readonly calls = new Map<CallKind, number>();

  constructor(options: BigQueryTestServerOptions) {
    this.now = options.now ?? Date.now;
    this.dedupWindowMs = options.dedupWindowMs ?? 60_000;
    this.maxRequestBytes = options.maxRequestBytes ?? 10 * MiB;
    this.frontendMaxRequestBytes = options.frontendMaxRequestBytes ?? 50 * MiB;
    this.maxRowsPerRequest = options.maxRowsPerRequest ?? 50_000;
    this.maxRowBytes = options.maxRowBytes ?? 10 * MiB;
    this.schemaPropagationDelayMs = options.schemaPropagationDelayMs ?? 0;
    this.notFoundAfterCreateMs = options.notFoundAfterCreateMs ?? 0;
    this.tableUpdateLimit = options.tableUpdateLimit === undefined ? { updates: 5, windowMs: 10_000 } : options.tableUpdateLimit;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          this.send(res, errorAnswer(500, 'internalError', `Test server failure: ${String(error)}`));
        }
      });
    });
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.events.setMaxListeners(0);
  }

  async listen(port: number, host: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    this.port = address.port;
    this.url = `http://${host}:${address.port}`;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('BigQuery test server closed'));
    }
    this.waiters.clear();
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closing;
  }

  // ------------------------------------------------------------------ data API

  createDataset(ref: DatasetRef): void {
    const key = datasetKey(ref);
    if (!this.datasets.has(key)) {
      this.datasets.set(key, { ref: { ...ref }, creationTime: this.now(), tables: new Map() });
    }
  }

  createTable(ref: TableRef, schema: TableSchema): void {
    this.createDataset(ref);
    const dataset = this.requireDataset(ref);
    if (dataset.tables.has(ref.tableId)) throw new Error(`Table ${tableKey(ref)} already exists`);
    dataset.tables.set(ref.tableId, this.newTable(ref, normalizeSchema(schema)));
  }

  setSchema(ref: TableRef, schema: TableSchema): void {
    const table = this.findTable(ref);
    if (!table) throw new Error(`Table ${tableKey(ref)} does not exist`);
    table.schema = normalizeSchema(schema);
    table.streamingSchema = null;
    table.metadataRevision += 1;
    table.lastModifiedTime = this.now();
  }

  deleteTable(ref: TableRef): void {
    this.datasets.get(datasetKey(ref))?.tables.delete(ref.tableId);
  }

  hasTable(ref: TableRef): boolean {
    return this.findTable(ref) !== undefined;
  }

  tableInfo(ref: TableRef): TableInfo | undefined {
    const table = this.findTable(ref);
    if (!table) return undefined;
    const info: TableInfo = { schema: structuredClone(table.schema), etag: this.etagOf(table) };
    if (table.timePartitioning) info.timePartitioning = structuredClone(table.timePartitioning);
    if (table.clustering) info.clustering = structuredClone(table.clustering);
    if (table.description !== undefined) info.description = table.description;
    return info;
  }

  streamingSchema(ref: TableRef): TableSchema | undefined {
    const table = this.findTable(ref);
    return table ? structuredClone(this.streamingView(table)) : undefined;
  }

  callCount(kind: CallKind): number {
    return this.calls.get(kind) ?? 0;
  }

  resetCallCounts(): void {
    this.calls.clear();
  }

  setSchemaPropagationDelay(ms: number): void {
    this.schemaPropagationDelayMs = Math.max(0, ms);
  }

  setNotFoundAfterCreate(ms: number): void {
    this.notFoundAfterCreateMs = Math.max(0, ms);
  }

  rows(ref: TableRef): StoredRow[] {
    return (this.findTable(ref)?.rows ?? []).map((row) => ({ ...row }));
  }

  tableSchema(ref: TableRef): TableSchema | undefined {
    const table = this.findTable(ref);
    return table ? structuredClone(table.schema) : undefined;
  }

  storeRows(ref: TableRef, rows: Array<Record<string, unknown>>): void {
    const table = this.findTable(ref);
    if (!table) throw new Error(`Table ${tableKey(ref)} does not exist`);
    const now = this.now();
    for (const row of rows) {
      table.rows.push({ json: structuredClone(row) });
      table.storedBytes += Buffer.byteLength(JSON.stringify(row));
    }
    if (rows.length > 0) {
      table.oldestEntryTime ??= now;
      table.lastModifiedTime = now;
      this.notifyWaiters();
    }
  }

  waitForRows(ref: TableRef, count: number, timeoutMs: number): Promise<void> {
    return this.waitFor(
      () => (this.findTable(ref)?.rows.length ?? 0) >= count,
      timeoutMs,
      () => `waitForRows(${tableKey(ref)}, ${count}) timed out after ${timeoutMs} ms with ${this.findTable(ref)?.rows.length ?? 0} rows`,
    );
  }

  clearRequests(): void {
    this.requests.length = 0;
    this.httpLog.length = 0;
  }

  waitForRequests(count: number, timeoutMs: number): Promise<void> {
    return this.waitFor(
      () => this.requests.length >= count,
      timeoutMs,
      () => `waitForRequests(${count}) timed out after ${timeoutMs} ms with ${this.requests.length} requests`,
    );
  }

  // ------------------------------------------------------------------ fault API

  failNext(n: number, fault: Fault, options: TableFilter = {}): void {
    if (n > 0) this.failures.push({ remaining: n, fault: { ...fault }, table: options.table });
  }

  setOutage(fault: Fault | null, options: OutageOptions = {}): void {
    this.outage = fault === null ? null : { fault: { ...fault }, table: options.table, until: options.until };
  }

  failUntil(until: number | (() => boolean), fault: Fault, options: TableFilter = {}): void {
    this.setOutage(fault, { ...options, until });
  }

  rejectRow(fn: RowRejectFn | null): void {
    this.rowRejectFn = fn;
  }

  rowFault(fn: RowFaultFn | null): void {
    this.rowFaultFn = fn;
  }

  setLatency(ms: number, options: LatencyOptions = {}): void {
    const afterCommit = options.afterCommit ?? false;
    if (options.table !== undefined) {
      this.tableLatency.set(tableKey(options.table), { ms: Math.max(0, ms), afterCommit });
      return;
    }
    this.latencyMs = Math.max(0, ms);
    this.latencyAfterCommit = afterCommit;
  }

  dropNext(n: number, options: DropOptions = {}): void {
    if (n > 0) this.drops.push({ remaining: n, table: options.table, afterCommit: options.afterCommit ?? false });
  }

  throttle(options: ThrottleOptions | null): void {
    const now = this.now();
    const bucket = (rate: number | undefined, burst: number | undefined): Bucket | null => {
      if (rate === undefined || rate <= 0) return null;
      const capacity = Math.max(1, burst ?? rate);
      return { rate, capacity, tokens: capacity, last: now };
    };
    this.rowBucket = options ? bucket(options.rowsPerSecond, options.burstRows) : null;
    this.requestBucket = options ? bucket(options.requestsPerSecond, options.burstRequests) : null;
  }

  get throttledCount(): number {
    return this.throttled;
  }

  denyTable(ref: TableRef, reason = 'accessDenied'): void {
    this.denied.set(tableKey(ref), reason);
  }

  allowTable(ref: TableRef): void {
    this.denied.delete(tableKey(ref));
  }

  resetFaults(): void {
    this.failures = [];
    this.drops = [];
    this.outage = null;
    this.rowFaultFn = null;
    this.rowRejectFn = null;
    this.latencyMs = 0;
    this.latencyAfterCommit = false;
    this.tableLatency.clear();
    this.rowBucket = null;
    this.requestBucket = null;
    this.denied.clear();
  }

  // ------------------------------------------------------------------ internals

  private newTable(ref: TableRef, schema: TableSchema): TableState {
    const now = this.now();
    return {
      ref: { ...ref },
      schema,
      creationTime: now,
      lastModifiedTime: now,
      rows: [],
      insertIds: new Map(),
      storedBytes: 0,
      oldestEntryTime: null,
      metadataRevision: 0,
      streamingSchema: null,
      streamingSchemaUntil: 0,
      notFoundUntil: 0,
      updateTimes: [],
    };
  }

  private etagOf(table: TableState): string {
    return Buffer.from(`${table.creationTime}.${table.metadataRevision}`).toString('base64');
  }

  /** The schema insertAll sees: the one before the last change until the change has propagated. */
  private streamingView(table: TableState): TableSchema {
    if (table.streamingSchema !== null && this.now() < table.streamingSchemaUntil) return table.streamingSchema;
    table.streamingSchema = null;
    return table.schema;
  }

  private count(kind: CallKind): void {
    this.calls.set(kind, (this.calls.get(kind) ?? 0) + 1);
  }

  /** tables.patch / tables.update: etag precondition, rate limit, then BigQuery's schema rules. */
  private updateTable(table: TableState, body: unknown, ifMatch: string | undefined): HttpAnswer {
    if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== this.etagOf(table)) {
      return errorAnswer(412, 'conditionNotMet', 'Precondition check failed.');
    }
    const now = this.now();
    const limit = this.tableUpdateLimit;
    if (limit) {
      table.updateTimes = table.updateTimes.filter((t) => now - t < limit.windowMs);
      if (table.updateTimes.length >= limit.updates) {
        return errorAnswer(
          403,
          'rateLimitExceeded',
          'Exceeded rate limits: too many table update operations for this table. For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas',
        );
      }
    }
    if (!isRecord(body)) return errorAnswer(400, 'invalid', 'Invalid table resource.');
    let schema: TableSchema | undefined;
    if (body['schema'] !== undefined) {
      try {
        schema = normalizeSchema(body['schema']);
      } catch (error) {
        if (error instanceof SchemaError) return errorAnswer(400, 'invalid', error.message);
        throw error;
      }
      const problem = schemaUpdateProblem(table.schema.fields, schema.fields, '');
      if (problem) return errorAnswer(400, 'invalid', `Provided Schema does not match Table ${tableKey(table.ref)}. ${problem}`);
    }
    if (schema !== undefined && JSON.stringify(schema) !== JSON.stringify(table.schema)) {
      if (this.schemaPropagationDelayMs > 0) {
        table.streamingSchema = this.streamingView(table);
        table.streamingSchemaUntil = now + this.schemaPropagationDelayMs;
      }
      table.schema = schema;
    }
    if (typeof body['description'] === 'string') table.description = body['description'];
    table.metadataRevision += 1;
    table.lastModifiedTime = now;
    table.updateTimes.push(now);
    return jsonAnswer(200, this.tableResource(table));
  }

  private requireDataset(ref: DatasetRef): DatasetState {
    const dataset = this.datasets.get(datasetKey(ref));
    if (!dataset) throw new Error(`Dataset ${datasetKey(ref)} does not exist`);
    return dataset;
  }

  private findTable(ref: TableRef): TableState | undefined {
    return this.datasets.get(datasetKey(ref))?.tables.get(ref.tableId);
  }

  private waitFor(check: () => boolean, timeoutMs: number, describeTimeout: () => string): Promise<void> {
    if (check()) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('BigQuery test server closed'));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        check,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new Error(describeTimeout()));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  private notifyWaiters(): void {
    for (const waiter of [...this.waiters]) {
      if (waiter.check()) {
        clearTimeout(waiter.timer);
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  private delay(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }

  private send(res: ServerResponse, answer: HttpAnswer): void {
    if (res.destroyed || res.headersSent) return;
    if (answer.body === null) {
      res.writeHead(answer.status);
      res.end();
      return;
    }
    const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    res.writeHead(answer.status, {
      'content-type': answer.contentType ?? 'application/json; charset=UTF-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  private async readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const encoding = (req.headers['content-encoding'] ?? '').toLowerCase();
    if (encoding === 'gzip') return gunzipSync(raw);
    if (encoding === 'deflate') return inflateSync(raw);
    return raw;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const timestamp = this.now();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    const logEntry: HttpLogEntry = { method, path: url.pathname, status: null, timestamp };
    this.httpLog.push(logEntry);
    let body: Buffer;
    try {
      body = await this.readBody(req);
    } catch (error) {
      logEntry.status = 400;
      this.send(res, errorAnswer(400, 'parseError', `Could not decode request body: ${String(error)}`));
      return;
    }
    const segments = url.pathname
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
    // bigquery / v2 / projects / P / datasets / D / tables / T / insertAll
    if (segments[0] !== 'bigquery' || segments[1] !== 'v2' || segments[2] !== 'projects' || segments[3] === undefined) {
      logEntry.status = 404;
      this.send(res, errorAnswer(404, 'notFound', `Not found: URL ${url.pathname}`));
      return;
    }
    const projectId = segments[3];
    const rest = segments.slice(4);

    if (rest[0] === 'datasets' && rest[2] === 'tables' && rest[3] !== undefined && rest[4] === 'insertAll' && rest.length === 5 && rest[1] !== undefined) {
      if (method !== 'POST') {
        logEntry.status = 405;
        this.send(res, errorAnswer(405, 'badRequest', 'Method not allowed'));
        return;
      }
      const ref: TableRef = { projectId, datasetId: rest[1], tableId: rest[3] };
      this.count('tabledata.insertAll');
      logEntry.status = await this.handleInsertAll(ref, body, req, res, timestamp);
      return;
    }

    const ifMatch = req.headers['if-match'];
    const answer = this.route(method, projectId, rest, body, url, typeof ifMatch === 'string' ? ifMatch : undefined);
    logEntry.status = answer.status;
    this.send(res, answer);
  }

  // ------------------------------------------------------------------ metadata endpoints

  private route(method: string, projectId: string, rest: string[], body: Buffer, url: URL, ifMatch: string | undefined): HttpAnswer {
    const kind = callKindOf(method, rest);
    if (kind) this.count(kind);
    const parseJson = (): { ok: true; value: unknown } | { ok: false; answer: HttpAnswer } => {
      if (body.length === 0) return { ok: true, value: {} };
      try {
        return { ok: true, value: JSON.parse(body.toString('utf8')) as unknown };
      } catch (error) {
        return { ok: false, answer: errorAnswer(400, 'parseError', `Invalid JSON payload received. ${String(error)}`) };
      }
    };
    const [r0, datasetId, r2, tableId, ...more] = rest;
    if (r0 !== 'datasets' || more.length > 0) {
      return errorAnswer(404, 'notFound', `Not found: URL /projects/${projectId}/${rest.join('/')}`);
    }
    if (datasetId === undefined) {
      if (method === 'GET') return jsonAnswer(200, this.datasetList(projectId));
      if (method === 'POST') {
        const parsed = parseJson();
        if (!parsed.ok) return parsed.answer;
        return this.insertDataset(projectId, parsed.value);
      }
      return errorAnswer(405, 'badRequest', 'Method not allowed');
    }
    const dsRef: DatasetRef = { projectId, datasetId };
    const dataset = this.datasets.get(datasetKey(dsRef));
    if (r2 === undefined) {
      if (!dataset) return errorAnswer(404, 'notFound', `Not found: Dataset ${projectId}:${datasetId}`);
      if (method === 'GET') return jsonAnswer(200, this.datasetResource(dataset));
      if (method === 'DELETE') {
        if (dataset.tables.size > 0 && url.searchParams.get('deleteContents') !== 'true') {
          return errorAnswer(400, 'resourceInUse', `Dataset ${projectId}:${datasetId} is still in use`);
        }
        this.datasets.delete(datasetKey(dsRef));
        return { status: 204, body: null, reason: null };
      }
      return errorAnswer(405, 'badRequest', 'Method not allowed');
    }
    if (r2 !== 'tables') return errorAnswer(404, 'notFound', `Not found: URL /projects/${projectId}/${rest.join('/')}`);
    if (!dataset) return errorAnswer(404, 'notFound', `Not found: Dataset ${projectId}:${datasetId}`);
    if (tableId === undefined) {
      if (method === 'GET') return jsonAnswer(200, this.tableList(dataset));
      if (method === 'POST') {
        const parsed = parseJson();
        if (!parsed.ok) return parsed.answer;
        return this.insertTable(dataset, parsed.value);
      }
      return errorAnswer(405, 'badRequest', 'Method not allowed');
    }
    const ref: TableRef = { projectId, datasetId, tableId };
    const table = dataset.tables.get(tableId);
    if (!table) return errorAnswer(404, 'notFound', `Not found: Table ${tableKey(ref)}`);
    const deniedReason = this.denied.get(tableKey(ref));
    if (deniedReason !== undefined) return errorAnswer(403, deniedReason, defaultMessage(deniedReason, ref));
    if (method === 'GET') return jsonAnswer(200, this.tableResource(table));
    if (method === 'DELETE') {
      dataset.tables.delete(tableId);
      return { status: 204, body: null, reason: null };
    }
    if (method === 'PATCH' || method === 'PUT') {
      const parsed = parseJson();
      if (!parsed.ok) return parsed.answer;
      return this.updateTable(table, parsed.value, ifMatch);
    }
    return errorAnswer(405, 'badRequest', 'Method not allowed');
  }

  private insertDataset(projectId: string, body: unknown): HttpAnswer {
    const reference = isRecord(body) && isRecord(body['datasetReference']) ? body['datasetReference'] : null;
    const datasetId = reference && typeof reference['datasetId'] === 'string' ? reference['datasetId'] : null;
    if (!datasetId) return errorAnswer(400, 'invalid', 'Missing required field: datasetReference.datasetId.');
    const ref: DatasetRef = { projectId, datasetId };
    if (this.datasets.has(datasetKey(ref))) {
      return errorAnswer(409, 'duplicate', `Already Exists: Dataset ${projectId}:${datasetId}`);
    }
    this.createDataset(ref);
    return jsonAnswer(200, this.datasetResource(this.requireDataset(ref)));
  }

  private insertTable(dataset: DatasetState, body: unknown): HttpAnswer {
    const reference = isRecord(body) && isRecord(body['tableReference']) ? body['tableReference'] : null;
    const tableId = reference && typeof reference['tableId'] === 'string' ? reference['tableId'] : null;
    if (!tableId || !isRecord(body)) return errorAnswer(400, 'invalid', 'Missing required field: tableReference.tableId.');
    const ref: TableRef = { ...dataset.ref, tableId };
    if (dataset.tables.has(tableId)) return errorAnswer(409, 'duplicate', `Already Exists: Table ${tableKey(ref)}`);
    let schema: TableSchema;
    try {
      schema = body['schema'] === undefined ? { fields: [] } : normalizeSchema(body['schema']);
    } catch (error) {
      if (error instanceof SchemaError) return errorAnswer(400, 'invalid', error.message);
      throw error;
    }
    const problem = layoutProblem(schema, body['timePartitioning'], body['clustering']);
    if (problem) return errorAnswer(400, 'invalid', problem);
    const table = this.newTable(ref, schema);
    if (isRecord(body['timePartitioning'])) table.timePartitioning = structuredClone(body['timePartitioning']);
    if (isRecord(body['clustering'])) table.clustering = { fields: [...(body['clustering']['fields'] as string[])] };
    if (typeof body['description'] === 'string') table.description = body['description'];
    table.notFoundUntil = table.creationTime + this.notFoundAfterCreateMs;
    dataset.tables.set(tableId, table);
    return jsonAnswer(200, this.tableResource(table));
  }

  private datasetResource(dataset: DatasetState): Record<string, unknown> {
    const { projectId, datasetId } = dataset.ref;
    return {
      kind: 'bigquery#dataset',
      etag: `"${dataset.creationTime.toString(36)}"`,
      id: `${projectId}:${datasetId}`,
      selfLink: `${this.url}/bigquery/v2/projects/${projectId}/datasets/${datasetId}`,
      datasetReference: { projectId, datasetId },
      location: 'US',
      creationTime: String(dataset.creationTime),
      lastModifiedTime: String(dataset.creationTime),
      type: 'DEFAULT',
    };
  }

  private datasetList(projectId: string): Record<string, unknown> {
    const datasets = [...this.datasets.values()]
      .filter((d) => d.ref.projectId === projectId)
      .map((d) => ({
        kind: 'bigquery#dataset',
        id: `${d.ref.projectId}:${d.ref.datasetId}`,
        datasetReference: { ...d.ref },
        location: 'US',
        type: 'DEFAULT',
      }));
    return { kind: 'bigquery#datasetList', etag: '"list"', datasets };
  }

  private tableResource(table: TableState): Record<string, unknown> {
    const { projectId, datasetId, tableId } = table.ref;
    const resource: Record<string, unknown> = {
      kind: 'bigquery#table',
      etag: this.etagOf(table),
      id: `${projectId}:${datasetId}.${tableId}`,
      selfLink: `${this.url}/bigquery/v2/projects/${projectId}/datasets/${datasetId}/tables/${tableId}`,
      tableReference: { projectId, datasetId, tableId },
      schema: structuredClone(table.schema),
      numBytes: '0',
      numLongTermBytes: '0',
      numRows: '0',
      creationTime: String(table.creationTime),
      lastModifiedTime: String(table.lastModifiedTime),
      type: 'TABLE',
      location: 'US',
    };
    if (table.timePartitioning) resource['timePartitioning'] = structuredClone(table.timePartitioning);
    if (table.clustering) resource['clustering'] = structuredClone(table.clustering);
    if (table.description !== undefined) resource['description'] = table.description;
    if (table.rows.length > 0) {
      // Streamed rows live in the streaming buffer, not in numRows, until BigQuery flushes them.
      resource['streamingBuffer'] = {
        estimatedBytes: String(table.storedBytes),
        estimatedRows: String(table.rows.length),
        oldestEntryTime: String(table.oldestEntryTime ?? table.creationTime),
      };
    }
    return resource;
  }

  private tableList(dataset: DatasetState): Record<string, unknown> {
    const tables = [...dataset.tables.values()].map((t) => ({
      kind: 'bigquery#table',
      id: `${t.ref.projectId}:${t.ref.datasetId}.${t.ref.tableId}`,
      tableReference: { ...t.ref },
      type: 'TABLE',
      creationTime: String(t.creationTime),
    }));
    return { kind: 'bigquery#tableList', etag: '"list"', tables, totalItems: tables.length };
  }

  // ------------------------------------------------------------------ insertAll

  private takeDrop(ref: TableRef): PendingDrop | null {
    const drop = this.drops.find((d) => d.remaining > 0 && (d.table === undefined || sameTable(d.table, ref)));
    if (!drop) return null;
    drop.remaining -= 1;
    this.drops = this.drops.filter((d) => d.remaining > 0);
    return drop;
  }

  private takeFailure(ref: TableRef): Fault | null {
    const failure = this.failures.find((f) => f.remaining > 0 && (f.table === undefined || sameTable(f.table, ref)));
    if (!failure) return null;
    failure.remaining -= 1;
    this.failures = this.failures.filter((f) => f.remaining > 0);
    return failure.fault;
  }

  private activeOutage(ref: TableRef): Fault | null {
    const outage = this.outage;
    if (!outage) return null;
    if (outage.until !== undefined) {
      const over = typeof outage.until === 'number' ? this.now() >= outage.until : outage.until();
      if (over) {
        this.outage = null;
        return null;
      }
    }
    if (outage.table !== undefined && !sameTable(outage.table, ref)) return null;
    return outage.fault;
  }

  private admitThrottle(rowCount: number): boolean {
    const now = this.now();
    const refill = (bucket: Bucket): void => {
      bucket.tokens = Math.min(bucket.capacity, bucket.tokens + ((now - bucket.last) / 1000) * bucket.rate);
      bucket.last = now;
    };
    if (this.rowBucket) refill(this.rowBucket);
    if (this.requestBucket) refill(this.requestBucket);
    if (this.rowBucket && this.rowBucket.tokens < rowCount) return false;
    if (this.requestBucket && this.requestBucket.tokens < 1) return false;
    if (this.rowBucket) this.rowBucket.tokens -= rowCount;
    if (this.requestBucket) this.requestBucket.tokens -= 1;
    return true;
  }

  private async handleInsertAll(ref: TableRef, body: Buffer, req: IncomingMessage, res: ServerResponse, timestamp: number): Promise<number | null> {
    const record: RecordedRequest = {
      table: { ...ref },
      insertIds: [],
      rowCount: 0,
      status: null,
      reason: null,
      storedRowCount: 0,
      duplicateRowCount: 0,
      insertErrorCount: 0,
      skipInvalidRows: false,
      ignoreUnknownValues: false,
      throttled: false,
      injected: false,
      clientAborted: false,
      timestamp,
      completedAt: timestamp,
    };
    let parsed: unknown;
    let parseError: string | null = null;
    try {
      parsed = JSON.parse(body.toString('utf8')) as unknown;
    } catch (error) {
      parseError = String(error);
    }
    if (isRecord(parsed)) {
      const rows = Array.isArray(parsed['rows']) ? (parsed['rows'] as unknown[]) : [];
      record.rowCount = rows.length;
      record.insertIds = rows.map((row) => (isRecord(row) && typeof row['insertId'] === 'string' ? row['insertId'] : undefined));
      record.skipInvalidRows = parsed['skipInvalidRows'] === true;
      record.ignoreUnknownValues = parsed['ignoreUnknownValues'] === true;
    }

    const perTable = this.tableLatency.get(tableKey(ref));
    const latencyMs = perTable?.ms ?? this.latencyMs;
    const latencyAfterCommit = perTable?.afterCommit ?? this.latencyAfterCommit;
    if (latencyMs > 0 && !latencyAfterCommit) await this.delay(latencyMs);
    if (this.closed) return null;

    const finish = (status: number | null): number | null => {
      record.status = status;
      record.completedAt = this.now();
      record.clientAborted = req.socket.destroyed && status !== null;
      this.requests.push(record);
      this.notifyWaiters();
      return status;
    };

    const drop = this.takeDrop(ref);
    if (drop && !drop.afterCommit) {
      record.injected = true;
      req.socket.destroy();
      return finish(null);
    }

    const outcome =
      parseError !== null
        ? {
            answer: errorAnswer(400, 'parseError', `Invalid JSON payload received. ${parseError}`),
            storedRowCount: 0,
            duplicateRowCount: 0,
            insertErrorCount: 0,
            throttled: false,
            injected: false,
          }
        : this.processInsertAll(ref, parsed, body.length);
    record.storedRowCount = outcome.storedRowCount;
    record.duplicateRowCount = outcome.duplicateRowCount;
    record.insertErrorCount = outcome.insertErrorCount;
    record.throttled = outcome.throttled;
    record.injected = outcome.injected;
    record.reason = outcome.answer.reason;
    if (outcome.storedRowCount > 0) this.notifyWaiters();

    if (drop) {
      record.injected = true;
      req.socket.destroy();
      return finish(null);
    }
    if (latencyMs > 0 && latencyAfterCommit) await this.delay(latencyMs);
    if (this.closed) return null;
    const status = finish(outcome.answer.status);
    this.send(res, outcome.answer);
    return status;
  }

  private processInsertAll(ref: TableRef, parsed: unknown, byteLength: number): InsertOutcome {
    const plain = (answer: HttpAnswer, extra: Partial<InsertOutcome> = {}): InsertOutcome => ({
      answer,
      storedRowCount: 0,
      duplicateRowCount: 0,
      insertErrorCount: 0,
      throttled: false,
      injected: false,
      ...extra,
    });
    const fault = this.takeFailure(ref) ?? this.activeOutage(ref);
    if (fault) {
      return plain(errorAnswer(fault.status, fault.reason, fault.message ?? defaultMessage(fault.reason, ref)), { injected: true });
    }
    if (byteLength > this.frontendMaxRequestBytes) {
      return plain({
        status: 413,
        contentType: 'text/html; charset=UTF-8',
        body: '<!DOCTYPE html>\n<html lang=en><title>Error 413 (Request Entity Too Large)!!1</title><p><b>413.</b> <ins>That’s an error.</ins><p>Your client issued a request that was too large. <ins>That’s all we know.</ins></html>',
        reason: null,
      });
    }
    if (byteLength > this.maxRequestBytes) {
      return plain(errorAnswer(400, 'badRequest', `Request payload size exceeds the limit: ${this.maxRequestBytes} bytes.`));
    }
    if (!isRecord(parsed)) return plain(errorAnswer(400, 'parseError', 'Invalid JSON payload received. Expected an object.'));
    const rows = parsed['rows'];
    if (rows !== undefined && !Array.isArray(rows)) {
      return plain(errorAnswer(400, 'invalid', "Invalid value at 'rows': expected a list."));
    }
    if (rows === undefined || rows.length === 0) return plain(errorAnswer(400, 'invalid', 'No rows present in the request.'));
    if (rows.length > this.maxRowsPerRequest) {
      return plain(errorAnswer(400, 'invalid', `too many rows present in the request, limit: ${this.maxRowsPerRequest} row count: ${rows.length}.`));
    }
    const dataset = this.datasets.get(datasetKey(ref));
    if (!dataset) return plain(errorAnswer(404, 'notFound', `Not found: Dataset ${ref.projectId}:${ref.datasetId}`));
    const table = dataset.tables.get(ref.tableId);
    if (!table || this.now() < table.notFoundUntil) return plain(errorAnswer(404, 'notFound', `Not found: Table ${tableKey(ref)}`));
    const deniedReason = this.denied.get(tableKey(ref));
    if (deniedReason !== undefined) {
      return plain(errorAnswer(403, deniedReason, defaultMessage(deniedReason, ref)), { injected: true });
    }
    if (!this.admitThrottle(rows.length)) {
      this.throttled += 1;
      return plain(errorAnswer(403, 'rateLimitExceeded', defaultMessage('rateLimitExceeded', ref)), { throttled: true });
    }
    return this.applyRows(table, rows, parsed['skipInvalidRows'] === true, parsed['ignoreUnknownValues'] === true);
  }

  private applyRows(table: TableState, rows: unknown[], skipInvalidRows: boolean, ignoreUnknownValues: boolean): InsertOutcome {
    interface Checked {
      insertId: string | undefined;
      cleaned: Record<string, unknown> | null;
      invalid: CellError[];
      fault: RowFaultReason | null;
      bytes: number;
    }
    const streamingFields = this.streamingView(table).fields;
    const checked: Checked[] = rows.map((row, index): Checked => {
      if (!isRecord(row) || (row['json'] !== undefined && !isRecord(row['json']))) {
        return { insertId: undefined, cleaned: null, invalid: [{ location: '', message: 'Row is not a JSON object.' }], fault: null, bytes: 0 };
      }
      const insertIdRaw = row['insertId'];
      if (insertIdRaw !== undefined && typeof insertIdRaw !== 'string') {
        return { insertId: undefined, cleaned: null, invalid: [{ location: '', message: 'insertId must be a string.' }], fault: null, bytes: 0 };
      }
      const json = isRecord(row['json']) ? row['json'] : {};
      const bytes = Buffer.byteLength(JSON.stringify(json));
      if (bytes > this.maxRowBytes) {
        return {
          insertId: insertIdRaw,
          cleaned: null,
          invalid: [{ location: '', message: `Maximum allowed row size exceeded. Allowed: ${this.maxRowBytes} Row size: ${bytes}` }],
          fault: null,
          bytes,
        };
      }
      const result = checkRecord(json, streamingFields, '', ignoreUnknownValues);
      const stored: StoredRow = insertIdRaw === undefined ? { json: result.cleaned } : { insertId: insertIdRaw, json: result.cleaned };
      const rejected = result.errors.length === 0 && this.rowRejectFn ? this.rowRejectFn(structuredClone(stored), { ...table.ref }, index) : null;
      if (rejected) result.errors.push(rejected);
      const fault = result.errors.length === 0 && this.rowFaultFn ? this.rowFaultFn(structuredClone(stored), { ...table.ref }, index) : null;
      return { insertId: insertIdRaw, cleaned: result.cleaned, invalid: result.errors, fault, bytes };
    });

    const anyInvalid = checked.some((c) => c.invalid.length > 0);
    const stopAll = anyInvalid && !skipInvalidRows;
    const insertErrors: InsertErrorEntry[] = [];
    let stored = 0;
    let duplicates = 0;
    const now = this.now();
    checked.forEach((c, index) => {
      if (c.invalid.length > 0) {
        insertErrors.push({
          index,
          errors: c.invalid.map((e) => ({ reason: 'invalid', location: e.location, debugInfo: '', message: e.message })),
        });
        return;
      }
      if (c.fault !== null) {
        insertErrors.push({ index, errors: [{ reason: c.fault, location: '', debugInfo: '', message: '' }] });
        return;
      }
      if (stopAll) {
        insertErrors.push({ index, errors: [{ reason: 'stopped', location: '', debugInfo: '', message: '' }] });
        return;
      }
      if (c.insertId !== undefined && c.insertId !== '') {
        const seenAt = table.insertIds.get(c.insertId);
        if (seenAt !== undefined && now - seenAt < this.dedupWindowMs) {
          duplicates += 1;
          return;
        }
        table.insertIds.set(c.insertId, now);
      }
      const json = structuredClone(c.cleaned ?? {});
      table.rows.push(c.insertId === undefined ? { json } : { insertId: c.insertId, json });
      table.storedBytes += c.bytes;
      table.oldestEntryTime ??= now;
      stored += 1;
    });
    if (stored > 0) table.lastModifiedTime = now;
    const body: Record<string, unknown> = { kind: INSERT_ALL_KIND };
    if (insertErrors.length > 0) body['insertErrors'] = insertErrors;
    return {
      answer: jsonAnswer(200, body),
      storedRowCount: stored,
      duplicateRowCount: duplicates,
      insertErrorCount: insertErrors.length,
      throttled: false,
      injected: checked.some((c) => c.fault !== null),
    };
  }
}

export async function startBigQueryTestServer(options: BigQueryTestServerOptions = {}): Promise<BigQueryTestServer> {
  const server = new TestServer(options);
  await server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  return server;
}
