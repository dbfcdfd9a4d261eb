import { deflateRawSync } from 'node:zlib';
import { getHeapStatistics } from 'node:v8';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AvroSchema } from '../../src/core/avro-type.js';
import { CONTAINER_LIMITS, EmbeddedSchemaCache } from '../../src/core/container-file.js';
import { FingerprintIndex, FingerprintSchemaRegistry } from '../../src/core/fingerprint-index.js';
import { decodeMessage } from '../../src/core/message-decoder.js';
import { SchemaCache, type SchemaRegistry } from '../../src/core/schema-cache.js';
import { fingerprintBytes, fingerprintSchema } from '../../src/core/schema-fingerprint.js';
import { TributaryError } from '../../src/errors.js';
import { avroLong, buildContainer } from '../support/avro-container.js';
import { varint } from '../support/avro-wire.js';
import { accessRecord, accessV2, encode, metric, metricRecord } from '../support/log-schemas.js';

/*
 * Hostile container files and single-object payloads, in the fork limited to a 256 MB heap (see
 * vitest.config.ts): an allocation bomb aborts the fork and fails the run.
 */

const tree: AvroSchema = {
  type: 'record',
  name: 'Node',
  namespace: 'com.acme.fuzz',
  fields: [
    { name: 'label', type: 'string' },
    { name: 'children', type: { type: 'array', items: 'Node' } },
    { name: 'next', type: ['null', 'Node'] },
  ],
};
const nulls: AvroSchema = { type: 'record', name: 'Nulls', fields: [{ name: 'n', type: { type: 'array', items: 'null' } }] };

const texts = [metric, accessV2, tree, nulls].map((s) => JSON.stringify(s));
const none: SchemaRegistry = {
  name: 'none',
  fetch: () => Promise.reject(new TributaryError('SCHEMA_NOT_FOUND', 'none')),
};
const index = new FingerprintIndex([{ name: 'fuzz', list: async () => texts.map((definition, i) => ({ source: String(i), definition })) }], {
  now: () => 0,
  minRefreshIntervalMs: 1e12,
});
const deps = {
  schemas: new SchemaCache(new FingerprintSchemaRegistry(none, index), 100, { hit() {}, miss() {}, fetched() {} }),
  embedded: new EmbeddedSchemaCache(),
};

const OUTCOMES = ['ok', 'DECODE_FAILED', 'SCHEMA_INVALID', 'SCHEMA_NOT_FOUND', 'NO_SCHEMA_REFERENCE', 'CONVERSION_FAILED'];

async function outcome(data: Buffer): Promise<string> {
  try {
    const m = await decodeMessage({ attributes: {}, data }, deps);
    for (const r of m.records) m.schema.toRow(r);
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(TributaryError);
    return (err as TributaryError).code;
  }
}

const treeValue = {
  label: 'root',
  children: [{ label: 'a', children: [], next: null }],
  next: { 'com.acme.fuzz.Node': { label: 'b', children: [], next: null } },
};
const bodies: Array<[object, Buffer[]]> = [
  [metric, [0, 1, 2].map((i) => encode(metric, metricRecord(i)))],
  [accessV2, [0, 1].map((i) => encode(accessV2, { ...accessRecord(i), latency_ms: null }))],
  [tree, [encode(tree, treeValue), encode(tree, treeValue)]],
];
const valid: Buffer[] = [];
for (const [schema, records] of bodies) {
  valid.push(buildContainer({ schema, records, codec: 'null', blockSize: 1 }));
  valid.push(buildContainer({ schema, records, codec: 'deflate' }));
  valid.push(Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprintBytes(fingerprintSchema(JSON.stringify(schema)).fingerprint), records[0]!]));
}

const mutation = (len: number): fc.Arbitrary<(b: Buffer) => Buffer> =>
  fc.oneof(
    fc.record({ at: fc.nat(Math.max(0, len - 1)), byte: fc.integer({ min: 0, max: 255 }) }).map(({ at, byte }) => (b: Buffer) => {
      const out = Buffer.from(b);
      if (out.length > 0) out[at % out.length] = byte;
      return out;
    }),
    fc.record({ at: fc.nat(len), count: fc.oneof(fc.integer({ min: 0, max: 2 ** 31 }), fc.constantFrom(2 ** 30, 2 ** 40, 2 ** 52)) }).map(
      ({ at, count }) =>
        (b: Buffer) =>
          Buffer.concat([b.subarray(0, at), varint(count), b.subarray(at)]),
    ),
    fc.nat(len).map((at) => (b: Buffer) => b.subarray(0, at)),
    fc.record({ at: fc.nat(len), junk: fc.uint8Array({ maxLength: 16 }) }).map(
      ({ at, junk }) =>
        (b: Buffer) =>
          Buffer.concat([b.subarray(0, at), Buffer.from(junk), b.subarray(at)]),
    ),
  );

