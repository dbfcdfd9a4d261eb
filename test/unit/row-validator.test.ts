import { describe, expect, it } from 'vitest';
import { createAvroType, type AvroSchema } from '../../src/core/avro-type.js';
import { bigQueryFieldsFor } from '../../src/core/rows/bigquery-fields.js';
import { createRowConverter } from '../../src/core/rows/row-converter.js';
import { createRowValidator, type RowValidation } from '../../src/core/rows/row-validator.js';
import type { Row, TableField } from '../../src/core/table-schema.js';

function validatorFor(fields: TableField[], unknownFields: 'dead-letter' | 'drop' = 'dead-letter') {
  return createRowValidator({ fields }, { unknownFields });
}

/** Validates `{v: value}` against a one-column table. */
function check(type: string, value: unknown, mode: TableField['mode'] = 'NULLABLE', extra: Partial<TableField> = {}): RowValidation {
  return validatorFor([{ name: 'v', type, mode, ...extra }]).validate({ v: value } as Row);
}

function accepts(type: string, values: unknown[], extra: Partial<TableField> = {}): void {
  for (const value of values) expect(check(type, value, 'NULLABLE', extra), `${type} ${JSON.stringify(value)}`).toMatchObject({ ok: true });
}

function rejects(type: string, values: unknown[], extra: Partial<TableField> = {}): void {
  for (const value of values) {
    expect(check(type, value, 'NULLABLE', extra), `${type} ${String(value)}`).toMatchObject({ ok: false, code: 'ROW_INVALID', field: 'v' });
  }
}

