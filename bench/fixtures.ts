import { randomBytes } from 'node:crypto';
import avro from 'avsc';
import { createAvroType, type AvroSchema, type AvroType } from '../src/core/avro-type.js';
import { encodeConfluentHeader } from '../src/core/schema-reference.js';
import { accessV1, audit, metric } from '../test/support/log-schemas.js';

/*
 * Realistic log records and their encodings. The schemas are the ones the tests use; the values are
 * what production traffic looks like (a browser user agent, a request id, a handful of headers), so
 * that an access record is about 300 bytes of Avro.
 */

export type LogType = 'access' | 'audit' | 'metric';

export interface LogKind {
  logType: LogType;
  /** Confluent schema id the bench registers the schema under. */
  schemaId: number;
  schema: AvroSchema;
  type: AvroType;
  record(i: number): Record<string, unknown>;
}

const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
];
const METHODS = ['GET', 'GET', 'GET', 'POST', 'GET', 'PUT', 'GET', 'DELETE'];
const STATUSES = [200, 200, 200, 200, 304, 201, 200, 404, 200, 500];

function hex(i: number, width: number): string {
  return (Math.imul(i + 1, 2_654_435_761) >>> 0)
    .toString(16)
    .padStart(8, '0')
    .repeat(Math.ceil(width / 8))
    .slice(0, width);
}

/** An access log line as a CDN or load balancer writes it: about 300 bytes of Avro. */
export function accessLog(i: number): Record<string, unknown> {
  const requestId = `${hex(i, 8)}-${hex(i + 7, 4)}-4${hex(i + 3, 3)}-a${hex(i + 5, 3)}-${hex(i + 11, 12)}`;
  return {
    ts: 1_764_000_000_000_000n + BigInt(i) * 1_371n,
    method: METHODS[i % METHODS.length],
    path: `/api/v2/customers/${100_000 + (i % 90_000)}/orders/${hex(i, 12)}?page=${i % 20}`,
    status: STATUSES[i % STATUSES.length],
    bytes: BigInt(512 + ((i * 7_919) % 65_536)),
    user_agent: i % 17 === 0 ? null : { string: USER_AGENTS[i % USER_AGENTS.length] },
    headers: {
      host: 'shop.example.com',
      'x-request-id': requestId,
      'x-forwarded-for': `203.0.113.${i % 250}`,
    },
    tags: ['edge', `europe-west1-${'bcd'[i % 3]}`],
  };
}

export function auditLog(i: number): Record<string, unknown> {
  return {
    ts: 1_764_000_000_000n + BigInt(i),
    actor: `user-${10_000 + (i % 5_000)}@example.com`,
    action: i % 3 === 0 ? 'order.refund' : 'session.login',
    amount: i % 3 === 0 ? { bytes: Buffer.from([0x01, 0xe2, 0x40 + (i % 16)]) } : null,
  };
}

/** A small numeric event. */
export function metricEvent(i: number): Record<string, unknown> {
  return { name: 'http.server.duration', value: 12.5 + (i % 100) / 8, count: BigInt(1_000 + i) };
}

export const KINDS: Record<LogType, LogKind> = {
  access: { logType: 'access', schemaId: 101, schema: accessV1, type: createAvroType(accessV1), record: accessLog },
  audit: { logType: 'audit', schemaId: 102, schema: audit, type: createAvroType(audit), record: auditLog },
  metric: { logType: 'metric', schemaId: 103, schema: metric, type: createAvroType(metric), record: metricEvent },
};

/** Pub/Sub schema topics carry exactly this: the Avro body, nothing else. */
export function bareAvro(kind: LogKind, i: number): Buffer {
  return kind.type.toBuffer(kind.record(i));
}

/** Confluent wire format: 0x00, a 4-byte schema id, the Avro body. */
export function confluentFramed(kind: LogKind, i: number): Buffer {
  return Buffer.concat([encodeConfluentHeader(kind.schemaId), bareAvro(kind, i)]);
}

const MAGIC = Buffer.from('Obj\x01', 'latin1');
const MAP_OF_BYTES = avro.Type.forSchema({ type: 'map', values: 'bytes' });
const LONG = avro.Type.forSchema('long');

/**
 * An Avro object container file holding one record, schema embedded in the header: what each
 * message cost before tributary (header, metadata map, sync marker, one block).
 */
export function containerFile(kind: LogKind, i: number): Buffer {
  const sync = randomBytes(16);
  const meta = MAP_OF_BYTES.toBuffer({ 'avro.schema': Buffer.from(JSON.stringify(kind.schema)), 'avro.codec': Buffer.from('null') });
  const body = bareAvro(kind, i);
  return Buffer.concat([MAGIC, meta, sync, LONG.toBuffer(1), LONG.toBuffer(body.length), body, sync]);
}

/** Reads the one record of a container file: its schema text and where the body lies. */
export function readContainer(file: Buffer): { schema: string; body: Buffer } {
  if (!file.subarray(0, 4).equals(MAGIC)) throw new Error('not an Avro container file');
  const meta = MAP_OF_BYTES.decode(file, 4) as { value: Record<string, Buffer>; offset: number };
  const schemaBytes = meta.value['avro.schema'];
  if (schemaBytes === undefined) throw new Error('container file without a schema');
  let offset = meta.offset + 16;
  const count = LONG.decode(file, offset) as { value: number; offset: number };
  const size = LONG.decode(file, count.offset) as { value: number; offset: number };
  offset = size.offset;
  return { schema: schemaBytes.toString('utf8'), body: file.subarray(offset, offset + size.value) };
}

function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    // A wrapped union branch ({"string": "..."}) is written as its value, as a JSON producer would.
    if (entries.length === 1 && /^(string|bytes|double|int|long|boolean|float)$/.test(entries[0]?.[0] ?? '')) return plain(entries[0]?.[1]);
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) out[k] = plain(v);
    return out;
  }
  return value;
}

/** The same event as a JSON producer would publish it. */
export function jsonMessage(kind: LogKind, i: number): Buffer {
  return Buffer.from(JSON.stringify(plain(kind.record(i))));
}