describe('hostile container files and single-object payloads', () => {
  it('runs with a small heap, so that an allocation bomb fails the run', () => {
    expect(getHeapStatistics().heap_size_limit).toBeLessThan(400 * 1024 * 1024);
  });

  it('valid files and payloads decode', async () => {
    for (const data of valid) expect(await outcome(data)).toBe('ok');
  });

  it('arbitrary bytes after each magic decode or fail with a data code', async () => {
    for (const magic of [Buffer.from('Obj\x01', 'latin1'), Buffer.from([0xc3, 0x01])]) {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (bytes) => {
          expect(OUTCOMES).toContain(await outcome(Buffer.concat([magic, Buffer.from(bytes)])));
        }),
        { numRuns: 1500 },
      );
    }
  });

  it('mutated valid files and payloads decode or fail with a data code', async () => {
    for (const data of valid) {
      await fc.assert(
        fc.asyncProperty(fc.array(mutation(data.length), { minLength: 1, maxLength: 4 }), async (mutations) => {
          expect(OUTCOMES).toContain(await outcome(mutations.reduce((b, m) => m(b), data)));
        }),
        { numRuns: 700 },
      );
    }
  });

  it('bombs fail at once: entry counts, block counts, inflation, zero-size items across records', async () => {
    const magic = Buffer.from('Obj\x01', 'latin1');
    // a header and no blocks yet
    const header = (schema: object, codec = 'null'): Buffer => buildContainer({ schema, records: [], codec });
    const sync = Buffer.from('0123456789abcdef');
    // Built first: making a 256 MiB deflate bomb takes seconds of its own, and only decoding is timed.
    const bomb = deflateRawSync(Buffer.alloc(256 * 1024 * 1024), { level: 9 });
    // many blocks each just under the inflation cap: the cap is per file
    const chunk = deflateRawSync(Buffer.alloc(CONTAINER_LIMITS.maxDecompressedBytes / 2 + 1));
    const blocks = Array.from({ length: 3 }, () => Buffer.concat([avroLong(1), avroLong(chunk.length), chunk, sync]));
    // 10,000 records of 100,000 nulls each would be a billion values: the budget is per file
    const rec = Buffer.concat([varint(99_999), varint(0)]);
    const records = Array.from({ length: CONTAINER_LIMITS.maxRecords }, () => rec);
    // a schema text nested a million levels deep
    const deep = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    const payloads = [
      Buffer.concat([magic, varint(2 ** 40)]),
      Buffer.concat([header(metric), varint(2 ** 30), varint(4), Buffer.alloc(4), sync]),
      // 256 MiB of zeros deflated into a quarter of a megabyte
      Buffer.concat([header(metric, 'deflate'), avroLong(1), avroLong(bomb.length), bomb, sync]),
      Buffer.concat([header(metric, 'deflate'), ...blocks]),
      buildContainer({ schema: nulls, records }),
      buildContainer({ schema: deep, records: [Buffer.from([0])] }),
    ];
    const started = performance.now();
    for (const payload of payloads) expect(await outcome(payload)).toBe('DECODE_FAILED');
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(getHeapStatistics().used_heap_size).toBeLessThan(200 * 1024 * 1024);
  });

  it('a 10 MB container file of many records, and 10 MB of junk after each magic, decode or fail', async () => {
    const big = buildContainer({
      schema: metric,
      records: Array.from({ length: CONTAINER_LIMITS.maxRecords }, (_, i) => encode(metric, metricRecord(i))),
      codec: 'deflate',
      blockSize: 1000,
    });
    expect(await outcome(big)).toBe('ok');
    const ones = Buffer.alloc(10 * 1024 * 1024, 0xff);
    const zeros = Buffer.alloc(10 * 1024 * 1024, 0x00);
    for (const magic of [Buffer.from('Obj\x01', 'latin1'), Buffer.from([0xc3, 0x01])]) {
      for (const junk of [ones, zeros]) expect(OUTCOMES).toContain(await outcome(Buffer.concat([magic, junk])));
    }
  });
});