describe('createRowValidator: structure', () => {
  const user: TableField = {
    name: 'user',
    type: 'RECORD',
    mode: 'NULLABLE',
    fields: [
      { name: 'id', type: 'INT64', mode: 'REQUIRED' },
      { name: 'name', type: 'STRING' },
    ],
  };

  it('accepts a valid row and returns it unchanged', () => {
    const row = { user: { id: 1, name: 'x' } };
    const result = validatorFor([user]).validate(row);
    expect(result).toEqual({ ok: true, row, dropped: [] });
    expect(result.ok && result.row).toBe(row);
  });

  it('rejects a NULL or missing REQUIRED column', () => {
    const v = validatorFor([user, { name: 'ts', type: 'TIMESTAMP', mode: 'REQUIRED' }]);
    expect(v.validate({ ts: 0, user: { id: null } })).toEqual({
      ok: false,
      code: 'ROW_INVALID',
      field: 'user.id',
      message: 'field "user.id" is REQUIRED but the value is NULL',
    });
    expect(v.validate({ ts: 0, user: { name: 'x' } })).toMatchObject({ ok: false, field: 'user.id', message: 'field "user.id" is REQUIRED but missing' });
    expect(v.validate({ user: null })).toMatchObject({ ok: false, field: 'ts', message: 'field "ts" is REQUIRED but missing' });
    expect(v.validate({ ts: undefined, user: null } as unknown as Row)).toMatchObject({ ok: false, field: 'ts' });
    expect(v.validate({ ts: 0 })).toMatchObject({ ok: true });
  });

  it('treats a missing mode as NULLABLE', () => {
    expect(validatorFor([{ name: 'a', type: 'STRING' }]).validate({ a: null })).toMatchObject({ ok: true });
    expect(validatorFor([{ name: 'a', type: 'STRING' }]).validate({})).toMatchObject({ ok: true });
  });

  it('matches column names case-insensitively', () => {
    const v = validatorFor([user, { name: 'Status', type: 'INT64', mode: 'REQUIRED' }]);
    expect(v.validate({ STATUS: 200, User: { ID: 1 } })).toMatchObject({ ok: true, dropped: [] });
    expect(v.validate({ status: 'x' })).toMatchObject({ ok: false, field: 'status' });
    expect(v.validate({ status: 1, STATUS: 2 })).toMatchObject({
      ok: false,
      code: 'ROW_INVALID',
      field: 'STATUS',
      message: 'field "STATUS": duplicates column "Status" (BigQuery column names are case-insensitive)',
    });
  });

  it('checks REPEATED columns: arrays without NULL, NULL/missing meaning empty', () => {
    const v = validatorFor([{ name: 'tags', type: 'STRING', mode: 'REPEATED' }]);
    expect(v.validate({ tags: ['a', 'b'] })).toMatchObject({ ok: true });
    expect(v.validate({ tags: [] })).toMatchObject({ ok: true });
    expect(v.validate({ tags: null })).toMatchObject({ ok: true });
    expect(v.validate({})).toMatchObject({ ok: true });
    expect(v.validate({ tags: ['a', 'b', 'c', null] })).toEqual({
      ok: false,
      code: 'ROW_INVALID',
      field: 'tags[3]',
      message: 'field "tags[3]": arrays cannot hold NULL',
    });
    expect(v.validate({ tags: 'a' })).toMatchObject({ ok: false, field: 'tags', message: 'field "tags": REPEATED STRING needs an array, got "a"' });
    expect(v.validate({ tags: ['a', 1] })).toMatchObject({ ok: false, field: 'tags[1]' });
  });

  it('recurses into RECORD/STRUCT values, also inside arrays', () => {
    const v = validatorFor([
      {
        name: 'items',
        type: 'STRUCT',
        mode: 'REPEATED',
        fields: [
          { name: 'sku', type: 'STRING', mode: 'REQUIRED' },
          { name: 'attrs', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'key', type: 'STRING', mode: 'REQUIRED' }] },
        ],
      },
    ]);
    expect(v.validate({ items: [{ sku: 'a', attrs: [{ key: 'k' }] }, { sku: 'b' }] })).toMatchObject({ ok: true });
    expect(v.validate({ items: [{ sku: 'a' }, { sku: 'b', attrs: [{ key: 'k' }, {}] }] })).toMatchObject({
      ok: false,
      field: 'items[1].attrs[1].key',
      message: 'field "items[1].attrs[1].key" is REQUIRED but missing',
    });
    expect(v.validate({ items: ['x'] })).toMatchObject({ ok: false, field: 'items[0]', message: 'field "items[0]": STRUCT needs an object, got "x"' });
    expect(v.validate({ items: [[]] })).toMatchObject({ ok: false, field: 'items[0]' });
  });

  it('dead-letters unknown fields by default', () => {
    const v = validatorFor([user]);
    expect(v.validate({ extra: 1 })).toEqual({
      ok: false,
      code: 'UNKNOWN_FIELD',
      field: 'extra',
      message: 'field "extra" is not in table schema (unknownFields: dead-letter)',
    });
    expect(v.validate({ user: { id: 1, nick: 'x' } })).toMatchObject({ ok: false, code: 'UNKNOWN_FIELD', field: 'user.nick' });
    // undefined is never serialized, so it is not a field
    expect(v.validate({ extra: undefined } as unknown as Row)).toMatchObject({ ok: true });
  });

  it('drops unknown fields with unknownFields: drop, copying only what changed', () => {
    const v = validatorFor(
      [user, { name: 'list', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'a', type: 'INT64' }] }, { name: 'n', type: 'INT64' }],
      'drop',
    );
    const first: Row = { a: 1 };
    const row: Row = { n: 1, extra: 'x', user: { id: 1, nick: 'y' }, list: [first, { a: 2, b: 3 }] };
    const result = v.validate(row);
    expect(result).toEqual({
      ok: true,
      row: { n: 1, user: { id: 1 }, list: [{ a: 1 }, { a: 2 }] },
      dropped: ['extra', 'user.nick', 'list[1].b'],
    });
    if (!result.ok) throw new Error('unreachable');
    expect(result.row).not.toBe(row);
    expect(result.row.list).not.toBe(row.list);
    expect((result.row.list as Row[])[0]).toBe(first);
    expect(row).toEqual({ n: 1, extra: 'x', user: { id: 1, nick: 'y' }, list: [{ a: 1 }, { a: 2, b: 3 }] });

    const clean = { n: 2, user: { id: 3 } };
    const same = v.validate(clean);
    expect(same).toEqual({ ok: true, row: clean, dropped: [] });
    expect(same.ok && same.row).toBe(clean);
    // a later invalid value still fails in drop mode
    expect(v.validate({ extra: 1, n: 'x' })).toMatchObject({ ok: false, code: 'ROW_INVALID', field: 'n' });
  });

  it('rejects a row that is not an object', () => {
    expect(validatorFor([]).validate(null as unknown as Row)).toMatchObject({ ok: false, code: 'ROW_INVALID' });
  });
});

