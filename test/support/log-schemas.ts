import type { AvroSchema } from '../../src/core/avro-type.js';
import { createAvroType } from '../../src/core/avro-type.js';
import { bigQueryFieldsFor } from '../../src/core/rows/bigquery-fields.js';
import type { TableField, TableSchema } from '../../src/core/table-schema.js';

/** Realistic log schemas used across integration and end-to-end tests. */
export const accessV1 = {
  type: 'record',
  name: 'Access',
  namespace: 'com.acme.logs',
  fields: [
    { name: 'ts', type: { type: 'long', logicalType: 'timestamp-micros' } },
    { name: 'method', type: { type: 'enum', name: 'Method', symbols: ['GET', 'POST', 'PUT', 'DELETE'] } },
    { name: 'path', type: 'string' },
    { name: 'status', type: 'int' },
    { name: 'bytes', type: 'long' },
    { name: 'user_agent', type: ['null', 'string'], default: null },
    { name: 'headers', type: { type: 'map', values: 'string' } },
    { name: 'tags', type: { type: 'array', items: 'string' } },
  ],
} as const satisfies AvroSchema;

/** Revision 2 adds a nullable field: one stream carries both revisions. */
export const accessV2 = {
  ...accessV1,
  fields: [...accessV1.fields, { name: 'latency_ms', type: ['null', 'double'], default: null }],
} as const satisfies AvroSchema;

/** A later revision of Access with a nullable string, an array and a nested record more: additive. */
export const accessWithNewFields = {
  ...accessV1,
  fields: [
    ...accessV1.fields,
    { name: 'region', type: ['null', 'string'], default: null },
    { name: 'labels', type: { type: 'array', items: 'string' }, default: [] },
    {
      name: 'geo',
      type: [
        'null',
        {
          type: 'record',
          name: 'Geo',
          fields: [
            { name: 'city', type: 'string' },
            { name: 'zone', type: ['null', 'string'], default: null },
          ],
        },
      ],
      default: null,
    },
  ],
} as const satisfies AvroSchema;

export function accessWithNewFieldsRecord(i: number): Record<string, unknown> {
  return accessRecord(i, {
    region: { string: `eu-${i % 3}` },
    labels: ['new', `l${i}`],
    geo: { 'com.acme.logs.Geo': { city: 'Lyon', zone: i % 2 === 0 ? null : { string: 'z1' } } },
  });
}

export const audit = {
  type: 'record',
  name: 'Audit',
  namespace: 'com.acme.logs',
  fields: [
    { name: 'ts', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'actor', type: 'string' },
    { name: 'action', type: 'string' },
    { name: 'amount', type: ['null', { type: 'bytes', logicalType: 'decimal', precision: 12, scale: 2 }], default: null },
  ],
} as const satisfies AvroSchema;

export const metric = {
  type: 'record',
  name: 'Metric',
  namespace: 'com.acme.logs',
  fields: [
    { name: 'name', type: 'string' },
    { name: 'value', type: 'double' },
    { name: 'count', type: 'long' },
  ],
} as const satisfies AvroSchema;

export const METADATA_FIELDS: TableField[] = [
  { name: '_message_id', type: 'STRING', mode: 'NULLABLE' },
  { name: '_publish_time', type: 'TIMESTAMP', mode: 'NULLABLE' },
];

/** The table a schema maps to, plus the message-id and publish-time columns. */
export function tableSchemaFor(schema: AvroSchema): TableSchema {
  return { fields: [...bigQueryFieldsFor(schema), ...METADATA_FIELDS] };
}

export function encode(schema: AvroSchema, value: unknown): Buffer {
  return createAvroType(schema).toBuffer(value);
}

export function accessRecord(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ts: 1_764_000_000_000_000n + BigInt(i),
    method: i % 2 === 0 ? 'GET' : 'POST',
    path: `/api/v1/items/${i}`,
    status: 200 + (i % 5),
    bytes: BigInt(1000 + i),
    user_agent: i % 3 === 0 ? null : { string: 'curl/8.5.0' },
    headers: { host: 'example.com', 'x-request-id': `req-${i}` },
    tags: ['edge', `shard-${i % 4}`],
    ...extra,
  };
}

export function auditRecord(i: number): Record<string, unknown> {
  return { ts: 1_764_000_000_000n + BigInt(i), actor: `user-${i}`, action: 'login', amount: i % 2 ? null : { bytes: Buffer.from([0x30, 0x39]) } };
}

export function metricRecord(i: number): Record<string, unknown> {
  return { name: 'cpu', value: i / 4, count: BigInt(i) };
}
