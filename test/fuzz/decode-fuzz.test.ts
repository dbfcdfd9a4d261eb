import { getHeapStatistics } from 'node:v8';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_ZERO_SIZE_ITEMS } from '../../src/core/avro-type.js';
import { decodePayload } from '../../src/core/decoder.js';
import { compileSchema, type CompiledSchema } from '../../src/core/schema-cache.js';
import { TributaryError } from '../../src/errors.js';
import { varint } from '../support/avro-wire.js';
import { accessRecord, accessV2, audit, auditRecord, encode, metric, metricRecord } from '../support/log-schemas.js';

/*
 * Hostile payloads against every schema shape in use. This file runs in a fork limited to a 256 MB
 * heap (see vitest.config.ts): an allocation bomb aborts the fork and fails the run, it cannot pass
 * by luck on a machine with memory to spare.
 */

const tree = {
  type: 'record',
  name: 'Node',
  namespace: 'com.acme.fuzz',
  fields: [
    { name: 'label', type: 'string' },
    { name: 'children', type: { type: 'array', items: 'Node' } },
    { name: 'next', type: ['null', 'Node'] },
    { name: 'attrs', type: { type: 'map', values: { type: 'array', items: 'long' } } },
  ],
};

/** Items that take no bytes: the cheapest way to claim billions of values. */
const zeroSize = {
  type: 'record',
  name: 'Empty',
  namespace: 'com.acme.fuzz',
  fields: [
    { name: 'nulls', type: { type: 'array', items: 'null' } },
    { name: 'empties', type: { type: 'array', items: { type: 'record', name: 'Nothing', fields: [] } } },
    { name: 'fixed0', type: { type: 'array', items: { type: 'fixed', name: 'F0', size: 0 } } },
    { name: 'nested', type: { type: 'array', items: { type: 'array', items: 'null' } } },
    { name: 'maps', type: { type: 'map', values: 'null' } },
  ],
};

const schemas: Record<string, CompiledSchema> = {
  access: compileSchema('access', JSON.stringify(accessV2)),
  audit: compileSchema('audit', JSON.stringify(audit)),
  metric: compileSchema('metric', JSON.stringify(metric)),
  tree: compileSchema('tree', JSON.stringify(tree)),
  zeroSize: compileSchema('zeroSize', JSON.stringify(zeroSize)),
};

const valid: Record<string, Buffer> = {
  access: encode(accessV2, { ...accessRecord(7), latency_ms: { double: 1.5 } }),
  audit: encode(audit, auditRecord(3)),
  metric: encode(metric, metricRecord(2)),
  tree: schemas.tree!.type.toBuffer({
    label: 'root',
    children: [{ label: 'a', children: [], next: null, attrs: {} }],
    next: { 'com.acme.fuzz.Node': { label: 'b', children: [], next: null, attrs: { k: [1n, 2n] } } },
    attrs: { x: [3n] },
  }),
  zeroSize: schemas.zeroSize!.type.toBuffer({ nulls: [null, null], empties: [{}], fixed0: [Buffer.alloc(0)], nested: [[null]], maps: { a: null } }),
};

/** A payload must decode and convert, or fail with DECODE_FAILED (or a conversion code): never crash or hang. */
function decodeOrFail(schema: CompiledSchema, data: Buffer): 'ok' | string {
  try {
    const value = decodePayload(schema, data, 0, 'BINARY');
    schema.toRow(value);
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(TributaryError);
    return (err as TributaryError).code;
  }
}

/** Mutations that target what decoders trust: counts, lengths, union indexes, the end. */
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