describe('createRowValidator: value types', () => {
  it('INT64/INTEGER: safe integers and integer strings within int64', () => {
    for (const type of ['INT64', 'INTEGER', 'int64']) {
      accepts(type, [0, -1, 9007199254740991, -9007199254740991, '9007199254740992', '9223372036854775807', '-9223372036854775808', '+5', '007']);
      rejects(type, [
        1.5,
        9007199254740992,
        Number.NaN,
        '9223372036854775808',
        '-9223372036854775809',
        '99999999999999999999',
        '1.0',
        '1e3',
        '',
        '-',
        'x',
        true,
        {},
        [],
      ]);
    }
    expect(check('INT64', 1.5)).toMatchObject({
      message: 'field "v": INT64 needs a safe integer number or an integer string within the INT64 range, got 1.5 (number)',
    });
  });

  it('FLOAT64/FLOAT: finite numbers, numeric strings, NaN/Infinity strings', () => {
    for (const type of ['FLOAT64', 'FLOAT']) {
      accepts(type, [0, -1.5, 1e300, 'NaN', 'Infinity', '-Infinity', 'inf', '1.5', '-2e-3', '.5', '5.']);
      rejects(type, [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 'abc', '', '1.2.3', '0x10', true]);
    }
    expect(check('FLOAT64', Number.NaN)).toMatchObject({ message: 'field "v": FLOAT64 value NaN must be sent as the string "NaN"' });
  });

  it('NUMERIC: at most 29 integer and 9 fraction digits', () => {
    const int29 = '9'.repeat(29);
    accepts('NUMERIC', [0, 1.5, -123.45, `${int29}.999999999`, `-${int29}.999999999`, '0.000000001', '1.5000000000000', '000123.4', '1e28', '1.5E-8']);
    rejects('NUMERIC', [`1${int29}`, '0.0000000001', '1e29', '1.5e-10', 1e30, 1e-10, Number.NaN, 'NaN', 'abc', true]);
    expect(check('NUMERIC', '0.0000000001')).toMatchObject({
      message: 'field "v": NUMERIC value "0.0000000001" has 0 integer and 10 fraction digits; NUMERIC holds at most 29 integer and 9 fraction digits',
    });
  });

  it('NUMERIC(P,S): at most P-S integer digits', () => {
    accepts('NUMERIC', ['99999999.99', '-1.234'], { precision: '10', scale: '2' });
    rejects('NUMERIC', ['123456789.5'], { precision: '10', scale: '2' });
  });

  it('BIGNUMERIC: at most 38 integer and 38 fraction digits', () => {
    accepts('BIGNUMERIC', [`${'9'.repeat(38)}.${'9'.repeat(38)}`, '-1.5', 12]);
    rejects('BIGNUMERIC', [`1${'0'.repeat(38)}`, `0.${'0'.repeat(38)}1`, 'x']);
  });

  it('BOOL/BOOLEAN: booleans only', () => {
    for (const type of ['BOOL', 'BOOLEAN']) {
      accepts(type, [true, false]);
      rejects(type, ['true', 1, 0]);
    }
  });

  it('STRING and GEOGRAPHY: strings only', () => {
    accepts('STRING', ['', 'x']);
    rejects('STRING', [1, true, {}, []]);
    accepts('GEOGRAPHY', ['POINT(1 2)']);
    rejects('GEOGRAPHY', [{ type: 'Point' }]);
  });

  it('BYTES: base64 strings', () => {
    accepts('BYTES', ['', 'AAEC/f7/', 'YWJjZA==', 'YWJjZA', 'YWI=', 'YQ==']);
    rejects('BYTES', ['abc!', 'Y', 'YW=J', 'YWJjZA===', '====', 'héllo', 5]);
  });

  it('TIMESTAMP: ISO strings with year 0001..9999 or epoch seconds in range', () => {
    accepts('TIMESTAMP', [
      '0001-01-01T00:00:00.000000Z',
      '9999-12-31T23:59:59.999999Z',
      '2023-11-14T22:13:20.123456Z',
      '2023-11-14 22:13:20',
      '2023-11-14T22:13:20+05:30',
      '2023-11-14T22:13:20-0800',
      '2023-11-14 22:13:20 UTC',
      '2023-11-14 22:13:20 America/Los_Angeles',
      '2023-1-4 2:13:20',
      '2023-11-14',
      '2024-02-29T00:00:00Z',
      '0001-01-01T01:00:00+01:00',
      0,
      1700000000.123456,
      -62135596800,
      253402300799.999,
    ]);
    rejects('TIMESTAMP', [
      '2023-13-01T00:00:00Z',
      '2023-02-29T00:00:00Z',
      '2023-11-14T24:00:00Z',
      '2023-11-14T23:60:00Z',
      '2023-11-14T23:59:60Z',
      '0000-12-31T23:59:59Z',
      '0001-01-01T00:00:00+01:00',
      '9999-12-31T23:00:00-01:00',
      'yesterday',
      '2023-11-14T',
      -62135596801,
      253402300800,
      Number.NaN,
      true,
    ]);
    expect(check('TIMESTAMP', '10000-01-01T00:00:00.000000Z')).toEqual({
      ok: false,
      code: 'ROW_INVALID',
      field: 'v',
      message: 'field "v": TIMESTAMP "10000-01-01T00:00:00.000000Z" is outside 0001-01-01..9999-12-31',
    });
  });

  it('DATE: YYYY-MM-DD with a valid month and day in range', () => {
    accepts('DATE', ['0001-01-01', '9999-12-31', '2000-02-29', '2023-1-5']);
    rejects('DATE', ['0000-01-01', '10000-01-01', '1900-02-29', '2023-04-31', '2023-00-10', '2023-11-14T00:00:00', '20231114', 19675]);
    expect(check('DATE', '10000-01-01')).toMatchObject({ message: 'field "v": DATE "10000-01-01" is outside 0001-01-01..9999-12-31' });
  });

  it('DATETIME: date with optional time, no zone', () => {
    accepts('DATETIME', ['2023-11-14T22:13:20.123456', '2023-11-14 22:13:20', '2023-11-14', '0001-01-01T00:00:00', '9999-12-31T23:59:59.999999']);
    rejects('DATETIME', ['2023-11-14T22:13:20Z', '2023-11-14T25:00:00', '10000-01-01T00:00:00', 5]);
  });

  it('TIME: HH:MM:SS[.ffffff] within a day', () => {
    accepts('TIME', ['00:00:00', '23:59:59.999999', '12:34:56.789000', '1:2:3', '12:34']);
    rejects('TIME', ['24:00:00', '12:60:00', '12:00:60', '12:00:00Z', 'noon', 3600]);
  });

  it('JSON accepts anything; unmodelled types are left to BigQuery', () => {
    accepts('JSON', ['{"a":1}', 5, { a: 1 }, [1], true]);
    accepts('INTERVAL', ['1-2 3 4:5:6']);
  });
});

