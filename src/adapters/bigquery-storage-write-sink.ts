import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { BigQueryWriteClient } from '@google-cloud/bigquery-storage';
import { TributaryError, type ErrorCode } from '../errors.js';
import type { PreparedRow, RowFailure, Sink, SinkLimits, WriteOutcome } from '../core/sink.js';
import type { Row, TableRef, TableSchema } from '../core/table-schema.js';
import { formatTableRef } from '../core/table-schema.js';
import { BigQuerySink } from './bigquery-sink.js';
import { createStorageRowEncoder, storageRowSizeBound, type StorageRowEncoder } from './storage-row-encoder.js';
import { StorageWriteConnection, StreamFailure, type AppendResponse } from './storage-write-connection.js';

export interface StorageWriteSinkOptions {
  projectId: string;
  /** REST endpoint for table schemas (`bigquery.apiEndpoint`); unset: Google's. */
  apiEndpoint?: string | undefined;
  /** `host:port` of a plaintext gRPC endpoint without authentication (`bigquery.storageApiEndpoint`). */
  storageApiEndpoint?: string | undefined;
  /** How long one append (or one schema read) may take before it counts as failed. */
  timeoutMs: number;
  /** Observes stream failures (logging); the sink itself reconnects on the next write. */
  onConnectionFailure?: (table: TableRef, err: Error) => void;
}

/**
 * AppendRows takes requests up to 10 MB. Batches are cut at 9 MB of (bounded) row bytes, which
 * leaves room for the writer schema and the request's own fields.
 */
const MAX_REQUEST_BYTES = 9_000_000;
const HARD_REQUEST_BYTES = 10_000_000;
/** No documented row count limit; this keeps one request's row errors and retries small. */
const MAX_REQUEST_ROWS = 10_000;
/** Each serialized row is one `bytes` entry: a tag and a length of at most 5 bytes. */
const ROW_ENVELOPE_BYTES = 6;

const GRPC = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** The grpc-js of the client's own google-gax: credentials from another copy are not accepted. */
interface GaxGrpc {
  grpc: { credentials: { createInsecure(): unknown } };
}

function insecureCredentials(): unknown {
  const requireFromClient = createRequire(createRequire(import.meta.url).resolve('@google-cloud/bigquery-storage'));
  return (requireFromClient('google-gax') as GaxGrpc).grpc.credentials.createInsecure();
}

interface TableWriter {
  readonly schemaKey: string;
  readonly encoder: StorageRowEncoder;
  connection: StorageWriteConnection;
  /** The destination reported a schema newer than this writer's: re-read it before the next write. */
  stale: boolean;
}

/** How one batch's rows fared before the append: encoded, or refused here. */
interface Encoded {
  buffers: Buffer[];
  /** Position in the batch of each encoded row. */
  positions: number[];
  failures: RowFailure[];
  bytes: number;
  /** A row has a field the writer schema lacks. */
  unknownField: boolean;
}

/**
 * The BigQuery Storage Write API's `_default` stream: committed at once, at least once, no
 * deduplication. Rows are encoded as proto2 messages by our own encoder against a writer schema
 * derived from the table schema read over REST (the one pre-validation reads).
 *
 * The generated `BigQueryWriteClient` is used directly rather than the managed writer
 * (`WriterClient`/`StreamConnection`): the managed connection reopens its stream in place and keeps
 * the appends of the old stream pending, so an answer can be matched to the wrong append after a
 * timeout; its client keeps every connection it ever made in a list (a slow leak in a worker that
 * reconnects for months); it resends the writer schema with every request; and its own retries
 * would be a second retry loop. Here one connection per table per process is reused until it
 * fails, and a failed one is replaced whole on the next write; retries belong to the route.
 */
export class BigQueryStorageWriteSink implements Sink {
  readonly name = 'storage-write';
  readonly limits: SinkLimits = { maxRequestBytes: MAX_REQUEST_BYTES, maxRequestRows: MAX_REQUEST_ROWS };
  private readonly client: BigQueryWriteClient;
  private readonly schemas: BigQuerySink;
  private readonly writers = new Map<string, Promise<TableWriter>>();

  constructor(private readonly options: StorageWriteSinkOptions) {
    const endpoint = options.storageApiEndpoint ? parseEndpoint(options.storageApiEndpoint) : undefined;
    this.client = new BigQueryWriteClient({
      projectId: options.projectId,
      ...(endpoint ? { apiEndpoint: endpoint.host, port: endpoint.port, sslCreds: insecureCredentials() as never } : {}),
    });
    this.schemas = new BigQuerySink({ projectId: options.projectId, apiEndpoint: options.apiEndpoint, timeoutMs: options.timeoutMs });
  }