describe('decoding hostile payloads', () => {
  it('runs with a small heap, so that an allocation bomb fails the run', () => {
    expect(getHeapStatistics().heap_size_limit).toBeLessThan(400 * 1024 * 1024);
  });

  it('valid payloads of every schema still decode', () => {
    for (const [name, data] of Object.entries(valid)) expect(() => decodePayload(schemas[name]!, data, 0, 'BINARY'), name).not.toThrow();
    // Arrays of nulls decode, but a BigQuery array cannot hold NULL: that is the converter's call.
    for (const name of ['access', 'audit', 'metric', 'tree']) expect(decodeOrFail(schemas[name]!, valid[name]!), name).toBe('ok');
  });

  it('arbitrary bytes decode or fail with DECODE_FAILED, under every schema', () => {
    for (const schema of Object.values(schemas)) {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
          const outcome = decodeOrFail(schema, Buffer.from(bytes));
          expect(['ok', 'DECODE_FAILED', 'CONVERSION_FAILED']).toContain(outcome);
        }),
        { numRuns: 1500 },
      );
    }
  });

  it('mutated valid payloads decode or fail with DECODE_FAILED, under every schema', () => {
    for (const [name, data] of Object.entries(valid)) {
      const schema = schemas[name]!;
      fc.assert(
        fc.property(fc.array(mutation(data.length), { minLength: 1, maxLength: 4 }), (mutations) => {
          const mutated = mutations.reduce((b, m) => m(b), data);
          expect(['ok', 'DECODE_FAILED', 'CONVERSION_FAILED']).toContain(decodeOrFail(schema, mutated));
        }),
        { numRuns: 2000 },
      );
    }
  });

  it('a few bytes claiming billions of items fail at once, whatever the item type', () => {
    const huge = varint(2 ** 30);
    const cases: Array<[string, Buffer]> = [
      // access: ts, method, path, status, bytes, user_agent, then the headers map count
      ['access', Buffer.concat([Buffer.from([0x02, 0x00, 0x02, 0x41, 0x02, 0x02, 0x00]), huge])],
      ['zeroSize', huge],
      ['zeroSize', Buffer.concat([varint(0), huge])],
      ['zeroSize', Buffer.concat([varint(0), varint(0), huge])],
      ['zeroSize', Buffer.concat([varint(0), varint(0), varint(0), varint(1), huge])],
      ['zeroSize', Buffer.concat([varint(0), varint(0), varint(0), varint(0), huge])],
      ['tree', Buffer.concat([Buffer.from([0x02, 0x41]), huge])],
    ];
    for (const [name, data] of cases) expect(decodeOrFail(schemas[name]!, data), name).toBe('DECODE_FAILED');
  });

  it('zero-size items are capped in total per payload, not per block', () => {
    // Many blocks each below the cap: together above it.
    const perBlock = Math.floor(MAX_ZERO_SIZE_ITEMS / 4);
    const blocks = Array.from({ length: 8 }, () => varint(perBlock));
    const data = Buffer.concat([...blocks, varint(0), varint(0), varint(0), varint(0), varint(0)]);
    expect(decodeOrFail(schemas.zeroSize!, data)).toBe('DECODE_FAILED');
    // Below the cap it is data like any other.
    const fine = Buffer.concat([varint(3), varint(0), varint(0), varint(0), varint(0), varint(0)]);
    expect(decodePayload(schemas.zeroSize!, fine, 0, 'BINARY')).toMatchObject({ nulls: [null, null, null] });
  });

  it('a recursive schema nested a million levels deep fails with DECODE_FAILED', () => {
    // label "", no children, next = branch 1 (a Node), repeated: 3 bytes per level.
    const level = Buffer.from([0x00, 0x00, 0x02]);
    const data = Buffer.concat([Buffer.concat(Array.from({ length: 1_000_000 }, () => level)), Buffer.from([0x00, 0x00, 0x00, 0x00])]);
    expect(decodeOrFail(schemas.tree!, data)).toBe('DECODE_FAILED');
  });

  it('payloads of 10 MB, the Pub/Sub limit, decode or fail under every schema', () => {
    const random = Buffer.alloc(10 * 1024 * 1024);
    for (let i = 0; i < random.length; i += 4) random.writeUInt32LE((Math.imul(i, 2654435761) ^ 0x9e3779b9) >>> 0, i);
    const ones = Buffer.alloc(10 * 1024 * 1024, 0xff);
    const zeros = Buffer.alloc(10 * 1024 * 1024, 0x00);
    for (const schema of Object.values(schemas)) {
      for (const data of [random, ones, zeros]) expect(['ok', 'DECODE_FAILED', 'CONVERSION_FAILED']).toContain(decodeOrFail(schema, data));
    }
  });

  it('a map key "__proto__" is an entry like any other', () => {
    // A literal's __proto__ is special in JavaScript too: the map is built without a prototype.
    const headers = Object.create(null) as Record<string, string>;
    headers['__proto__'] = 'x';
    headers.host = 'h';
    const withProto = encode(accessV2, { ...accessRecord(1), headers, latency_ms: null });
    const row = schemas.access!.toRow(decodePayload(schemas.access!, withProto, 0, 'BINARY'));
    expect(row.headers).toEqual([
      { key: '__proto__', value: 'x' },
      { key: 'host', value: 'h' },
    ]);
  });

  it('a string that is not valid UTF-8 fails instead of being altered', () => {
    const good = encode(metric, { name: 'ok', value: 1, count: 1n });
    expect(decodeOrFail(schemas.metric!, good)).toBe('ok');
    // name = 2 bytes: 0xC3 0x28 is an invalid UTF-8 sequence
    const bad = Buffer.from(good);
    bad[1] = 0xc3;
    bad[2] = 0x28;
    expect(decodeOrFail(schemas.metric!, bad)).toBe('DECODE_FAILED');
    // U+FFFD written as real UTF-8 is valid text and is kept
    const replacement = encode(metric, { name: '\uFFFD', value: 1, count: 1n });
    expect(decodeOrFail(schemas.metric!, replacement)).toBe('ok');
    expect(decodePayload(schemas.metric!, replacement, 0, 'BINARY')).toMatchObject({ name: '\uFFFD' });
  });
});
