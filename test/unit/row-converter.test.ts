import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TributaryError } from '../../src/errors.js';
import { createAvroType, type AvroSchema } from '../../src/core/avro-type.js';
import { bigQueryFieldsFor } from '../../src/core/rows/bigquery-fields.js';
import { createRowConverter } from '../../src/core/rows/row-converter.js';
import type { Row, RowValue, TableField } from '../../src/core/table-schema.js';

function schemaOf(json: unknown): AvroSchema {
  return json as AvroSchema;
}

/** A record schema `T` with the given fields. */
function record(fields: unknown[], extra: Record<string, unknown> = {}): AvroSchema {
  return schemaOf({ type: 'record', name: 'T', ...extra, fields });
}

/** Encodes and decodes with the project's avsc setup, so tests see real decoded values. */
function decoded(schema: AvroSchema, value: unknown): unknown {
  const type = createAvroType(schema);
  return type.fromBuffer(type.toBuffer(value));
}

function convert(schema: AvroSchema, value: unknown): Row {
  return createRowConverter(schema)(decoded(schema, value));
}

/** Converts `{f: value}` through a one-field record of `type` and returns the `f` column. */
function one(type: unknown, value: unknown): RowValue | undefined {
  return convert(record([{ name: 'f', type }]), { f: value }).f;
}