describe('createRowValidator with the converter', () => {
  it('accepts what the converter writes for the schema bigQueryFieldsFor describes', () => {
    const schema = {
      type: 'record',
      name: 'Event',
      fields: [
        { name: 'ts', type: { type: 'long', logicalType: 'timestamp-micros' } },
        { name: 'local', type: { type: 'long', logicalType: 'local-timestamp-millis' } },
        { name: 'day', type: { type: 'int', logicalType: 'date' } },
        { name: 'at', type: { type: 'long', logicalType: 'time-micros' } },
        { name: 'big', type: 'long' },
        { name: 'ratio', type: 'double' },
        { name: 'blob', type: 'bytes' },
        { name: 'price', type: { type: 'bytes', logicalType: 'decimal', precision: 40, scale: 20 } },
        { name: 'matrix', type: { type: 'array', items: { type: 'array', items: 'int' } } },
        { name: 'labels', type: { type: 'map', values: ['null', 'string'] } },
        { name: 'tags', type: ['null', { type: 'array', items: 'string' }] },
        { name: 'choice', type: ['null', 'int', 'string', { type: 'array', items: 'boolean' }] },
        { name: 'nothing', type: 'null' },
      ],
    } as unknown as AvroSchema;
    const type = createAvroType(schema);
    const value = type.fromBuffer(
      type.toBuffer({
        ts: -62135596800000000n,
        local: 253402300799999n,
        day: -719162,
        at: 86399999999n,
        big: -(2n ** 63n),
        ratio: Number.NEGATIVE_INFINITY,
        blob: Buffer.from([255, 0]),
        price: Buffer.from('ff'.repeat(17), 'hex'),
        matrix: [[1], []],
        labels: { a: null, b: { string: 'x' } },
        tags: null,
        choice: { array: [true] },
        nothing: null,
      }),
    );
    const row = createRowConverter(schema)(value);
    const validator = createRowValidator({ fields: bigQueryFieldsFor(schema) }, { unknownFields: 'dead-letter' });
    expect(validator.validate(row)).toEqual({ ok: true, row, dropped: [] });
  });
});
