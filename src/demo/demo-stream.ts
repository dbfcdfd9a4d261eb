import { createAvroType, type AvroSchema } from '../core/avro-type.js';
import { encodeConfluentHeader } from '../core/schema-reference.js';
import type { ErrorCode } from '../errors.js';

export interface DemoMessage {
  topic: string;
  data: Buffer;
  attributes: Record<string, string>;
  logType: string;
  /** The code the worker must dead-letter it with; absent for a good message. */
  poison?: ErrorCode;
}

export interface DemoSchemas {
  /** The revisions of the Pub/Sub schema of access events; the third comes only in the later part. */
  accessRevisions: [AvroSchema, AvroSchema, AvroSchema];
  audit: AvroSchema;
  metricV1: AvroSchema;
  metricV2: AvroSchema;
}

export interface DemoStreamOptions {
  /** Good messages, split across the log types; the poison ones come on top. */
  messages: number;
  /** Of the access messages, how many are of the third revision, in the later part; default a tenth of `messages`. */
  laterAccess?: number;
  schemaTopic: string;
  framedTopic: string;
  confluentIds: { audit: number; metricV1: number; metricV2: number };
  seed?: number;
}

/** mulberry32: a small seeded generator, so every run publishes the same stream. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Two's complement, big-endian: Avro's bytes for an unscaled decimal. */
function decimalBytes(unscaled: bigint): Buffer {
  let hex = (unscaled < 0n ? (1n << 64n) + unscaled : unscaled).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let buf = Buffer.from(hex, 'hex');
  if (unscaled >= 0n && (buf[0] ?? 0) & 0x80) buf = Buffer.concat([Buffer.from([0]), buf]);
  if (unscaled < 0n) buf = buf.subarray(buf.findIndex((b, i) => !(b === 0xff && (buf[i + 1] ?? 0) & 0x80)));
  return buf;
}

export interface DemoStream {
  /**
   * A mixed stream as producers send it: access events through a topic with a Pub/Sub schema
   * (revisions 1 and 2), audit and metric events Confluent-framed on a plain topic (metric in two
   * schema versions), interleaved, plus one message for each way a message can never be inserted.
   */
  first: DemoMessage[];
  /**
   * Access events of revision 3, which adds a field the table lacks: a producer deployed a new
   * version after the table filled. Every one of them carries a trace id.
   */
  later: DemoMessage[];
}