  prepare(id: string, row: Row): PreparedRow {
    const bound = storageRowSizeBound(row) + ROW_ENVELOPE_BYTES;
    // The bound is loose without the table schema (a boolean counts as the text it would be in a
    // STRING column: 28 bytes for what is 2 in a BOOL column), so a row above the budget is not
    // refused here: it takes a request of its own and is judged by its encoded size in write().
    return { id, row, bytes: Math.min(bound, MAX_REQUEST_BYTES) };
  }

  getTableSchema(table: TableRef): Promise<TableSchema> {
    return this.schemas.getTableSchema(table);
  }

  async write(table: TableRef, rows: readonly PreparedRow[]): Promise<WriteOutcome> {
    let writer = await this.writerFor(table, false);
    let encoded = this.encode(writer.encoder, rows);
    if (encoded.unknownField) {
      // The table may have gained the column since this writer was made: look again, once.
      writer = await this.writerFor(table, true);
      encoded = this.encode(writer.encoder, rows);
    }
    if (encoded.buffers.length === 0) return { failures: encoded.failures, billedBytes: 0 };
    if (encoded.bytes > HARD_REQUEST_BYTES) {
      throw new TributaryError(
        'REQUEST_TOO_LARGE',
        `${formatTableRef(table)}: ${encoded.buffers.length} rows encode to ${encoded.bytes} bytes, over the append request limit`,
      );
    }

    let response: AppendResponse;
    try {
      response = await writer.connection.append(encoded.buffers, this.options.timeoutMs);
    } catch (err) {
      if (err instanceof StreamFailure) {
        // A stream closed for INVALID_ARGUMENT refused the writer schema: read the table's again.
        if (err.code === GRPC.INVALID_ARGUMENT || err.code === GRPC.NOT_FOUND) writer.stale = true;
        throw classifyAppendError(err.code, err.message, table, err);
      }
      throw new TributaryError('BIGQUERY_UNAVAILABLE', `${formatTableRef(table)}: append failed: ${String(err)}`, { cause: err });
    }
    if (response.schemaUpdated) writer.stale = true;
    if (response.error === undefined) {
      // Storage Write bills the rows' own bytes, with no minimum per row.
      return { failures: encoded.failures, billedBytes: encoded.bytes };
    }
    const failures = [...encoded.failures];
    if (response.rowErrors.length > 0) {
      // Nothing of the request was stored: the rows named are refused, the others go again at once.
      const refused = new Map<number, string>();
      for (const e of response.rowErrors) refused.set(e.index, e.message);
      encoded.positions.forEach((position, i) => {
        const reason = refused.get(i);
        failures.push(
          reason === undefined
            ? { index: position, kind: 'retry', code: 'BIGQUERY_ROW_RETRYABLE', immediate: true }
            : { index: position, kind: 'rejected', code: 'BIGQUERY_ROW_INVALID', reason },
        );
      });
      return { failures, billedBytes: 0 };
    }
    const { code, message } = response.error;
    if (code === GRPC.INVALID_ARGUMENT) {
      if (/more fields than BigQuery schema|SCHEMA_MISMATCH/i.test(message)) {
        writer.stale = true;
        throw new TributaryError(
          'BIGQUERY_UNAVAILABLE',
          `${formatTableRef(table)}: the destination does not know a column of the writer schema yet: ${message}`,
        );
      }
      if (/too large|size|exceed/i.test(message) && encoded.buffers.length > 1) {
        throw new TributaryError('REQUEST_TOO_LARGE', `${formatTableRef(table)}: ${message}`);
      }
      if (encoded.buffers.length === 1) {
        failures.push({ index: encoded.positions[0] as number, kind: 'rejected', code: 'BIGQUERY_ROW_INVALID', reason: message });
        return { failures, billedBytes: 0 };
      }
      // A request refused as a whole without naming a row: split it until the row is alone and
      // judged by itself. Halving ends; a resend of the same request would not.
      throw new TributaryError('REQUEST_TOO_LARGE', `${formatTableRef(table)}: request refused without row errors, splitting it: ${message}`);
    }
    const error = classifyAppendError(code, message, table);
    // A table that is gone may come back with another schema: read it again when it does.
    if (error.code === 'TABLE_NOT_FOUND') writer.stale = true;
    throw error;
  }

  async close(): Promise<void> {
    const writers = [...this.writers.values()];
    this.writers.clear();
    for (const pending of writers) {
      try {
        (await pending).connection.close();
      } catch {
        // A writer that never opened holds nothing.
      }
    }
    await this.client.close();
  }