/** The BigQuery column for a one-field record of `type`. */
function column(type: unknown): TableField | undefined {
  return bigQueryFieldsFor(record([{ name: 'f', type }]))[0];
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

/** Minimal big-endian two's complement of n, or exactly `size` bytes. */
function twos(n: bigint, size?: number): Buffer {
  let bytes = size ?? 1;
  if (size === undefined) while (n >= 1n << BigInt(8 * bytes - 1) || n < -(1n << BigInt(8 * bytes - 1))) bytes++;
  const unsigned = n < 0n ? (1n << BigInt(8 * bytes)) + n : n;
  return Buffer.from(unsigned.toString(16).padStart(bytes * 2, '0'), 'hex');
}

const tsMillis = { type: 'long', logicalType: 'timestamp-millis' };
const tsMicros = { type: 'long', logicalType: 'timestamp-micros' };
const localMillis = { type: 'long', logicalType: 'local-timestamp-millis' };
const localMicros = { type: 'long', logicalType: 'local-timestamp-micros' };
const date = { type: 'int', logicalType: 'date' };
const timeMillis = { type: 'int', logicalType: 'time-millis' };
const timeMicros = { type: 'long', logicalType: 'time-micros' };

describe('createRowConverter: schema', () => {
  it('requires a top-level record', () => {
    expect(failure(() => createRowConverter(schemaOf('string'))).code).toBe('SCHEMA_INVALID');
    expect(failure(() => createRowConverter(schemaOf({ type: 'array', items: 'int' }))).code).toBe('SCHEMA_INVALID');
    expect(failure(() => bigQueryFieldsFor(schemaOf(['null', 'int']))).code).toBe('SCHEMA_INVALID');
  });

  it('rejects fields that BigQuery would see as one column (case-insensitive)', () => {
    const err = failure(() =>
      createRowConverter(
        record([
          { name: 'id', type: 'int' },
          { name: 'ID', type: 'int' },
        ]),
      ),
    );
    expect(err.code).toBe('SCHEMA_INVALID');
    expect(err.message).toContain('"id" and "ID"');
  });

  it('rejects undefined type names', () => {
    expect(failure(() => createRowConverter(record([{ name: 'f', type: 'Missing' }]))).code).toBe('SCHEMA_INVALID');
  });
});

describe('createRowConverter: primitives', () => {
  it('maps a null-only field to NULL (NULLABLE STRING)', () => {
    expect(one('null', null)).toBeNull();
    expect(column('null')).toEqual({ name: 'f', type: 'STRING', mode: 'NULLABLE' });
  });

  it('maps boolean to BOOL', () => {
    expect(one('boolean', true)).toBe(true);
    expect(one('boolean', false)).toBe(false);
    expect(column('boolean')).toEqual({ name: 'f', type: 'BOOL', mode: 'REQUIRED' });
  });

  it('maps int to INT64 numbers', () => {
    expect(one('int', 2147483647)).toBe(2147483647);
    expect(one('int', -2147483648)).toBe(-2147483648);
    expect(column('int')).toEqual({ name: 'f', type: 'INT64', mode: 'REQUIRED' });
  });

  it('maps long to a number within ±(2^53-1) and to an exact string beyond', () => {
    expect(one('long', 0n)).toBe(0);
    expect(one('long', 9007199254740991n)).toBe(9007199254740991);
    expect(one('long', -9007199254740991n)).toBe(-9007199254740991);
    expect(one('long', 9007199254740992n)).toBe('9007199254740992');
    expect(one('long', -9007199254740992n)).toBe('-9007199254740992');
    expect(one('long', 9223372036854775807n)).toBe('9223372036854775807');
    expect(one('long', -9223372036854775807n)).toBe('-9223372036854775807');
    expect(one('long', -9223372036854775808n)).toBe('-9223372036854775808');
    expect(column('long')).toEqual({ name: 'f', type: 'INT64', mode: 'REQUIRED' });
  });

  it('maps float and double to FLOAT64, with NaN and infinities as strings', () => {
    for (const type of ['float', 'double']) {
      expect(one(type, 1.5)).toBe(1.5);
      expect(one(type, -0.25)).toBe(-0.25);
      expect(one(type, Number.NaN)).toBe('NaN');
      expect(one(type, Number.POSITIVE_INFINITY)).toBe('Infinity');
      expect(one(type, Number.NEGATIVE_INFINITY)).toBe('-Infinity');
      expect(column(type)).toEqual({ name: 'f', type: 'FLOAT64', mode: 'REQUIRED' });
    }
    expect(one('double', 0.1)).toBe(0.1);
  });

  it('maps bytes and fixed to base64 BYTES', () => {
    expect(one('bytes', Buffer.from([0, 1, 2, 253, 254, 255]))).toBe('AAEC/f7/');
    expect(one('bytes', Buffer.alloc(0))).toBe('');
    const fixed = { type: 'fixed', name: 'Hash', size: 4 };
    expect(one(fixed, Buffer.from('abcd'))).toBe('YWJjZA==');
    expect(column('bytes')).toEqual({ name: 'f', type: 'BYTES', mode: 'REQUIRED' });
    expect(column(fixed)).toEqual({ name: 'f', type: 'BYTES', mode: 'REQUIRED' });
  });

  it('maps string, enum and uuid to STRING', () => {
    expect(one('string', 'héllo')).toBe('héllo');
    const color = { type: 'enum', name: 'Color', symbols: ['RED', 'GREEN'] };
    expect(one(color, 'GREEN')).toBe('GREEN');
    const uuid = { type: 'string', logicalType: 'uuid' };
    expect(one(uuid, '123e4567-e89b-12d3-a456-426614174000')).toBe('123e4567-e89b-12d3-a456-426614174000');
    for (const type of ['string', color, uuid]) expect(column(type)).toEqual({ name: 'f', type: 'STRING', mode: 'REQUIRED' });
  });

  it('ignores unknown logical types and logical types invalid for their underlying type', () => {
    expect(one({ type: 'long', logicalType: 'timestamp-nanos' }, 5n)).toBe(5);
    expect(column({ type: 'long', logicalType: 'timestamp-nanos' })?.type).toBe('INT64');
    expect(one({ type: 'string', logicalType: 'timestamp-millis' }, 'x')).toBe('x');
    expect(column({ type: 'string', logicalType: 'timestamp-millis' })?.type).toBe('STRING');
    expect(one({ type: 'int', logicalType: 'timestamp-millis' }, 5)).toBe(5);
    expect(one({ type: 'long', logicalType: 'date' }, 5n)).toBe(5);
    expect(one({ type: 'long', logicalType: 'time-millis' }, 5n)).toBe(5);
    expect(one({ type: 'int', logicalType: 'time-micros' }, 5)).toBe(5);
    expect(one({ type: 'string', logicalType: 'decimal', precision: 4 }, '1')).toBe('1');
  });
});

describe('createRowConverter: timestamps', () => {
  const range = "is outside BigQuery's TIMESTAMP range 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z";

  it('formats timestamp-millis exactly, including before 1970', () => {
    expect(one(tsMillis, 0n)).toBe('1970-01-01T00:00:00.000000Z');
    expect(one(tsMillis, -1n)).toBe('1969-12-31T23:59:59.999000Z');
    expect(one(tsMillis, 1700000000123n)).toBe('2023-11-14T22:13:20.123000Z');
    expect(one(tsMillis, 951782400000n)).toBe('2000-02-29T00:00:00.000000Z');
    expect(one(tsMillis, -62135596800000n)).toBe('0001-01-01T00:00:00.000000Z');
    expect(one(tsMillis, 253402300799999n)).toBe('9999-12-31T23:59:59.999000Z');
    expect(column(tsMillis)).toEqual({ name: 'f', type: 'TIMESTAMP', mode: 'REQUIRED' });
  });

  it('rejects timestamp-millis one unit outside the range', () => {
    expect(failure(() => one(tsMillis, -62135596800001n)).message).toBe(`field "f": timestamp-millis value -62135596800001 ${range}`);
    expect(failure(() => one(tsMillis, 253402300800000n)).message).toBe(`field "f": timestamp-millis value 253402300800000 ${range}`);
    expect(failure(() => one(tsMillis, 9223372036854775807n)).code).toBe('CONVERSION_FAILED');
    expect(failure(() => one(tsMillis, -9223372036854775808n)).code).toBe('CONVERSION_FAILED');
  });

  it('formats timestamp-micros exactly, including before 1970 and beyond 2^53', () => {
    expect(one(tsMicros, 0n)).toBe('1970-01-01T00:00:00.000000Z');
    expect(one(tsMicros, -1n)).toBe('1969-12-31T23:59:59.999999Z');
    expect(one(tsMicros, 86399999999n)).toBe('1970-01-01T23:59:59.999999Z');
    expect(one(tsMicros, 86400000000n)).toBe('1970-01-02T00:00:00.000000Z');
    expect(one(tsMicros, -86400000000n)).toBe('1969-12-31T00:00:00.000000Z');
    expect(one(tsMicros, -86400000001n)).toBe('1969-12-30T23:59:59.999999Z');
    expect(one(tsMicros, 1700000000123456n)).toBe('2023-11-14T22:13:20.123456Z');
    expect(one(tsMicros, 9007199254740993n)).toBe('2255-06-05T23:47:34.740993Z');
    expect(one(tsMicros, -62135596800000000n)).toBe('0001-01-01T00:00:00.000000Z');
    expect(one(tsMicros, 253402300799999999n)).toBe('9999-12-31T23:59:59.999999Z');
    expect(column(tsMicros)).toEqual({ name: 'f', type: 'TIMESTAMP', mode: 'REQUIRED' });
  });

  it('rejects timestamp-micros one unit outside the range', () => {
    expect(failure(() => one(tsMicros, -62135596800000001n)).message).toBe(`field "f": timestamp-micros value -62135596800000001 ${range}`);
    const err = failure(() => one(tsMicros, 253402300800000000n));
    expect(err.code).toBe('CONVERSION_FAILED');
    expect(err.message).toBe(`field "f": timestamp-micros value 253402300800000000 ${range}`);
  });

  it('agrees with Date for any millisecond instant in range', () => {
    fc.assert(
      fc.property(fc.integer({ min: -62135596800000, max: 253402300799999 }), fc.integer({ min: 0, max: 999 }), (millis, extra) => {
        const iso = new Date(millis).toISOString().slice(0, -1);
        expect(one(tsMillis, BigInt(millis))).toBe(`${iso}000Z`);
        const micros = BigInt(millis) * 1000n + BigInt(extra);
        expect(one(tsMicros, micros)).toBe(`${iso}${String(extra).padStart(3, '0')}Z`);
      }),
      { numRuns: 300 },
    );
  });

  it('maps local-timestamp-millis/micros to DATETIME without a zone', () => {
    expect(one(localMillis, -1n)).toBe('1969-12-31T23:59:59.999000');
    expect(one(localMicros, 1700000000123456n)).toBe('2023-11-14T22:13:20.123456');
    expect(one(localMicros, -62135596800000000n)).toBe('0001-01-01T00:00:00.000000');
    expect(one(localMicros, 253402300799999999n)).toBe('9999-12-31T23:59:59.999999');
    expect(failure(() => one(localMicros, 253402300800000000n)).message).toContain('DATETIME range 0001-01-01T00:00:00..9999-12-31T23:59:59.999999');
    expect(failure(() => one(localMillis, -62135596800001n)).code).toBe('CONVERSION_FAILED');
    expect(column(localMillis)).toEqual({ name: 'f', type: 'DATETIME', mode: 'REQUIRED' });
    expect(column(localMicros)).toEqual({ name: 'f', type: 'DATETIME', mode: 'REQUIRED' });
  });
});

describe('createRowConverter: date and time', () => {
  it('maps date to DATE within 0001-01-01..9999-12-31', () => {
    expect(one(date, 0)).toBe('1970-01-01');
    expect(one(date, -1)).toBe('1969-12-31');
    expect(one(date, 11016)).toBe('2000-02-29');
    expect(one(date, -719162)).toBe('0001-01-01');
    expect(one(date, 2932896)).toBe('9999-12-31');
    expect(failure(() => one(date, -719163)).message).toBe(`field "f": date value -719163 is outside BigQuery's DATE range 0001-01-01..9999-12-31`);
    expect(failure(() => one(date, 2932897)).code).toBe('CONVERSION_FAILED');
    expect(column(date)).toEqual({ name: 'f', type: 'DATE', mode: 'REQUIRED' });
  });

  it('maps time-millis and time-micros to TIME within [0, 24h)', () => {
    expect(one(timeMillis, 0)).toBe('00:00:00.000000');
    expect(one(timeMillis, 45296789)).toBe('12:34:56.789000');
    expect(one(timeMillis, 86399999)).toBe('23:59:59.999000');
    expect(failure(() => one(timeMillis, 86400000)).code).toBe('CONVERSION_FAILED');
    expect(failure(() => one(timeMillis, -1)).message).toContain('time-millis value -1 is outside');
    expect(one(timeMicros, 0n)).toBe('00:00:00.000000');
    expect(one(timeMicros, 86399999999n)).toBe('23:59:59.999999');
    expect(failure(() => one(timeMicros, 86400000000n)).message).toContain('time-micros value 86400000000 is outside');
    expect(failure(() => one(timeMicros, -1n)).code).toBe('CONVERSION_FAILED');
    expect(column(timeMillis)).toEqual({ name: 'f', type: 'TIME', mode: 'REQUIRED' });
    expect(column(timeMicros)).toEqual({ name: 'f', type: 'TIME', mode: 'REQUIRED' });
  });
});

describe('createRowConverter: decimals', () => {
  const dec = (precision: number, scale?: number): Record<string, unknown> =>
    scale === undefined ? { type: 'bytes', logicalType: 'decimal', precision } : { type: 'bytes', logicalType: 'decimal', precision, scale };

  it('writes exact decimal strings from two’s complement bytes', () => {
    expect(one(dec(10, 4), twos(-1234500n))).toBe('-123.4500');
    expect(one(dec(10, 4), twos(1234500n))).toBe('123.4500');
    expect(one(dec(10, 2), twos(5n))).toBe('0.05');
    expect(one(dec(10, 2), twos(-5n))).toBe('-0.05');
    expect(one(dec(10, 4), twos(7n))).toBe('0.0007');
    expect(one(dec(10, 4), twos(0n))).toBe('0.0000');
    expect(one(dec(10, 4), Buffer.alloc(0))).toBe('0.0000');
    expect(one(dec(10), twos(42n))).toBe('42');
    expect(one(dec(10, 0), twos(-42n))).toBe('-42');
    expect(one(dec(10, 2), twos(128n))).toBe('1.28');
    expect(one(dec(10, 2), twos(-128n))).toBe('-1.28');
    // Redundant sign-extension bytes are allowed.
    expect(one(dec(10, 2), Buffer.from([0xff, 0xff, 0xfe]))).toBe('-0.02');
    expect(one(dec(10, 2), Buffer.from([0x00, 0x00, 0x02]))).toBe('0.02');
  });

  it('handles values wider than 64 bits exactly', () => {
    const max = 10n ** 38n - 1n;
    expect(one(dec(38, 9), twos(max))).toBe('99999999999999999999999999999.999999999');
    expect(one(dec(38, 9), twos(-max))).toBe('-99999999999999999999999999999.999999999');
    expect(one(dec(76, 38), twos(-(10n ** 75n)))).toBe(`-1${'0'.repeat(37)}.${'0'.repeat(38)}`);
  });

  it('decodes fixed decimals', () => {
    const fixed = { type: 'fixed', name: 'Money', size: 8, logicalType: 'decimal', precision: 18, scale: 2 };
    expect(one(fixed, twos(-123456n, 8))).toBe('-1234.56');
    expect(one(fixed, twos(0n, 8))).toBe('0.00');
    expect(column(fixed)).toEqual({ name: 'f', type: 'NUMERIC', mode: 'REQUIRED', precision: '18', scale: '2' });
  });

  it('chooses NUMERIC, BIGNUMERIC or STRING by precision and scale', () => {
    expect(column(dec(10, 4))).toEqual({ name: 'f', type: 'NUMERIC', mode: 'REQUIRED', precision: '10', scale: '4' });
    expect(column(dec(5))).toEqual({ name: 'f', type: 'NUMERIC', mode: 'REQUIRED', precision: '5', scale: '0' });
    expect(column(dec(38, 9))?.type).toBe('NUMERIC');
    expect(column(dec(29, 0))?.type).toBe('NUMERIC');
    expect(column(dec(2, 2))?.type).toBe('NUMERIC');
    expect(column(dec(30, 0))).toEqual({ name: 'f', type: 'BIGNUMERIC', mode: 'REQUIRED', precision: '30', scale: '0' });
    expect(column(dec(20, 10))?.type).toBe('BIGNUMERIC');
    expect(column(dec(76, 38))).toEqual({ name: 'f', type: 'BIGNUMERIC', mode: 'REQUIRED', precision: '76', scale: '38' });
    expect(column(dec(39, 0))?.type).toBe('STRING');
    expect(column(dec(77, 38))?.type).toBe('STRING');
    expect(column(dec(50, 39))).toEqual({ name: 'f', type: 'STRING', mode: 'REQUIRED' });
    expect(one(dec(50, 39), twos(-5n))).toBe('-0.000000000000000000000000000000000000005');
  });

  it('ignores invalid decimal parameters (falls back to BYTES)', () => {
    expect(column(dec(2, 3))?.type).toBe('BYTES');
    expect(column(dec(0))?.type).toBe('BYTES');
    expect(column({ type: 'bytes', logicalType: 'decimal' })?.type).toBe('BYTES');
    expect(one(dec(2, 3), Buffer.from([1]))).toBe('AQ==');
    // fixed(16) holds at most 38 digits
    expect(column({ type: 'fixed', name: 'F', size: 16, logicalType: 'decimal', precision: 38 })?.type).toBe('BIGNUMERIC');
    expect(column({ type: 'fixed', name: 'F', size: 16, logicalType: 'decimal', precision: 39 })?.type).toBe('BYTES');
  });

  it('rejects a value wider than the declared precision of a NUMERIC/BIGNUMERIC column', () => {
    expect(failure(() => one(dec(3, 1), twos(1000n))).message).toBe('field "f": decimal value 100.0 has more than the declared precision of 3 digits');
    expect(one(dec(3, 1), twos(-999n))).toBe('-99.9');
  });
});

describe('createRowConverter: records, arrays and maps', () => {
  it('converts nested records', () => {
    const schema = record([
      { name: 'id', type: 'string' },
      {
        name: 'user',
        type: {
          type: 'record',
          name: 'User',
          fields: [
            { name: 'name', type: 'string' },
            { name: 'age', type: 'int' },
          ],
        },
      },
    ]);
    expect(convert(schema, { id: 'a', user: { name: 'n', age: 3 } })).toEqual({ id: 'a', user: { name: 'n', age: 3 } });
    expect(bigQueryFieldsFor(schema)).toEqual([
      { name: 'id', type: 'STRING', mode: 'REQUIRED' },
      {
        name: 'user',
        type: 'RECORD',
        mode: 'REQUIRED',
        fields: [
          { name: 'name', type: 'STRING', mode: 'REQUIRED' },
          { name: 'age', type: 'INT64', mode: 'REQUIRED' },
        ],
      },
    ]);
  });

  it('converts arrays to REPEATED', () => {
    const tags = { type: 'array', items: 'string' };
    expect(one(tags, ['a', 'b'])).toEqual(['a', 'b']);
    expect(one(tags, [])).toEqual([]);
    expect(one({ type: 'array', items: 'long' }, [1n, 2n ** 60n])).toEqual([1, '1152921504606846976']);
    expect(column(tags)).toEqual({ name: 'f', type: 'STRING', mode: 'REPEATED' });
    expect(column({ type: 'array', items: ['null', 'int'] })).toEqual({ name: 'f', type: 'INT64', mode: 'REPEATED' });
  });

  it('rejects a null array element, naming its index', () => {
    const err = failure(() => one({ type: 'array', items: ['null', 'int'] }, [{ int: 1 }, { int: 2 }, null]));
    expect(err.code).toBe('CONVERSION_FAILED');
    expect(err.message).toMatch(/^field "f\[2\]": arrays cannot hold NULL/);
    expect(one({ type: 'array', items: ['null', 'int'] }, [{ int: 1 }, { int: 2 }])).toEqual([1, 2]);
  });

  it('wraps nested arrays in a RECORD with a REPEATED `value`', () => {
    const matrix = { type: 'array', items: { type: 'array', items: 'int' } };
    expect(one(matrix, [[1, 2], [], [3]])).toEqual([{ value: [1, 2] }, { value: [] }, { value: [3] }]);
    expect(column(matrix)).toEqual({
      name: 'f',
      type: 'RECORD',
      mode: 'REPEATED',
      fields: [{ name: 'value', type: 'INT64', mode: 'REPEATED' }],
    });
    const cube = { type: 'array', items: matrix };
    expect(one(cube, [[[1], [2, 3]]])).toEqual([{ value: [{ value: [1] }, { value: [2, 3] }] }]);
    expect(column(cube)).toEqual({
      name: 'f',
      type: 'RECORD',
      mode: 'REPEATED',
      fields: [{ name: 'value', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'value', type: 'INT64', mode: 'REPEATED' }] }],
    });
    const arrayOfMaps = { type: 'array', items: { type: 'map', values: 'int' } };
    expect(one(arrayOfMaps, [{ a: 1 }, {}])).toEqual([{ value: [{ key: 'a', value: 1 }] }, { value: [] }]);
    expect(column(arrayOfMaps)?.fields?.[0]).toEqual({
      name: 'value',
      type: 'RECORD',
      mode: 'REPEATED',
      fields: [
        { name: 'key', type: 'STRING', mode: 'REQUIRED' },
        { name: 'value', type: 'INT64', mode: 'REQUIRED' },
      ],
    });
    const nullableInner = { type: 'array', items: ['null', { type: 'array', items: 'int' }] };
    expect(one(nullableInner, [null, { array: [1] }])).toEqual([{ value: [] }, { value: [1] }]);
  });

  it('converts maps to REPEATED key/value records in insertion order', () => {
    const map = { type: 'map', values: 'long' };
    expect(one(map, { b: 1n, a: 2n, c: 2n ** 62n })).toEqual([
      { key: 'b', value: 1 },
      { key: 'a', value: 2 },
      { key: 'c', value: '4611686018427387904' },
    ]);
    expect(one(map, {})).toEqual([]);
    expect(column(map)).toEqual({
      name: 'f',
      type: 'RECORD',
      mode: 'REPEATED',
      fields: [
        { name: 'key', type: 'STRING', mode: 'REQUIRED' },
        { name: 'value', type: 'INT64', mode: 'REQUIRED' },
      ],
    });
    const nullableValues = { type: 'map', values: ['null', 'string'] };
    expect(one(nullableValues, { a: null, b: { string: 'x' } })).toEqual([
      { key: 'a', value: null },
      { key: 'b', value: 'x' },
    ]);
    expect(column(nullableValues)?.fields?.[1]).toEqual({ name: 'value', type: 'STRING', mode: 'NULLABLE' });
    const mapOfArrays = { type: 'map', values: { type: 'array', items: 'string' } };
    expect(one(mapOfArrays, { a: ['x'] })).toEqual([{ key: 'a', value: ['x'] }]);
    expect(column(mapOfArrays)?.fields?.[1]).toEqual({ name: 'value', type: 'STRING', mode: 'REPEATED' });
  });

  it('names nested paths in errors: records, array indices and map keys', () => {
    const schema = record([
      {
        name: 'request',
        type: {
          type: 'record',
          name: 'Request',
          fields: [
            { name: 'headers', type: { type: 'array', items: tsMicros } },
            { name: 'times', type: { type: 'map', values: tsMillis } },
          ],
        },
      },
    ]);
    const err = failure(() => convert(schema, { request: { headers: [0n, 1n, 253402300800000000n], times: {} } }));
    expect(err.code).toBe('CONVERSION_FAILED');
    expect(err.message).toBe(
      `field "request.headers[2]": timestamp-micros value 253402300800000000 is outside BigQuery's TIMESTAMP range 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z`,
    );
    const mapErr = failure(() => convert(schema, { request: { headers: [], times: { 'a.b': 253402300800000n } } }));
    expect(mapErr.message).toMatch(/^field "request\.times\["a\.b"\]": timestamp-millis value/);
  });

  it('reports values that are not what the schema decodes to', () => {
    const toRow = createRowConverter(record([{ name: 'n', type: 'int' }]));
    expect(failure(() => toRow({ n: 'x' })).message).toBe('field "n": expected an int, got "x"');
    expect(failure(() => toRow(null)).message).toBe('record: expected a record, got null');
  });
});

