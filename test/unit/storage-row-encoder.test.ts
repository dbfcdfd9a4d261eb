import fc from 'fast-check';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { createStorageRowEncoder, storageRowSizeBound, type WriterDescriptor } from '../../src/adapters/storage-row-encoder.js';
import { createAvroType } from '../../src/core/avro-type.js';
import { createRowConverter } from '../../src/core/rows/row-converter.js';
import type { Row, TableField, TableSchema } from '../../src/core/table-schema.js';
import { TributaryError } from '../../src/errors.js';
import { accessRecord, accessV2, audit, auditRecord, tableSchemaFor } from '../support/log-schemas.js';

/*
 * Every value is decoded back with protobufjs from the descriptor the encoder publishes, an
 * implementation independent of ours, as BigQuery decodes it.
 */

const TYPES: Record<number, string> = { 1: 'double', 3: 'int64', 5: 'int32', 8: 'bool', 9: 'string', 12: 'bytes' };

function decoderFor(descriptor: WriterDescriptor): protobuf.Type {
  const root = new protobuf.Root();
  const toType = (d: WriterDescriptor): protobuf.Type => {
    const type = new protobuf.Type(d.name);
    for (const f of d.field)
      type.add(
        new protobuf.Field(f.name, f.number, f.type === 11 ? (f.typeName as string) : (TYPES[f.type] as string), f.label === 3 ? 'repeated' : 'optional'),
      );
    return type;
  };
  root.add(toType(descriptor));
  for (const nested of descriptor.nestedType ?? []) root.add(toType(nested));
  root.resolveAll();
  return root.lookupType(descriptor.name);
}

function roundTrip(schema: TableSchema, row: Row): Record<string, unknown> {
  const encoder = createStorageRowEncoder(schema);
  const type = decoderFor(encoder.descriptor);
  const bytes = encoder.encode(row);
  expect(bytes.length).toBeLessThanOrEqual(storageRowSizeBound(row));
  return type.toObject(type.decode(bytes), { longs: String, bytes: String, arrays: false }) as Record<string, unknown>;
}

function one(field: TableField, value: Row[string]): unknown {
  return roundTrip({ fields: [field] }, { [field.name]: value })[field.name];
}

function failure(fn: () => unknown): TributaryError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TributaryError) return err;
    throw err;
  }
  throw new Error('expected a TributaryError');
}

describe('storage row encoder: INT64', () => {
  const field: TableField = { name: 'n', type: 'INTEGER' };
  it.each([
    [0, '0'],
    [1, '1'],
    [-1, '-1'],
    [127, '127'],
    [128, '128'],
    [2 ** 31, '2147483648'],
    [-(2 ** 31) - 1, '-2147483649'],
    [2 ** 32 + 5, '4294967301'],
    [Number.MAX_SAFE_INTEGER, '9007199254740991'],
    [Number.MIN_SAFE_INTEGER, '-9007199254740991'],
    ['9007199254740993', '9007199254740993'],
    ['-9007199254740993', '-9007199254740993'],
    ['9223372036854775807', '9223372036854775807'],
    ['-9223372036854775808', '-9223372036854775808'],
  ])('%s is written exactly', (value, expected) => {
    expect(one(field, value)).toBe(expected);
  });

  it('refuses integers outside INT64 and numbers that are not exact integers', () => {
    expect(failure(() => one(field, '9223372036854775808')).code).toBe('ROW_INVALID');
    expect(failure(() => one(field, 2 ** 60)).message).toContain('decimal strings');
    expect(failure(() => one(field, 1.5)).code).toBe('ROW_INVALID');
    expect(failure(() => one(field, 'ten')).code).toBe('ROW_INVALID');
  });
});

