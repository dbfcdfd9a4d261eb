/**
 * A BigQuery Storage Write API test server: `google.cloud.bigquery.storage.v1.BigQueryWrite` over
 * plaintext gRPC, for driving the REAL `@google-cloud/bigquery-storage` 5.x client (no emulator
 * exists). Loaded from the service definitions the client package ships (build/protos/protos.json).
 *
 * Tables live in a store it shares with the REST test server (BigQueryTestServer implements
 * StorageTableStore): a table created over REST is writable here, and rows written here are read
 * back with `rest.rows(ref)` in the same JSON shape insertAll rows have (INT64 as a number, or a
 * decimal string beyond 2^53; TIMESTAMP "YYYY-MM-DDTHH:MM:SS.ffffffZ"; DATE "YYYY-MM-DD"; BYTES
 * base64; FLOAT64 NaN/Infinity as strings; every NULLABLE column absent from the message as null
 * and every REPEATED one as []), so a test compares what both write APIs stored value by value.
 *
 * BigQuery semantics modelled (AppendRows on `_default` streams only):
 * - The first request of a connection must carry the writer schema (a proto2 DescriptorProto);
 *   a later request may carry a new one. A descriptor field the table lacks closes the stream with
 *   INVALID_ARGUMENT "Input schema has more fields than BigQuery schema, extra fields: '...'"; a
 *   proto type a column cannot take closes it with INVALID_ARGUMENT too.
 * - Rows are decoded with protobufjs from that descriptor and validated with the REST server's
 *   rules (checkRowAgainstSchema), plus TIMESTAMP/DATE ranges. Any invalid row rejects the whole
 *   request: `error` INVALID_ARGUMENT and `row_errors` [{index, code: FIELDS_ERROR, message}];
 *   nothing of that request is stored.
 * - A request larger than `maxRequestBytes` (default 10 MB) gets INVALID_ARGUMENT (no row errors).
 * - Missing table → NOT_FOUND in the response; success → `append_result` with no offset.
 * - When the table has columns the connection's writer schema lacks, responses carry
 *   `updated_schema` (the table's current schema), as BigQuery reports a schema change.
 * - Responses on one connection come back in request order.
 *
 * Faults: failNext (an error in the response, or the stream closed with that status), outages,
 * broken streams (destroyed without a status, before or after the rows are stored), latency per
 * request, rows rejected by a predicate, and a throttle (requests per second beyond which appends
 * are answered RESOURCE_EXHAUSTED, as BigQuery answers a throughput quota).
 *
 * When the store also tells which schema streaming writes see (`streamingSchema`, the REST test
 * server's propagation delay), appends are judged by that one, as insertAll's are.
 */
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import type { TableField, TableRef, TableSchema } from '../../src/core/table-schema.js';
import { standardType } from '../../src/core/table-schema.js';
import { checkRowAgainstSchema } from './bigquery-test-server.js';

/** What this server needs from a table store; BigQueryTestServer provides it. */
export interface StorageTableStore {
  tableSchema(ref: TableRef): TableSchema | undefined;
  /** The schema streaming writes are judged by right now (older than tableSchema while a change propagates). */
  streamingSchema?(ref: TableRef): TableSchema | undefined;
  storeRows(ref: TableRef, rows: Array<Record<string, unknown>>): void;
}

export interface StorageFault {
  code: grpc.status;
  message?: string;
  /** `response` (default): the append's response carries the error and the stream stays open;
   * `stream`: the stream is closed with this status. */
  mode?: 'response' | 'stream';
  /** Store the rows first, then fail: an ambiguous failure (the retry duplicates them). */
  afterCommit?: boolean;
  table?: TableRef;
}

export interface BreakOptions {
  afterCommit?: boolean;
  table?: TableRef;
}

export interface StorageRecordedRequest {
  table: TableRef | null;
  connection: number;
  rowCount: number;
  bytes: number;
  /** gRPC code of the answer (0 = OK); null when the stream was broken without one. */
  code: number | null;
  message: string;
  rowErrors: Array<{ index: number; message: string }>;
  storedRowCount: number;
  injected: boolean;
  /** Answered RESOURCE_EXHAUSTED by throttle(). */
  throttled: boolean;
  updatedSchema: boolean;
  /** Arrival time (ms). */
  timestamp: number;
}