describe('createRowConverter: unions', () => {
  it('maps [null, T] (null in any position) to NULLABLE T', () => {
    for (const type of [
      ['null', 'string'],
      ['string', 'null'],
    ]) {
      expect(one(type, null)).toBeNull();
      expect(one(type, { string: 'x' })).toBe('x');
      expect(column(type)).toEqual({ name: 'f', type: 'STRING', mode: 'NULLABLE' });
    }
    expect(one(['null', tsMillis], { long: 0n })).toBe('1970-01-01T00:00:00.000000Z');
    expect(column(['null', tsMillis])).toEqual({ name: 'f', type: 'TIMESTAMP', mode: 'NULLABLE' });
    const inner = { type: 'record', name: 'Inner', fields: [{ name: 'x', type: 'int' }] };
    expect(one(['null', inner], { Inner: { x: 1 } })).toEqual({ x: 1 });
    expect(column(['null', inner])).toEqual({ name: 'f', type: 'RECORD', mode: 'NULLABLE', fields: [{ name: 'x', type: 'INT64', mode: 'REQUIRED' }] });
  });

  it('keeps a nullable array or map REPEATED and writes null as []', () => {
    const tags = ['null', { type: 'array', items: 'string' }];
    expect(one(tags, null)).toEqual([]);
    expect(one(tags, { array: ['a'] })).toEqual(['a']);
    expect(column(tags)).toEqual({ name: 'f', type: 'STRING', mode: 'REPEATED' });
    const map = [{ type: 'map', values: 'int' }, 'null'];
    expect(one(map, null)).toEqual([]);
    expect(one(map, { map: { a: 1 } })).toEqual([{ key: 'a', value: 1 }]);
    expect(column(map)?.mode).toBe('REPEATED');
  });

  it('unwraps a single-branch union without null as REQUIRED', () => {
    expect(one(['int'], { int: 4 })).toBe(4);
    expect(column(['int'])).toEqual({ name: 'f', type: 'INT64', mode: 'REQUIRED' });
    expect(one(['null'], null)).toBeNull();
    expect(column(['null'])).toEqual({ name: 'f', type: 'STRING', mode: 'NULLABLE' });
  });

  it('maps a multi-branch union to a RECORD with one NULLABLE field per branch', () => {
    const type = ['null', 'int', 'string', { type: 'record', name: 'Point', namespace: 'geo', fields: [{ name: 'x', type: 'double' }] }];
    expect(one(type, null)).toBeNull();
    expect(one(type, { int: 3 })).toEqual({ int: 3, string: null, Point: null });
    expect(one(type, { string: 's' })).toEqual({ int: null, string: 's', Point: null });
    expect(one(type, { 'geo.Point': { x: 1.5 } })).toEqual({ int: null, string: null, Point: { x: 1.5 } });
    expect(column(type)).toEqual({
      name: 'f',
      type: 'RECORD',
      mode: 'NULLABLE',
      fields: [
        { name: 'int', type: 'INT64', mode: 'NULLABLE' },
        { name: 'string', type: 'STRING', mode: 'NULLABLE' },
        { name: 'Point', type: 'RECORD', mode: 'NULLABLE', fields: [{ name: 'x', type: 'FLOAT64', mode: 'REQUIRED' }] },
      ],
    });
  });

  it('makes the union RECORD REQUIRED without a null branch and keeps array branches REPEATED', () => {
    const type = ['long', 'boolean', 'bytes', 'float', 'double', { type: 'array', items: 'int' }, { type: 'map', values: 'string' }];
    expect(one(type, { long: 2n ** 60n })).toEqual({ long: '1152921504606846976', boolean: null, bytes: null, float: null, double: null, array: [], map: [] });
    expect(one(type, { array: [1, 2] })).toEqual({ long: null, boolean: null, bytes: null, float: null, double: null, array: [1, 2], map: [] });
    expect(one(type, { map: { k: 'v' } })).toMatchObject({ array: [], map: [{ key: 'k', value: 'v' }] });
    expect(one(type, { double: Number.NaN })).toMatchObject({ double: 'NaN', float: null });
    const col = column(type);
    expect(col?.mode).toBe('REQUIRED');
    expect(col?.fields?.map((f) => [f.name, f.type, f.mode])).toEqual([
      ['long', 'INT64', 'NULLABLE'],
      ['boolean', 'BOOL', 'NULLABLE'],
      ['bytes', 'BYTES', 'NULLABLE'],
      ['float', 'FLOAT64', 'NULLABLE'],
      ['double', 'FLOAT64', 'NULLABLE'],
      ['array', 'INT64', 'REPEATED'],
      ['map', 'RECORD', 'REPEATED'],
    ]);
  });

  it('uses full names (dots as _) for branches whose short names collide', () => {
    const a = { type: 'record', name: 'Rec', namespace: 'com.a', fields: [{ name: 'x', type: 'int' }] };
    const b = { type: 'record', name: 'Rec', namespace: 'com.b', fields: [{ name: 'y', type: 'string' }] };
    const c = { type: 'enum', name: 'Kind', namespace: 'com.a', symbols: ['K'] };
    const type = ['null', a, b, c];
    expect(one(type, { 'com.b.Rec': { y: 'q' } })).toEqual({ com_a_Rec: null, com_b_Rec: { y: 'q' }, Kind: null });
    expect(one(type, { 'com.a.Kind': 'K' })).toEqual({ com_a_Rec: null, com_b_Rec: null, Kind: 'K' });
    expect(column(type)?.fields?.map((f) => f.name)).toEqual(['com_a_Rec', 'com_b_Rec', 'Kind']);
  });

  it('reads branches named like inherited methods by own property only', () => {
    const type = [{ type: 'record', name: 'unwrap', fields: [{ name: 'x', type: 'int' }] }, 'int'];
    expect(one(type, { int: 1 })).toEqual({ unwrap: null, int: 1 });
    expect(one(type, { unwrap: { x: 2 } })).toEqual({ unwrap: { x: 2 }, int: null });
  });
});