describe('storage row encoder: TIMESTAMP as int64 microseconds', () => {
  const field: TableField = { name: 'ts', type: 'TIMESTAMP' };
  it.each([
    ['1970-01-01T00:00:00.000000Z', '0'],
    ['1969-12-31T23:59:59.999999Z', '-1'],
    ['2023-11-14T22:13:20.123456Z', '1700000000123456'],
    ['2025-11-24T16:00:00.000001Z', '1764000000000001'],
    ['1900-01-01T00:00:00.500000Z', '-2208988799500000'],
    ['0001-01-01T00:00:00.000000Z', '-62135596800000000'],
    ['9999-12-31T23:59:59.999999Z', '253402300799999999'],
    ['2024-02-29 12:00:00', '1709208000000000'],
  ])('%s', (value, expected) => {
    expect(one(field, value)).toBe(expected);
  });

  it('reads a number as seconds since the epoch, as insertAll does', () => {
    expect(one(field, 1.5)).toBe('1500000');
  });

  it('refuses text that is not a timestamp in range', () => {
    expect(failure(() => one(field, '2023-02-30T00:00:00Z')).code).toBe('ROW_INVALID');
    expect(failure(() => one(field, 'yesterday')).code).toBe('ROW_INVALID');
  });
});

describe('storage row encoder: DATE as int32 days', () => {
  const field: TableField = { name: 'd', type: 'DATE' };
  it.each([
    ['1970-01-01', 0],
    ['1970-01-02', 1],
    ['1969-12-31', -1],
    ['1900-03-01', -25508],
    ['2000-02-29', 11016],
    ['0001-01-01', -719162],
    ['9999-12-31', 2932896],
  ])('%s', (value, expected) => {
    expect(one(field, value)).toBe(expected);
  });

  it('refuses dates that do not exist', () => {
    expect(failure(() => one(field, '2023-02-29')).code).toBe('ROW_INVALID');
    expect(failure(() => one(field, 19000)).code).toBe('ROW_INVALID');
  });
});

describe('storage row encoder: other scalars', () => {
  it('FLOAT64 as double, NaN and infinities from their text', () => {
    const field: TableField = { name: 'x', type: 'FLOAT' };
    expect(one(field, 1.5)).toBe(1.5);
    expect(one(field, -1e-300)).toBe(-1e-300);
    expect(one(field, 'NaN')).toBeNaN();
    expect(one(field, 'Infinity')).toBe(Infinity);
    expect(one(field, '-Infinity')).toBe(-Infinity);
  });

  it('BOOL, including the texts insertAll accepts ("false" stays false)', () => {
    const field: TableField = { name: 'b', type: 'BOOLEAN' };
    expect(one(field, true)).toBe(true);
    expect(one(field, false)).toBe(false);
    expect(one(field, 'false')).toBe(false);
    expect(one(field, 'TRUE')).toBe(true);
    expect(failure(() => one(field, 'yes')).code).toBe('ROW_INVALID');
  });

  it('BYTES from base64, byte for byte', () => {
    const data = Buffer.from([0, 1, 2, 250, 255]);
    expect(one({ name: 'b', type: 'BYTES' }, data.toString('base64'))).toBe(data.toString('base64'));
    expect(one({ name: 'b', type: 'BYTES' }, '')).toBe('');
    expect(failure(() => one({ name: 'b', type: 'BYTES' }, 'not base64!')).code).toBe('ROW_INVALID');
  });

  it.each([
    ['STRING', 'héllo ✓ 🎉', 'héllo ✓ 🎉'],
    ['STRING', 'x'.repeat(300), 'x'.repeat(300)],
    ['STRING', `${'a'.repeat(40)}${'✓'.repeat(60)}`, `${'a'.repeat(40)}${'✓'.repeat(60)}`],
    ['STRING', '✓'.repeat(42), '✓'.repeat(42)],
    ['STRING', 'x'.repeat(127), 'x'.repeat(127)],
    ['NUMERIC', '-123.450000000', '-123.450000000'],
    [
      'BIGNUMERIC',
      '12345678901234567890123456789012345678.12345678901234567890123456789012345678',
      '12345678901234567890123456789012345678.12345678901234567890123456789012345678',
    ],
    ['DATETIME', '1969-07-20T20:17:40.000000', '1969-07-20T20:17:40.000000'],
    ['TIME', '23:59:59.999999', '23:59:59.999999'],
    ['GEOGRAPHY', 'POINT(1 2)', 'POINT(1 2)'],
    ['JSON', '{"a":1}', '{"a":1}'],
  ])('%s as a string: %s', (type, value, expected) => {
    expect(one({ name: 'v', type }, value)).toBe(expected);
  });

  it('JSON holding an object is written as its JSON text; a number in a STRING column as its text', () => {
    expect(one({ name: 'j', type: 'JSON' }, { a: [1, 2] })).toBe('{"a":[1,2]}');
    expect(one({ name: 's', type: 'STRING' }, 42)).toBe('42');
  });

  it('NULL is an absent field', () => {
    expect(
      roundTrip(
        {
          fields: [
            { name: 'a', type: 'STRING' },
            { name: 'b', type: 'INT64' },
          ],
        },
        { a: null, b: 1 },
      ),
    ).toEqual({ b: '1' });
  });
});