  private encode(encoder: StorageRowEncoder, rows: readonly PreparedRow[]): Encoded {
    const out: Encoded = { buffers: [], positions: [], failures: [], bytes: 0, unknownField: false };
    rows.forEach((prepared, index) => {
      try {
        const buffer = encoder.encode(prepared.row);
        if (buffer.length + ROW_ENVELOPE_BYTES > MAX_REQUEST_BYTES) {
          out.failures.push({
            index,
            kind: 'rejected',
            code: 'ROW_TOO_LARGE',
            reason: `row of ${buffer.length + ROW_ENVELOPE_BYTES} encoded bytes exceeds the ${MAX_REQUEST_BYTES}-byte append request budget`,
          });
          return;
        }
        out.buffers.push(buffer);
        out.positions.push(index);
        out.bytes += buffer.length;
      } catch (err) {
        if (!(err instanceof TributaryError)) throw err;
        if (err.code === 'UNKNOWN_FIELD') out.unknownField = true;
        // What insertAll would answer for the same row: `invalid`, the field named.
        out.failures.push({
          index,
          kind: 'rejected',
          code: 'BIGQUERY_ROW_INVALID',
          reason: err.message,
          ...(err.code === 'UNKNOWN_FIELD' ? { staleSchema: true } : {}),
        });
      }
    });
    return out;
  }

  /**
   * The table's writer: reused while its connection works and its schema is current; otherwise the
   * schema is read again and a new connection opened (a new writer schema needs a new connection;
   * an unchanged schema keeps the encoder).
   */
  private async writerFor(table: TableRef, refresh: boolean): Promise<TableWriter> {
    const key = formatTableRef(table);
    const current = this.writers.get(key);
    if (current) {
      let writer: TableWriter | undefined;
      try {
        writer = await current;
      } catch {
        writer = undefined;
      }
      if (writer && !refresh && !writer.stale && writer.connection.usable) return writer;
      if (this.writers.get(key) !== current) return this.writerFor(table, false);
      const next = this.openWriter(table, writer, refresh || writer?.stale === true);
      this.writers.set(key, next);
      return next;
    }
    const next = this.openWriter(table, undefined, true);
    this.writers.set(key, next);
    return next;
  }

  private async openWriter(table: TableRef, previous: TableWriter | undefined, readSchema: boolean): Promise<TableWriter> {
    let encoder = previous?.encoder;
    let schemaKey = previous?.schemaKey ?? '';
    if (readSchema || encoder === undefined) {
      const schema = await this.getTableSchema(table);
      const key = JSON.stringify(schema.fields);
      if (encoder === undefined || key !== schemaKey) {
        encoder = createStorageRowEncoder(schema);
        schemaKey = key;
      }
    }
    if (previous && previous.encoder === encoder && previous.connection.usable) {
      previous.stale = false;
      return previous;
    }
    // Appends of other batches may still be in flight on the old stream: let them finish.
    previous?.connection.retire();
    const streamName = `projects/${table.projectId}/datasets/${table.datasetId}/tables/${table.tableId}/streams/_default`;
    const connection = new StorageWriteConnection(
      (headers) => this.client.appendRows({ otherArgs: { headers } }) as unknown as Duplex,
      streamName,
      encoder.descriptor,
      (failure) => this.options.onConnectionFailure?.(table, failure),
    );
    return { schemaKey, encoder, connection, stale: false };
  }
}

function parseEndpoint(endpoint: string): { host: string; port: number } {
  const at = endpoint.lastIndexOf(':');
  const port = Number(endpoint.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65_535) {
    throw new TributaryError('INTERNAL', `storageApiEndpoint must be host:port, got "${endpoint}"`);
  }
  return { host: endpoint.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port };
}

/** An append's gRPC status, classified like insertAll's answers: the route decides from the code. */
export function classifyAppendError(code: number, message: string, table: TableRef, cause?: unknown): TributaryError {
  let errorCode: ErrorCode;
  switch (code) {
    case GRPC.UNAVAILABLE:
    case GRPC.DEADLINE_EXCEEDED:
    case GRPC.INTERNAL:
    case GRPC.ABORTED:
    case GRPC.CANCELLED:
    case GRPC.UNKNOWN:
      errorCode = 'BIGQUERY_UNAVAILABLE';
      break;
    case GRPC.RESOURCE_EXHAUSTED:
      errorCode = 'BIGQUERY_RATE_LIMITED';
      break;
    case GRPC.NOT_FOUND:
      errorCode = 'TABLE_NOT_FOUND';
      break;
    case GRPC.PERMISSION_DENIED:
    case GRPC.UNAUTHENTICATED:
      errorCode = 'ACCESS_DENIED';
      break;
    case GRPC.INVALID_ARGUMENT:
      // Reached only for a stream closed with INVALID_ARGUMENT (an answer's is judged by write()):
      // the writer schema was refused; the next write re-reads the schema on a new connection.
      errorCode = 'BIGQUERY_UNAVAILABLE';
      break;
    default:
      // FAILED_PRECONDITION, OUT_OF_RANGE, ALREADY_EXISTS concern offsets, which the default stream has not.
      errorCode = 'INTERNAL';
  }
  return new TributaryError(errorCode, `${formatTableRef(table)}: AppendRows ${code} ${message}`.slice(0, 500), cause === undefined ? undefined : { cause });
}

export function createStorageWriteSink(options: StorageWriteSinkOptions): Sink {
  return new BigQueryStorageWriteSink(options);
}