describe('createRowConverter: names and recursion', () => {
  it('resolves a short name in the enclosing namespace, not the outer one', () => {
    // Inside org.other, `Inner` means org.other.Inner, which does not exist (avsc agrees).
    const schema = schemaOf({
      type: 'record',
      name: 'Event',
      namespace: 'com.acme',
      fields: [
        { name: 'a', type: { type: 'record', name: 'Inner', fields: [{ name: 'v', type: 'int' }] } },
        { name: 'd', type: { type: 'record', name: 'Other', namespace: 'org.other', fields: [{ name: 'i', type: 'Inner' }] } },
      ],
    });
    expect(() => createAvroType(schema)).toThrow();
    const err = failure(() => createRowConverter(schema));
    expect(err.code).toBe('SCHEMA_INVALID');
    expect(err.message).toContain('org.other.Inner');
  });

  it('resolves names across namespaces, including dotted names', () => {
    const fixedSchema = schemaOf({
      type: 'record',
      name: 'Event',
      namespace: 'com.acme',
      fields: [
        { name: 'a', type: { type: 'record', name: 'Inner', fields: [{ name: 'v', type: 'int' }] } },
        { name: 'b', type: 'Inner' },
        { name: 'c', type: 'com.acme.Inner' },
        {
          name: 'd',
          type: {
            type: 'record',
            name: 'Other',
            namespace: 'org.other',
            fields: [
              { name: 'j', type: 'com.acme.Inner' },
              { name: 'k', type: { type: 'enum', name: 'Mood', symbols: ['OK'] } },
            ],
          },
        },
        { name: 'e', type: { type: 'fixed', name: 'Id', size: 2 } },
        { name: 'f', type: ['null', 'Id', 'Inner', 'org.other.Mood'] },
        { name: 'g', type: { type: 'record', name: 'x.y.Tree', fields: [{ name: 'kids', type: { type: 'array', items: 'Tree' } }] } },
      ],
    });
    const value = {
      a: { v: 1 },
      b: { v: 2 },
      c: { v: 3 },
      d: { j: { v: 5 }, k: 'OK' },
      e: Buffer.from([1, 2]),
      f: { 'org.other.Mood': 'OK' },
      g: { kids: [{ kids: [] }] },
    };
    expect(convert(fixedSchema, value)).toEqual({
      a: { v: 1 },
      b: { v: 2 },
      c: { v: 3 },
      d: { j: { v: 5 }, k: 'OK' },
      e: 'AQI=',
      f: { Id: null, Inner: null, Mood: 'OK' },
      g: { kids: [{ kids: [] }] },
    });
    expect(convert(fixedSchema, { ...value, f: { 'com.acme.Id': Buffer.from([9, 9]) } }).f).toEqual({ Id: 'CQk=', Inner: null, Mood: null });
  });

  it('converts recursive records and refuses to build a table for them', () => {
    const list = record([
      { name: 'value', type: 'int' },
      { name: 'next', type: ['null', 'T'] },
    ]);
    expect(convert(list, { value: 1, next: { T: { value: 2, next: { T: { value: 3, next: null } } } } })).toEqual({
      value: 1,
      next: { value: 2, next: { value: 3, next: null } },
    });
    const err = failure(() => bigQueryFieldsFor(list));
    expect(err.code).toBe('SCHEMA_INVALID');
    expect(err.message).toContain('recursive record "T"');
    expect(err.message).toContain('15 nested RECORD levels');

    const tree = schemaOf({
      type: 'record',
      name: 'Node',
      fields: [
        { name: 'name', type: 'string' },
        { name: 'children', type: { type: 'array', items: 'Node' } },
      ],
    });
    const deep = {
      name: 'a',
      children: [
        { name: 'b', children: [{ name: 'c', children: [] }] },
        { name: 'd', children: [] },
      ],
    };
    expect(convert(tree, deep)).toEqual(deep);
    expect(failure(() => bigQueryFieldsFor(tree)).code).toBe('SCHEMA_INVALID');
  });

  it('allows 15 levels of RECORD nesting and rejects 16', () => {
    const nested = (levels: number): AvroSchema => {
      let type: unknown = 'int';
      for (let i = levels; i >= 1; i--) type = { type: 'record', name: `L${i}`, fields: [{ name: 'x', type }] };
      return record([{ name: 'top', type }]);
    };
    expect(() => bigQueryFieldsFor(nested(15))).not.toThrow();
    const err = failure(() => bigQueryFieldsFor(nested(16)));
    expect(err.code).toBe('SCHEMA_INVALID');
    expect(err.message).toContain('exceeds BigQuery');
    // a map adds a RECORD level too
    expect(() =>
      bigQueryFieldsFor(record([{ name: 'top', type: { type: 'map', values: (nested(14) as { fields: { type: unknown }[] }).fields[0]?.type } }])),
    ).not.toThrow();
    expect(() =>
      bigQueryFieldsFor(record([{ name: 'top', type: { type: 'map', values: (nested(15) as { fields: { type: unknown }[] }).fields[0]?.type } }])),
    ).toThrow(TributaryError);
  });
});

