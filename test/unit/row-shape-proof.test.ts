import { describe, expect, it } from 'vitest';
import { createAvroType } from '../../src/core/avro-type.js';
import { bigQueryFieldsFor } from '../../src/core/rows/bigquery-fields.js';
import { createRowConverter } from '../../src/core/rows/row-converter.js';
import { createRowValidator } from '../../src/core/rows/row-validator.js';
import type { TableField } from '../../src/core/table-schema.js';
import { accessRecord, accessV1, audit, auditRecord, metric, metricRecord, tableSchemaFor } from '../support/log-schemas.js';

const METADATA: TableField[] = [
  { name: '_message_id', type: 'STRING', mode: 'REQUIRED' },
  { name: '_publish_time', type: 'TIMESTAMP', mode: 'REQUIRED' },
];

function shapeOf(schema: Parameters<typeof bigQueryFieldsFor>[0]): TableField[] {
  return [...bigQueryFieldsFor(schema), ...METADATA];
}

function validator(fields: TableField[]) {
  return createRowValidator({ fields }, { unknownFields: 'dead-letter' });
}

function mapField(fields: TableField[], name: string, change: (f: TableField) => TableField): TableField[] {
  return fields.map((f) => (f.name === name ? change(f) : f));
}

describe('RowValidator.proves: the columns a converter writes, against the table', () => {
  it('proves the shape of each test schema against the table made from it, legacy type names included', () => {
    for (const schema of [accessV1, audit, metric]) {
      const table = tableSchemaFor(schema);
      expect(validator(table.fields).proves(shapeOf(schema))).toBe(true);
      const legacy = JSON.parse(
        JSON.stringify(table.fields).replaceAll('"INT64"', '"INTEGER"').replaceAll('"FLOAT64"', '"FLOAT"').replaceAll('"BOOL"', '"BOOLEAN"'),
      ) as TableField[];
      expect(validator(legacy).proves(shapeOf(schema))).toBe(true);
    }
  });

  it('does not prove a shape whose rows the validator could reject', () => {
    const table = tableSchemaFor(accessV1).fields;
    const shape = shapeOf(accessV1);
    const cases: Array<[string, TableField[]]> = [
      ['a column the rows have is missing', table.filter((f) => f.name !== 'path')],
      ['a REQUIRED column the rows never fill', [...table, { name: 'region', type: 'STRING', mode: 'REQUIRED' }]],
      ['a nullable value into a REQUIRED column', mapField(table, 'user_agent', (f) => ({ ...f, mode: 'REQUIRED' }))],
      ['another type', mapField(table, 'status', (f) => ({ ...f, type: 'STRING' }))],
      ['a repeated value into a single column', mapField(table, 'tags', (f) => ({ ...f, mode: 'NULLABLE' }))],
      ['a nested column missing', mapField(table, 'headers', (f) => ({ ...f, fields: (f.fields ?? []).filter((c) => c.name !== 'value') }))],
      ['a column that differs only in case', mapField(table, 'method', (f) => ({ ...f, name: 'Method' }))],
    ];
    for (const [why, fields] of cases) expect(validator(fields).proves(shape), why).toBe(false);
  });

  it('proves a decimal only into a NUMERIC wide enough for its integer digits', () => {
    const shape = shapeOf(audit);
    const table = tableSchemaFor(audit).fields;
    expect(validator(mapField(table, 'amount', (f) => ({ ...f, precision: '12', scale: '2' }))).proves(shape)).toBe(true);
    expect(validator(mapField(table, 'amount', (f) => ({ ...f, precision: '20', scale: '2' }))).proves(shape)).toBe(true);
    expect(validator(mapField(table, 'amount', (f) => ({ ...f, precision: '8', scale: '2' }))).proves(shape)).toBe(false);
  });

  it('is consistent with validate(): rows of a proven shape pass it', () => {
    for (const [schema, record] of [
      [accessV1, accessRecord],
      [audit, auditRecord],
      [metric, metricRecord],
    ] as const) {
      const check = validator(tableSchemaFor(schema).fields.map((f) => (f.name.startsWith('_') ? { ...f, mode: 'REQUIRED' as const } : f)));
      expect(check.proves(shapeOf(schema))).toBe(true);
      const type = createAvroType(schema);
      const convert = createRowConverter(schema);
      for (let i = 0; i < 300; i++) {
        const row = convert(type.fromBuffer(type.toBuffer(record(i))));
        row._message_id = `m-${i}`;
        row._publish_time = new Date(1_764_000_000_000 + i).toISOString();
        expect(check.validate(row)).toMatchObject({ ok: true });
      }
    }
  });
});