export interface StorageThrottleOptions {
  requestsPerSecond: number;
  /** Bucket size; default one second's worth (at least 1). */
  burstRequests?: number;
}

export type StorageRowRejectFn = (row: Record<string, unknown>, table: TableRef, index: number) => string | null;

export interface StorageWriteTestServerOptions {
  tables: StorageTableStore;
  host?: string;
  port?: number;
  maxRequestBytes?: number;
}

export interface StorageWriteTestServer {
  /** host:port, for `bigquery.storageApiEndpoint`. */
  readonly endpoint: string;
  readonly port: number;
  readonly requests: StorageRecordedRequest[];
  /** AppendRows streams opened so far. */
  readonly connectionCount: number;
  /** GetWriteStream calls answered so far. */
  readonly getWriteStreamCount: number;
  close(): Promise<void>;
  failNext(n: number, fault: StorageFault): void;
  setOutage(fault: StorageFault | null): void;
  breakNext(n: number, options?: BreakOptions): void;
  setLatency(ms: number): void;
  rejectRow(fn: StorageRowRejectFn | null): void;
  /** Answers appends beyond this rate RESOURCE_EXHAUSTED (null: no throttle). */
  throttle(options: StorageThrottleOptions | null): void;
  readonly throttledCount: number;
  /** Stops reporting updated_schema, as when the backend has not caught up with a change yet. */
  reportSchemaUpdates(enabled: boolean): void;
  /**
   * Makes the write path judge a table by an older schema than tables.get shows (null: catch up),
   * as BigQuery's streaming backend does for a while after a column is added.
   */
  lagSchema(table: TableRef, schema: TableSchema | null): void;
  /** Ends every open AppendRows stream with this status, as BigQuery does to idle or moved streams. */
  closeStreams(code: grpc.status, message?: string): void;
  waitForRequests(count: number, timeoutMs: number): Promise<void>;
  clearRequests(): void;
  resetFaults(): void;
}

const require = createRequire(import.meta.url);

function loadService(): grpc.ServiceDefinition {
  const clientMain = require.resolve('@google-cloud/bigquery-storage');
  const protosJson = clientMain.replace(/build[\\/]src[\\/]index\.js$/, 'build/protos/protos.json');
  const definition = protoLoader.fromJSON(require(protosJson) as protobuf.INamespace, {
    keepCase: false,
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: false,
    oneofs: true,
  });
  return definition['google.cloud.bigquery.storage.v1.BigQueryWrite'] as grpc.ServiceDefinition;
}

// ---------------------------------------------------------------------------------------------
// Request shapes (proto-loader objects, camelCase)

interface FieldDescriptorObject {
  name?: string;
  number?: number;
  label?: string;
  type?: string;
  typeName?: string;
}
interface DescriptorObject {
  name?: string;
  field?: FieldDescriptorObject[];
  nestedType?: DescriptorObject[];
}
interface AppendRequestObject {
  writeStream?: string;
  protoRows?: { writerSchema?: { protoDescriptor?: DescriptorObject }; rows?: { serializedRows?: Buffer[] } };
  /** Added by this server's deserializer. */
  byteLength?: number;
}

type AppendCall = grpc.ServerDuplexStream<AppendRequestObject, Record<string, unknown>>;

const STREAM_NAME = /^projects\/([^/]+)\/datasets\/([^/]+)\/tables\/([^/]+)\/streams\/([^/]+)$/;

function parseStream(name: string): { table: TableRef; stream: string } | null {
  const m = STREAM_NAME.exec(name);
  if (!m) return null;
  return { table: { projectId: m[1] as string, datasetId: m[2] as string, tableId: m[3] as string }, stream: m[4] as string };
}

function sameTable(a: TableRef, b: TableRef): boolean {
  return a.projectId === b.projectId && a.datasetId === b.datasetId && a.tableId === b.tableId;
}

const STORAGE_TYPES: Record<string, string> = { FLOAT64: 'DOUBLE', RECORD: 'STRUCT' };