describe('bigQueryFieldsFor: access log', () => {
  const accessLog = schemaOf({
    type: 'record',
    name: 'AccessLog',
    namespace: 'com.acme.logs',
    fields: [
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-micros' } },
      { name: 'requestId', type: { type: 'string', logicalType: 'uuid' } },
      { name: 'method', type: { type: 'enum', name: 'Method', symbols: ['GET', 'POST', 'PUT', 'DELETE'] } },
      { name: 'path', type: 'string' },
      { name: 'status', type: 'int' },
      { name: 'bytesSent', type: 'long' },
      { name: 'latencySeconds', type: 'double' },
      { name: 'clientIp', type: ['null', 'string'], default: null },
      { name: 'headers', type: { type: 'map', values: 'string' } },
      { name: 'tags', type: ['null', { type: 'array', items: 'string' }], default: null },
      {
        name: 'user',
        type: [
          'null',
          {
            type: 'record',
            name: 'User',
            fields: [
              { name: 'id', type: 'long' },
              { name: 'email', type: ['null', 'string'] },
            ],
          },
        ],
        default: null,
      },
      { name: 'cost', type: { type: 'bytes', logicalType: 'decimal', precision: 12, scale: 4 } },
      { name: 'day', type: { type: 'int', logicalType: 'date' } },
      { name: 'extra', type: ['null', 'string', 'long', 'double'], default: null },
    ],
  });

  it('describes the table', () => {
    expect(bigQueryFieldsFor(accessLog)).toEqual([
      { name: 'timestamp', type: 'TIMESTAMP', mode: 'REQUIRED' },
      { name: 'requestId', type: 'STRING', mode: 'REQUIRED' },
      { name: 'method', type: 'STRING', mode: 'REQUIRED' },
      { name: 'path', type: 'STRING', mode: 'REQUIRED' },
      { name: 'status', type: 'INT64', mode: 'REQUIRED' },
      { name: 'bytesSent', type: 'INT64', mode: 'REQUIRED' },
      { name: 'latencySeconds', type: 'FLOAT64', mode: 'REQUIRED' },
      { name: 'clientIp', type: 'STRING', mode: 'NULLABLE' },
      {
        name: 'headers',
        type: 'RECORD',
        mode: 'REPEATED',
        fields: [
          { name: 'key', type: 'STRING', mode: 'REQUIRED' },
          { name: 'value', type: 'STRING', mode: 'REQUIRED' },
        ],
      },
      { name: 'tags', type: 'STRING', mode: 'REPEATED' },
      {
        name: 'user',
        type: 'RECORD',
        mode: 'NULLABLE',
        fields: [
          { name: 'id', type: 'INT64', mode: 'REQUIRED' },
          { name: 'email', type: 'STRING', mode: 'NULLABLE' },
        ],
      },
      { name: 'cost', type: 'NUMERIC', mode: 'REQUIRED', precision: '12', scale: '4' },
      { name: 'day', type: 'DATE', mode: 'REQUIRED' },
      {
        name: 'extra',
        type: 'RECORD',
        mode: 'NULLABLE',
        fields: [
          { name: 'string', type: 'STRING', mode: 'NULLABLE' },
          { name: 'long', type: 'INT64', mode: 'NULLABLE' },
          { name: 'double', type: 'FLOAT64', mode: 'NULLABLE' },
        ],
      },
    ]);
  });

  it('converts an event', () => {
    const row = convert(accessLog, {
      timestamp: 1700000000123456n,
      requestId: '123e4567-e89b-12d3-a456-426614174000',
      method: 'GET',
      path: '/x',
      status: 200,
      bytesSent: 1024n,
      latencySeconds: 0.25,
      clientIp: null,
      headers: { host: 'example.com', accept: '*/*' },
      tags: null,
      user: { 'com.acme.logs.User': { id: 2n ** 63n - 1n, email: { string: 'a@b.c' } } },
      cost: twos(12345n),
      day: 19675,
      extra: { long: 7n },
    });
    expect(row).toEqual({
      timestamp: '2023-11-14T22:13:20.123456Z',
      requestId: '123e4567-e89b-12d3-a456-426614174000',
      method: 'GET',
      path: '/x',
      status: 200,
      bytesSent: 1024,
      latencySeconds: 0.25,
      clientIp: null,
      headers: [
        { key: 'host', value: 'example.com' },
        { key: 'accept', value: '*/*' },
      ],
      tags: [],
      user: { id: '9223372036854775807', email: 'a@b.c' },
      cost: '1.2345',
      day: '2023-11-14',
      extra: { string: null, long: 7, double: null },
    });
    // The row is plain JSON.
    expect(JSON.parse(JSON.stringify(row))).toEqual(row);
  });

  it('accepts an avsc Type as the schema', () => {
    const fields = bigQueryFieldsFor(
      createAvroType(
        record([
          { name: 'n', type: 'int' },
          { name: 's', type: ['null', 'string'] },
        ]),
      ),
    );
    expect(fields).toEqual([
      { name: 'n', type: 'INT64', mode: 'REQUIRED' },
      { name: 's', type: 'STRING', mode: 'NULLABLE' },
    ]);
  });
});