describe('storage row encoder: records and repetition', () => {
  const schema: TableSchema = {
    fields: [
      { name: 'id', type: 'STRING', mode: 'REQUIRED' },
      { name: 'tags', type: 'STRING', mode: 'REPEATED' },
      { name: 'ns', type: 'INT64', mode: 'REPEATED' },
      {
        name: 'headers',
        type: 'RECORD',
        mode: 'REPEATED',
        fields: [
          { name: 'key', type: 'STRING', mode: 'REQUIRED' },
          { name: 'value', type: 'STRING' },
        ],
      },
      {
        name: 'outer',
        type: 'RECORD',
        fields: [
          { name: 'at', type: 'TIMESTAMP' },
          {
            name: 'inner',
            type: 'RECORD',
            fields: [
              {
                name: 'deep',
                type: 'RECORD',
                mode: 'REPEATED',
                fields: [
                  { name: 'd', type: 'DATE' },
                  { name: 'big', type: 'STRING' },
                ],
              },
            ],
          },
        ],
      },
    ],
  };

  it('nested records, repeated scalars and repeated records round-trip, long nested messages included', () => {
    const long = 'y'.repeat(20_000);
    const row: Row = {
      id: 'r1',
      tags: ['a', 'b', ''],
      ns: [1, -1, '9223372036854775807'],
      headers: [
        { key: 'host', value: 'example.com' },
        { key: 'empty', value: null },
      ],
      outer: {
        at: '1969-12-31T23:59:59.000001Z',
        inner: {
          deep: [
            { d: '1960-01-01', big: long },
            { d: '2030-12-31', big: 'z' },
          ],
        },
      },
    };
    expect(roundTrip(schema, row)).toEqual({
      id: 'r1',
      tags: ['a', 'b', ''],
      ns: ['1', '-1', '9223372036854775807'],
      headers: [{ key: 'host', value: 'example.com' }, { key: 'empty' }],
      outer: {
        at: '-999999',
        inner: {
          deep: [
            { d: -3653, big: long },
            { d: 22279, big: 'z' },
          ],
        },
      },
    });
  });

  it('matches columns case-insensitively, as BigQuery does', () => {
    expect(roundTrip(schema, { ID: 'x', Tags: ['t'] })).toEqual({ id: 'x', tags: ['t'] });
  });

  it('names a column the writer schema lacks as UNKNOWN_FIELD, at any depth', () => {
    expect(failure(() => roundTrip(schema, { id: 'x', extra: 1 }))).toMatchObject({ code: 'UNKNOWN_FIELD', message: 'no such field: extra.' });
    expect(failure(() => roundTrip(schema, { id: 'x', outer: { nope: 1 } }))).toMatchObject({ code: 'UNKNOWN_FIELD', message: 'no such field: outer.nope.' });
  });

  it('refuses NULL array elements and arrays for columns that are not REPEATED', () => {
    expect(failure(() => roundTrip(schema, { id: 'x', tags: ['a', null] })).code).toBe('ROW_INVALID');
    expect(failure(() => roundTrip(schema, { id: ['x'] })).code).toBe('ROW_INVALID');
  });

  it('numbers fields in table order and flattens nested types into the root descriptor', () => {
    const { descriptor } = createStorageRowEncoder(schema);
    expect(descriptor.field.map((f) => [f.name, f.number])).toEqual([
      ['id', 1],
      ['tags', 2],
      ['ns', 3],
      ['headers', 4],
      ['outer', 5],
    ]);
    expect(descriptor.nestedType?.map((n) => n.name)).toHaveLength(4);
  });

  it('refuses column names a proto descriptor cannot carry', () => {
    expect(failure(() => createStorageRowEncoder({ fields: [{ name: 'a-b', type: 'STRING' }] })).code).toBe('SCHEMA_INVALID');
  });
});