function storageSchema(fields: TableField[]): Array<Record<string, unknown>> {
  return fields.map((f) => {
    const type = standardType(f.type);
    const out: Record<string, unknown> = { name: f.name, type: STORAGE_TYPES[type] ?? type, mode: f.mode ?? 'NULLABLE' };
    if (f.fields) out['fields'] = storageSchema(f.fields);
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// Writer schema: descriptor -> protobufjs type, checked against the table

const PROTO_TYPES: Record<string, string> = {
  TYPE_DOUBLE: 'double',
  TYPE_FLOAT: 'float',
  TYPE_INT64: 'int64',
  TYPE_UINT64: 'uint64',
  TYPE_INT32: 'int32',
  TYPE_FIXED64: 'fixed64',
  TYPE_FIXED32: 'fixed32',
  TYPE_BOOL: 'bool',
  TYPE_STRING: 'string',
  TYPE_BYTES: 'bytes',
  TYPE_UINT32: 'uint32',
  TYPE_SFIXED32: 'sfixed32',
  TYPE_SFIXED64: 'sfixed64',
  TYPE_SINT32: 'sint32',
  TYPE_SINT64: 'sint64',
};

const INTEGER_TYPES = new Set(['int64', 'uint64', 'int32', 'uint32', 'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32', 'sfixed64']);

/** Which proto types BigQuery accepts for a column type (the documented conversions used here). */
function compatible(column: string, proto: string): boolean {
  switch (column) {
    case 'INT64':
    case 'TIMESTAMP':
      return INTEGER_TYPES.has(proto) || (column === 'TIMESTAMP' && proto === 'string');
    case 'DATE':
      return proto === 'int32' || proto === 'int64' || proto === 'string';
    case 'FLOAT64':
      return proto === 'double' || proto === 'float';
    case 'BOOL':
      return proto === 'bool';
    case 'BYTES':
      return proto === 'bytes';
    case 'NUMERIC':
    case 'BIGNUMERIC':
      return proto === 'string' || proto === 'bytes' || INTEGER_TYPES.has(proto) || proto === 'double';
    case 'RECORD':
      return proto === 'message';
    default:
      return proto === 'string';
  }
}

class WriterSchemaError extends Error {}

interface WriterSchema {
  type: protobuf.Type;
  /** Table columns per message type: lower-case proto field name -> column. */
  descriptor: DescriptorObject;
}

function buildWriterSchema(descriptor: DescriptorObject, table: TableSchema): WriterSchema {
  const root = new protobuf.Root();
  const container = new protobuf.Namespace('w');
  root.add(container);
  const nested = new Map<string, DescriptorObject>();
  for (const d of descriptor.nestedType ?? []) nested.set(d.name ?? '', d);
  const built = new Map<string, protobuf.Type>();
  const build = (d: DescriptorObject, columns: TableField[], path: string): protobuf.Type => {
    const type = new protobuf.Type(`${d.name ?? 'root'}_${built.size}`);
    container.add(type);
    const byName = new Map(columns.map((c) => [c.name.toLowerCase(), c]));
    const extra: string[] = [];
    for (const f of d.field ?? []) {
      const name = f.name ?? '';
      const where = path ? `${path}.${name}` : name;
      const column = byName.get(name.toLowerCase());
      if (!column) {
        extra.push(where);
        continue;
      }
      const columnType = standardType(column.type);
      // A proto2 `required` field is decoded as optional: a missing value is BigQuery's per-row error to report.
      const rule = f.label === 'LABEL_REPEATED' ? 'repeated' : 'optional';
      if ((rule === 'repeated') !== (column.mode === 'REPEATED')) {
        throw new WriterSchemaError(
          `The proto field mismatched with BigQuery field at ${where}, the proto field mode ${rule}, BigQuery field mode ${column.mode ?? 'NULLABLE'}`,
        );
      }
      let protoType: string;
      if (f.type === 'TYPE_MESSAGE' || f.type === 'TYPE_GROUP') {
        const inner = nested.get((f.typeName ?? '').replace(/^.*\./, ''));
        if (!inner) throw new WriterSchemaError(`Invalid proto schema: type ${f.typeName ?? ''} of ${where} is not in the descriptor`);
        if (!compatible(columnType, 'message'))
          throw new WriterSchemaError(
            `The proto field mismatched with BigQuery field at ${where}, the proto field type message, BigQuery field type ${columnType}`,
          );
        protoType = build(inner, column.fields ?? [], where).name;
      } else {
        protoType = PROTO_TYPES[f.type ?? ''] ?? '';
        if (protoType === '') throw new WriterSchemaError(`Invalid proto schema: unsupported type ${f.type ?? ''} of ${where}`);
        if (!compatible(columnType, protoType)) {
          throw new WriterSchemaError(
            `The proto field mismatched with BigQuery field at ${where}, the proto field type ${protoType}, BigQuery field type ${columnType}`,
          );
        }
      }
      type.add(new protobuf.Field(name, f.number ?? 0, protoType, rule));
    }
    if (extra.length > 0) {
      throw new WriterSchemaError(`Input schema has more fields than BigQuery schema, extra fields: '${extra.join("', '")}'`);
    }
    built.set(type.name, type);
    return type;
  };
  const type = build(descriptor, table.fields, '');
  root.resolveAll();
  return { type, descriptor };
}

/** True when the table has a column (at any depth) that the writer schema does not. */
function tableHasMoreFields(descriptor: DescriptorObject, fields: TableField[]): boolean {
  const nested = new Map<string, DescriptorObject>();
  for (const d of descriptor.nestedType ?? []) nested.set(d.name ?? '', d);
  const walk = (d: DescriptorObject, columns: TableField[]): boolean => {
    const known = new Map((d.field ?? []).map((f) => [(f.name ?? '').toLowerCase(), f]));
    for (const column of columns) {
      const f = known.get(column.name.toLowerCase());
      if (!f) return true;
      if (column.fields && f.typeName) {
        const inner = nested.get(f.typeName.replace(/^.*\./, ''));
        if (inner && walk(inner, column.fields)) return true;
      }
    }
    return false;
  };
  return walk(descriptor, fields);
}

// ---------------------------------------------------------------------------------------------
// Decoded message -> the JSON row insertAll would hold

const MICROS_PER_DAY = 86_400_000_000n;
const MIN_MICROS = -62_135_596_800_000_000n;
const MAX_MICROS = 253_402_300_799_999_999n;
const MIN_DAYS = -719_162;
const MAX_DAYS = 2_932_896;

function civilFromDays(days: number): string {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

function formatMicros(micros: bigint): string {
  let days = micros / MICROS_PER_DAY;
  let rest = micros % MICROS_PER_DAY;
  if (rest < 0n) {
    rest += MICROS_PER_DAY;
    days -= 1n;
  }
  const ofDay = Number(rest);
  const seconds = Math.floor(ofDay / 1_000_000);
  const fraction = ofDay % 1_000_000;
  const hh = Math.floor(seconds / 3600);
  const mm = Math.floor((seconds % 3600) / 60);
  const ss = seconds % 60;
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${civilFromDays(Number(days))}T${pad(hh)}:${pad(mm)}:${pad(ss)}.${String(fraction).padStart(6, '0')}Z`;
}

class RowProblem extends Error {}

function integerValue(text: string): number | string {
  const big = BigInt(text);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big.toString();
}

function toJsonValue(value: unknown, column: TableField, where: string): unknown {
  const type = standardType(column.type);
  switch (type) {
    case 'RECORD':
      return toJsonRow(value as Record<string, unknown>, column.fields ?? [], where);
    case 'INT64':
      return integerValue(String(value));
    case 'TIMESTAMP': {
      if (typeof value === 'string' && !/^-?\d+$/.test(value)) return value;
      const micros = BigInt(String(value));
      if (micros < MIN_MICROS || micros > MAX_MICROS) throw new RowProblem(`Timestamp field value is out of range: ${micros} (field ${where})`);
      return formatMicros(micros);
    }
    case 'DATE': {
      if (typeof value === 'string' && !/^-?\d+$/.test(value)) return value;
      const days = Number(value);
      if (days < MIN_DAYS || days > MAX_DAYS) throw new RowProblem(`Date field value is out of range: ${days} (field ${where})`);
      return civilFromDays(days);
    }
    case 'FLOAT64': {
      const n = value as number;
      return Number.isFinite(n) ? n : String(n);
    }
    case 'BYTES':
      return Buffer.from(value as Uint8Array).toString('base64');
    case 'NUMERIC':
    case 'BIGNUMERIC':
      return typeof value === 'string' ? value : String(value);
    default:
      return value;
  }
}

function toJsonRow(message: Record<string, unknown>, columns: TableField[], path: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const byName = new Map(columns.map((c) => [c.name.toLowerCase(), c]));
  for (const [key, value] of Object.entries(message)) {
    const column = byName.get(key.toLowerCase());
    if (!column) continue;
    const where = path ? `${path}.${column.name}` : column.name;
    out[column.name] = Array.isArray(value) ? value.map((v, i) => toJsonValue(v, column, `${where}[${i}]`)) : toJsonValue(value, column, where);
  }
  for (const column of columns) {
    if (column.name in out) continue;
    if (column.mode === 'REPEATED') out[column.name] = [];
    else if (column.mode !== 'REQUIRED') out[column.name] = null;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Server

interface WithInnerCall {
  call?: { nextCall?: { stream?: { close(code: number): void } }; stream?: { close(code: number): void } };
}

/**
 * Breaks a call the way a lost connection does: the HTTP/2 stream is reset without a gRPC status
 * (the client sees INTERNAL "Received RST_STREAM"). grpc-js has no public way to do this, so the
 * HTTP/2 stream is reached through the call's internals; should they move, the call ends with
 * UNAVAILABLE instead, which the client treats the same way.
 */
function resetStream(call: AppendCall): void {
  const inner = (call as unknown as WithInnerCall).call;
  const http2 = inner?.nextCall?.stream ?? inner?.stream;
  const NGHTTP2_INTERNAL_ERROR = 2;
  if (http2) http2.close(NGHTTP2_INTERNAL_ERROR);
  else call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'Connection reset by peer' });
}

interface PendingBreak {
  remaining: number;
  afterCommit: boolean;
  table: TableRef | undefined;
}

interface PendingFault {
  remaining: number;
  fault: StorageFault;
}

interface Waiter {
  check: () => boolean;
  resolve: () => void;
}

interface ConnectionState {
  id: number;
  writer: WriterSchema | null;
  table: TableRef | null;
  streamName: string;
  chain: Promise<void>;
  closed: boolean;
}

interface Answer {
  response?: Record<string, unknown>;
  /** Close the stream with this status instead of answering. */
  status?: { code: grpc.status; details: string };
  broken?: boolean;
}

class StorageServer implements StorageWriteTestServer {
  readonly requests: StorageRecordedRequest[] = [];
  endpoint = '';
  port = 0;
  connectionCount = 0;
  getWriteStreamCount = 0;

  private readonly server = new grpc.Server();
  private readonly tables: StorageTableStore;
  private readonly maxRequestBytes: number;
  private readonly calls = new Set<AppendCall>();
  private readonly waiters = new Set<Waiter>();
  private faults: PendingFault[] = [];
  private breaks: PendingBreak[] = [];
  private outage: StorageFault | null = null;
  private latencyMs = 0;
  private rejectFn: StorageRowRejectFn | null = null;
  private bucket: { rate: number; capacity: number; tokens: number; last: number } | null = null;
  throttledCount = 0;
  private schemaUpdates = true;
  private readonly lagging = new Map<string, TableSchema>();

  constructor(options: StorageWriteTestServerOptions) {
    this.tables = options.tables;
    this.maxRequestBytes = options.maxRequestBytes ?? 10_000_000;
    const service = loadService();
    const append = service['AppendRows'] as grpc.MethodDefinition<AppendRequestObject, unknown>;
    const deserialize = append.requestDeserialize;
    // The request's size on the wire, which BigQuery's request limit applies to.
    const sized: grpc.ServiceDefinition = {
      ...service,
      AppendRows: { ...append, requestDeserialize: (buf: Buffer) => ({ ...deserialize(buf), byteLength: buf.length }) },
    };
    this.server.addService(sized, {
      AppendRows: (call: AppendCall) => this.onAppendRows(call),
      GetWriteStream: (call: grpc.ServerUnaryCall<{ name?: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => this.onGetWriteStream(call, callback),
      CreateWriteStream: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
        callback({ code: grpc.status.UNIMPLEMENTED, details: 'only the _default stream is implemented' }),
      FinalizeWriteStream: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'not implemented' }),
      BatchCommitWriteStreams: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
        callback({ code: grpc.status.UNIMPLEMENTED, details: 'not implemented' }),
      FlushRows: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'not implemented' }),
    });
  }

  async listen(host: string, port: number): Promise<void> {
    this.port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
    });
    this.endpoint = `${host}:${this.port}`;
  }

  async close(): Promise<void> {
    for (const call of this.calls) call.destroy();
    await new Promise<void>((resolve) => {
      this.server.tryShutdown(() => resolve());
      setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1000).unref();
    });
  }

  failNext(n: number, fault: StorageFault): void {
    this.faults.push({ remaining: n, fault });
  }

  setOutage(fault: StorageFault | null): void {
    this.outage = fault;
  }

  breakNext(n: number, options: BreakOptions = {}): void {
    this.breaks.push({ remaining: n, afterCommit: options.afterCommit ?? false, table: options.table });
  }

  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  rejectRow(fn: StorageRowRejectFn | null): void {
    this.rejectFn = fn;
  }

  throttle(options: StorageThrottleOptions | null): void {
    if (!options || options.requestsPerSecond <= 0) {
      this.bucket = null;
      return;
    }
    const capacity = Math.max(1, options.burstRequests ?? options.requestsPerSecond);
    this.bucket = { rate: options.requestsPerSecond, capacity, tokens: capacity, last: Date.now() };
  }

  private admitThrottle(): boolean {
    const bucket = this.bucket;
    if (!bucket) return true;
    const now = Date.now();
    bucket.tokens = Math.min(bucket.capacity, bucket.tokens + ((now - bucket.last) / 1000) * bucket.rate);
    bucket.last = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  reportSchemaUpdates(enabled: boolean): void {
    this.schemaUpdates = enabled;
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  closeStreams(code: grpc.status, message = 'Closing the stream because it has been inactive'): void {
    for (const call of [...this.calls]) call.emit('error', { code, details: message });
  }

  lagSchema(table: TableRef, schema: TableSchema | null): void {
    const key = `${table.projectId}:${table.datasetId}.${table.tableId}`;
    if (schema) this.lagging.set(key, structuredClone(schema));
    else this.lagging.delete(key);
  }

  /** The schema the write path judges by: the table's, unless it is made to lag. */
  private writeSchema(table: TableRef): TableSchema | undefined {
    const current = this.tables.streamingSchema?.(table) ?? this.tables.tableSchema(table);
    if (!current) return undefined;
    return this.lagging.get(`${table.projectId}:${table.datasetId}.${table.tableId}`) ?? current;
  }

  resetFaults(): void {
    this.faults = [];
    this.breaks = [];
    this.outage = null;
    this.latencyMs = 0;
    this.rejectFn = null;
    this.bucket = null;
    this.schemaUpdates = true;
    this.lagging.clear();
  }

  waitForRequests(count: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { check: () => this.requests.length >= count, resolve: () => resolve() };
      if (waiter.check()) return resolve();
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`waitForRequests(${count}) timed out after ${timeoutMs} ms with ${this.requests.length}`));
      }, timeoutMs);
      waiter.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.add(waiter);
    });
  }

  private record(entry: StorageRecordedRequest): void {
    this.requests.push(entry);
    for (const waiter of [...this.waiters]) {
      if (waiter.check()) {
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  private onGetWriteStream(call: grpc.ServerUnaryCall<{ name?: string }, unknown>, callback: grpc.sendUnaryData<unknown>): void {
    this.getWriteStreamCount += 1;
    const name = call.request.name ?? '';
    const parsed = parseStream(name);
    if (!parsed) return callback({ code: grpc.status.INVALID_ARGUMENT, details: `Invalid stream name: ${name}` });
    if (parsed.stream !== '_default') return callback({ code: grpc.status.NOT_FOUND, details: `Requested entity was not found. Entity: ${name}` });
    const schema = this.tables.tableSchema(parsed.table);
    if (!schema)
      return callback({ code: grpc.status.NOT_FOUND, details: `Not found: Table ${parsed.table.projectId}:${parsed.table.datasetId}.${parsed.table.tableId}` });
    callback(null, { name, type: 'COMMITTED', writeMode: 'INSERT', location: 'US', tableSchema: { fields: storageSchema(schema.fields) } });
  }

  private onAppendRows(call: AppendCall): void {
    this.connectionCount += 1;
    this.calls.add(call);
    const state: ConnectionState = { id: this.connectionCount, writer: null, table: null, streamName: '', chain: Promise.resolve(), closed: false };
    const end = (): void => {
      state.closed = true;
      this.calls.delete(call);
    };
    call.on('error', end);
    call.on('cancelled', end);
    call.on('end', () => {
      // The client half-closed: answer what is queued, then finish.
      void state.chain.then(() => {
        if (!state.closed) call.end();
        end();
      });
    });
    call.on('data', (request: AppendRequestObject) => {
      state.chain = state.chain.then(async () => {
        if (state.closed) return;
        if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
        if (state.closed) return;
        const answer = this.append(state, request);
        if (answer.broken) {
          state.closed = true;
          resetStream(call);
        } else if (answer.status) {
          state.closed = true;
          call.emit('error', answer.status);
        } else if (answer.response) {
          call.write(answer.response);
        }
      });
    });
  }

  private takeFault(table: TableRef | null): StorageFault | null {
    const matches = (t: TableRef | undefined): boolean => t === undefined || (table !== null && sameTable(t, table));
    const pending = this.faults.find((f) => f.remaining > 0 && matches(f.fault.table));
    if (pending) {
      pending.remaining -= 1;
      this.faults = this.faults.filter((f) => f.remaining > 0);
      return pending.fault;
    }
    return this.outage && matches(this.outage.table) ? this.outage : null;
  }

  private takeBreak(table: TableRef | null): PendingBreak | null {
    const pending = this.breaks.find((b) => b.remaining > 0 && (b.table === undefined || (table !== null && sameTable(b.table, table))));
    if (!pending) return null;
    pending.remaining -= 1;
    this.breaks = this.breaks.filter((b) => b.remaining > 0);
    return pending;
  }

  private append(state: ConnectionState, request: AppendRequestObject): Answer {
    const rows = request.protoRows?.rows?.serializedRows ?? [];
    const entry: StorageRecordedRequest = {
      table: null,
      connection: state.id,
      rowCount: rows.length,
      bytes: request.byteLength ?? 0,
      code: 0,
      message: '',
      rowErrors: [],
      storedRowCount: 0,
      injected: false,
      throttled: false,
      updatedSchema: false,
      timestamp: Date.now(),
    };
    const finish = (answer: Answer): Answer => {
      if (answer.broken) entry.code = null;
      else if (answer.status) {
        entry.code = answer.status.code;
        entry.message = answer.status.details;
      } else {
        const error = answer.response?.['error'] as { code: number; message: string } | undefined;
        entry.code = error?.code ?? 0;
        entry.message = error?.message ?? '';
      }
      this.record(entry);
      return answer;
    };
    const fail = (code: grpc.status, message: string, mode: 'response' | 'stream' = 'response'): Answer =>
      finish(mode === 'stream' ? { status: { code, details: message } } : { response: { error: { code, message }, writeStream: state.streamName } });

    if (request.writeStream) state.streamName = request.writeStream;
    const parsed = parseStream(state.streamName);
    if (!parsed) return fail(grpc.status.INVALID_ARGUMENT, `Invalid stream name: ${state.streamName}`, 'stream');
    if (parsed.stream !== '_default') return fail(grpc.status.NOT_FOUND, `Requested entity was not found. Entity: ${state.streamName}`, 'stream');
    entry.table = parsed.table;
    state.table = parsed.table;

    // The writer schema is read on receipt, so it holds for the connection even when this request then fails.
    const received = request.protoRows?.writerSchema?.protoDescriptor;
    const current = this.writeSchema(parsed.table);
    if (received && current) {
      try {
        state.writer = buildWriterSchema(received, current);
      } catch {
        // Judged below, after any injected fault.
      }
    }

    const broken = this.takeBreak(parsed.table);
    if (broken && !broken.afterCommit) {
      entry.injected = true;
      return finish({ broken: true });
    }
    const fault = this.takeFault(parsed.table);
    if (fault && !fault.afterCommit) {
      entry.injected = true;
      return fail(fault.code, fault.message ?? `injected ${grpc.status[fault.code]}`, fault.mode);
    }

    const schema = this.writeSchema(parsed.table);
    if (!schema) {
      const t = parsed.table;
      return fail(grpc.status.NOT_FOUND, `Not found: Table ${t.projectId}:${t.datasetId}.${t.tableId}`);
    }
    if (!this.admitThrottle()) {
      this.throttledCount += 1;
      entry.throttled = true;
      const t = parsed.table;
      return fail(
        grpc.status.RESOURCE_EXHAUSTED,
        `Exceeds 'AppendRows throughput' quota, user_id: test-project (status: INSUFFICIENT_TOKENS), you can issue a raise quota request. Entity: projects/${t.projectId}/datasets/${t.datasetId}/tables/${t.tableId}/streams/_default`,
      );
    }
    const descriptor = request.protoRows?.writerSchema?.protoDescriptor;
    if (descriptor) {
      try {
        state.writer = buildWriterSchema(descriptor, schema);
      } catch (err) {
        if (err instanceof WriterSchemaError) return fail(grpc.status.INVALID_ARGUMENT, err.message, 'stream');
        throw err;
      }
    }
    const writer = state.writer;
    if (!writer) return fail(grpc.status.INVALID_ARGUMENT, 'Invalid proto schema: the first request of a connection must carry the writer schema', 'stream');
    if ((request.byteLength ?? 0) > this.maxRequestBytes) {
      return fail(grpc.status.INVALID_ARGUMENT, `AppendRows request too large: ${request.byteLength ?? 0} limit ${this.maxRequestBytes}`);
    }
    if (rows.length === 0) return fail(grpc.status.INVALID_ARGUMENT, 'Rows must be specified.');

    const decoded: Array<Record<string, unknown>> = [];
    rows.forEach((bytes, index) => {
      try {
        const message = writer.type.decode(bytes);
        const object = writer.type.toObject(message, { longs: String, bytes: Buffer, defaults: false, arrays: false }) as Record<string, unknown>;
        const row = toJsonRow(object, schema.fields, '');
        const problems = checkRowAgainstSchema(row, schema).map((p) => p.message);
        const rejected = problems.length === 0 && this.rejectFn ? this.rejectFn(structuredClone(row), parsed.table, index) : null;
        if (rejected !== null) problems.push(rejected);
        if (problems.length > 0) entry.rowErrors.push({ index, message: problems.join('; ') });
        decoded.push(row);
      } catch (err) {
        const message = err instanceof RowProblem ? err.message : `Could not parse the serialized row: ${err instanceof Error ? err.message : String(err)}`;
        entry.rowErrors.push({ index, message });
      }
    });
    if (entry.rowErrors.length > 0) {
      const first = entry.rowErrors[0] as { index: number; message: string };
      return finish({
        response: {
          error: {
            code: grpc.status.INVALID_ARGUMENT,
            message: `Errors found while processing rows. Please refer to the row_errors field for details. The list may not be complete because of the size limitations. Entity: ${state.streamName}: ${first.message}`,
          },
          rowErrors: entry.rowErrors.map((e) => ({ index: String(e.index), code: 'FIELDS_ERROR', message: e.message })),
          writeStream: state.streamName,
        },
      });
    }
    this.tables.storeRows(parsed.table, decoded);
    entry.storedRowCount = decoded.length;
    if (broken) {
      entry.injected = true;
      return finish({ broken: true });
    }
    if (fault) {
      entry.injected = true;
      return fail(fault.code, fault.message ?? `injected ${grpc.status[fault.code]}`, fault.mode);
    }
    const response: Record<string, unknown> = { appendResult: {}, writeStream: state.streamName };
    if (this.schemaUpdates && tableHasMoreFields(writer.descriptor, schema.fields)) {
      response['updatedSchema'] = { fields: storageSchema(schema.fields) };
      entry.updatedSchema = true;
    }
    return finish({ response });
  }
}

export async function startStorageWriteTestServer(options: StorageWriteTestServerOptions): Promise<StorageWriteTestServer> {
  const server = new StorageServer(options);
  await server.listen(options.host ?? '127.0.0.1', options.port ?? 0);
  return server;
}