describe('row building', () => {
  it('builds each row with its fields as own properties in schema order, "__proto__" included', () => {
    const schema = record([
      { name: 'b', type: 'int' },
      { name: '__proto__', type: 'string' },
      { name: 'a', type: { type: 'record', name: 'Inner', fields: [{ name: 'constructor', type: 'string' }] } },
    ]);
    // avsc itself cannot decode a field named "__proto__" into an own property: the converter is
    // handed what JSON.parse makes, where it is one.
    const input = JSON.parse('{"b": 1, "__proto__": "x", "a": {"constructor": "y"}}') as Record<string, unknown>;
    const row = createRowConverter(schema)(input);
    expect(Object.keys(row)).toEqual(['b', '__proto__', 'a']);
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(JSON.stringify(row)).toBe('{"b":1,"__proto__":"x","a":{"constructor":"y"}}');
  });

  it('names the failing field of a nested value, and a converter that failed once still converts', () => {
    const schema = record([{ name: 'outer', type: { type: 'record', name: 'O', fields: [{ name: 'list', type: { type: 'array', items: 'string' } }] } }]);
    const convertRow = createRowConverter(schema);
    expect(failure(() => convertRow({ outer: { list: ['a', 7] } })).message).toBe('field "outer.list[1]": expected a string, got 7 (number)');
    expect(convertRow({ outer: { list: ['a', 'b'] } })).toEqual({ outer: { list: ['a', 'b'] } });
  });
});