export function demoStream(schemas: DemoSchemas, options: DemoStreamOptions): DemoStream {
  const rnd = random(options.seed ?? 42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
  const accessTypes = schemas.accessRevisions.map((s) => createAvroType(s));
  const auditType = createAvroType(schemas.audit);
  const metricV1 = createAvroType(schemas.metricV1);
  const metricV2 = createAvroType(schemas.metricV2);
  const framed = (id: number, body: Buffer): Buffer => Buffer.concat([encodeConfluentHeader(id), body]);
  const nowMicros = BigInt(Date.now()) * 1000n;
  const paths = ['/api/v1/orders', '/api/v1/orders/{id}', '/api/v1/cart', '/login', '/static/app.js', '/healthz'];
  const statuses = [200, 200, 200, 200, 201, 204, 304, 400, 401, 404, 500, 503];
  const agents = ['Mozilla/5.0 (X11; Linux x86_64)', 'curl/8.5.0', 'okhttp/4.12.0', 'Googlebot/2.1'];
  const actions = ['login', 'logout', 'refund', 'charge', 'role.grant', 'key.rotate'];
  const metricNames = ['cpu.seconds', 'http.requests', 'queue.depth', 'gc.pause'];

  const traceId = (): string =>
    Array.from({ length: 4 }, () =>
      Math.floor(rnd() * 2 ** 32)
        .toString(16)
        .padStart(8, '0'),
    ).join('');
  const access = (i: number, revision: 0 | 1 | 2, ts = nowMicros - BigInt(Math.floor(rnd() * 60e6))): Record<string, unknown> => ({
    ts,
    method: pick(['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE']),
    path: pick(paths).replace('{id}', String(1000 + i)),
    status: pick(statuses),
    bytes: BigInt(Math.floor(rnd() * 50_000)),
    user_agent: rnd() < 0.1 ? null : { string: pick(agents) },
    headers: { host: 'shop.example.com', 'x-request-id': `req-${i.toString(36)}` },
    tags: ['edge', pick(['europe-west1', 'us-central1', 'asia-east1'])],
    ...(revision >= 1 ? { latency_ms: rnd() < 0.05 ? null : { double: Math.round(rnd() * 40_000) / 100 } } : {}),
    ...(revision === 2 ? { trace_id: { string: traceId() } } : {}),
  });
  const audit = (): Record<string, unknown> => ({
    ts: BigInt(Date.now() - Math.floor(rnd() * 60_000)),
    actor: `user-${Math.floor(rnd() * 500)}@example.com`,
    action: pick(actions),
    amount: rnd() < 0.4 ? { bytes: decimalBytes(BigInt(Math.floor(rnd() * 2_000_000) - 200_000)) } : null,
  });
  const metric = (version: 1 | 2): Record<string, unknown> => {
    const value = Math.round(rnd() * 1e6) / 100;
    return version === 1
      ? { name: pick(metricNames), value, count: BigInt(Math.floor(rnd() * 1e6)) }
      : { name: pick(metricNames), value: { double: value }, count: BigInt(Math.floor(rnd() * 1e6)), unit: rnd() < 0.5 ? { string: 'ms' } : null };
  };

  const out: DemoMessage[] = [];
  const allAccess = Math.round(options.messages / 2);
  const laterAccess = Math.min(allAccess, options.laterAccess ?? Math.round(options.messages / 10));
  const accessCount = allAccess - laterAccess;
  const auditCount = Math.round(options.messages / 4);
  const metricCount = options.messages - allAccess - auditCount;
  const plan: Array<'access' | 'audit' | 'metric'> = [
    ...Array<'access'>(accessCount).fill('access'),
    ...Array<'audit'>(auditCount).fill('audit'),
    ...Array<'metric'>(metricCount).fill('metric'),
  ];
  for (let i = plan.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [plan[i], plan[j]] = [plan[j] as 'access', plan[i] as 'access'];
  }
  let n = 0;
  for (const logType of plan) {
    n++;
    if (logType === 'access') {
      const revision = n % 2 === 0 ? 0 : 1;
      out.push({
        topic: options.schemaTopic,
        data: (accessTypes[revision] as ReturnType<typeof createAvroType>).toBuffer(access(n, revision)),
        attributes: { log_type: 'access' },
        logType,
      });
    } else if (logType === 'audit') {
      out.push({
        topic: options.framedTopic,
        data: framed(options.confluentIds.audit, auditType.toBuffer(audit())),
        attributes: { log_type: 'audit' },
        logType,
      });
    } else {
      const version = n % 3 === 0 ? 2 : 1;
      const data =
        version === 1
          ? framed(options.confluentIds.metricV1, metricV1.toBuffer(metric(1)))
          : framed(options.confluentIds.metricV2, metricV2.toBuffer(metric(2)));
      out.push({ topic: options.framedTopic, data, attributes: { log_type: 'metric' }, logType });
    }
  }

  const goodAudit = auditType.toBuffer(audit());
  const poison: DemoMessage[] = [
    // Cut short in transit.
    {
      topic: options.framedTopic,
      data: framed(options.confluentIds.audit, goodAudit.subarray(0, goodAudit.length - 4)),
      attributes: { log_type: 'audit' },
      logType: 'audit',
      poison: 'DECODE_FAILED',
    },
    // A producer registered its schema in another registry.
    {
      topic: options.framedTopic,
      data: framed(99, metricV1.toBuffer(metric(1))),
      attributes: { log_type: 'metric' },
      logType: 'metric',
      poison: 'SCHEMA_NOT_FOUND',
    },
    // Schema version 3 allows a NULL value; the table requires one.
    {
      topic: options.framedTopic,
      data: framed(options.confluentIds.metricV2, metricV2.toBuffer({ ...metric(2), value: null })),
      attributes: { log_type: 'metric' },
      logType: 'metric',
      poison: 'ROW_INVALID',
    },
    // A log type nobody routes.
    {
      topic: options.framedTopic,
      data: framed(options.confluentIds.audit, goodAudit),
      attributes: { log_type: 'billing' },
      logType: 'billing',
      poison: 'UNROUTED',
    },
    // Plain JSON from a misconfigured producer: no schema reference at all.
    {
      topic: options.framedTopic,
      data: Buffer.from('{"actor":"user-1","action":"login"}'),
      attributes: { log_type: 'audit' },
      logType: 'audit',
      poison: 'NO_SCHEMA_REFERENCE',
    },
    // Valid Avro, but a timestamp in the year 10000: outside what the warehouse can hold.
    {
      topic: options.schemaTopic,
      data: (accessTypes[1] as ReturnType<typeof createAvroType>).toBuffer(access(0, 1, 253_402_300_800_000_000n)),
      attributes: { log_type: 'access' },
      logType: 'access',
      poison: 'CONVERSION_FAILED',
    },
  ];
  // Spread through the stream rather than at the end.
  for (const [k, message] of poison.entries()) out.splice(Math.floor(((k + 1) * out.length) / (poison.length + 1)), 0, message);
  const later: DemoMessage[] = [];
  for (let i = 1; i <= laterAccess; i++) {
    later.push({
      topic: options.schemaTopic,
      data: (accessTypes[2] as ReturnType<typeof createAvroType>).toBuffer(access(n + i, 2)),
      attributes: { log_type: 'access' },
      logType: 'access',
    });
  }
  return { first: out, later };
}