describe('storage row encoder: rows the converter makes', () => {
  it('keeps every value of the access and audit schemas, the size bound above the encoded size', () => {
    for (const [avro, make] of [
      [accessV2, (i: number) => accessRecord(i, { latency_ms: i % 2 === 0 ? null : { double: i / 3 } })],
      [audit, auditRecord],
    ] as const) {
      const type = createAvroType(avro);
      const convert = createRowConverter(avro);
      const schema = tableSchemaFor(avro);
      for (let i = 0; i < 50; i++) {
        const row = convert(type.fromBuffer(type.toBuffer(make(i))));
        const decoded = roundTrip(schema, row);
        expect(Object.keys(decoded).sort()).toEqual(
          Object.keys(row)
            .filter((k) => row[k] !== null && !(Array.isArray(row[k]) && (row[k] as unknown[]).length === 0))
            .sort(),
        );
      }
    }
  });
});

describe('storage row encoder: properties', () => {
  const schema: TableSchema = {
    fields: [
      { name: 's', type: 'STRING' },
      { name: 'n', type: 'INT64' },
      { name: 'x', type: 'FLOAT64' },
      { name: 'ts', type: 'TIMESTAMP' },
      { name: 'tags', type: 'STRING', mode: 'REPEATED' },
      {
        name: 'kv',
        type: 'RECORD',
        mode: 'REPEATED',
        fields: [
          { name: 'key', type: 'STRING' },
          { name: 'value', type: 'INT64', mode: 'REPEATED' },
        ],
      },
    ],
  };
  const int64Text = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String);
  const timestamp = fc.bigInt({ min: -62_135_596_800_000_000n, max: 253_402_300_799_999_999n });
  const row = fc.record({
    s: fc.option(fc.string({ unit: 'binary', maxLength: 300 }), { nil: null }),
    n: fc.oneof(fc.maxSafeInteger(), int64Text),
    x: fc.double({ noNaN: true }),
    ts: timestamp,
    tags: fc.array(fc.string({ unit: 'grapheme', maxLength: 80 }), { maxLength: 5 }),
    kv: fc.array(fc.record({ key: fc.string({ unit: 'binary', maxLength: 200 }), value: fc.array(int64Text, { maxLength: 4 }) }), { maxLength: 4 }),
  });

  it("decodes to the same values, and prepare()'s bound is never below the encoded size", () => {
    const encoder = createStorageRowEncoder(schema);
    const type = decoderFor(encoder.descriptor);
    fc.assert(
      fc.property(row, (r) => {
        const micros = r.ts;
        const asRow: Row = { ...r, ts: formatMicros(micros) };
        const bytes = encoder.encode(asRow);
        expect(bytes.length).toBeLessThanOrEqual(storageRowSizeBound(asRow));
        const back = type.toObject(type.decode(bytes), { longs: String, arrays: true }) as Record<string, unknown>;
        expect(back['s'] ?? null).toBe(r.s);
        expect(back['n']).toBe(String(r.n));
        expect(back['ts']).toBe(String(micros));
        expect(back['tags']).toEqual(r.tags);
        expect(back['kv']).toEqual(r.kv.map((e) => ({ key: e.key, value: e.value })));
        expect(Object.is(back['x'], r.x)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

/** The converter's TIMESTAMP text, computed independently of the encoder (BigInt arithmetic, UTC). */
function formatMicros(micros: bigint): string {
  const day = 86_400_000_000n;
  let days = micros / day;
  let rest = micros % day;
  if (rest < 0n) {
    rest += day;
    days -= 1n;
  }
  const date = new Date(Number(days) * 86_400_000);
  const iso = date.toISOString().slice(0, 10);
  const ofDay = Number(rest);
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const seconds = Math.floor(ofDay / 1e6);
  return `${iso}T${pad(Math.floor(seconds / 3600))}:${pad(Math.floor((seconds % 3600) / 60))}:${pad(seconds % 60)}.${pad(ofDay % 1e6, 6)}Z`;
}
