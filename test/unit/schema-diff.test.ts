import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AvroSchema } from '../../src/core/avro-type.js';
import { createRowValidator } from '../../src/core/rows/row-validator.js';
import { diffAvroAgainstTable, diffTableSchema, hasChanges, incompatibilityError, renderSchemaDiff, routeTableFields } from '../../src/core/schema-diff.js';
import type { TableField, TableSchema } from '../../src/core/table-schema.js';
import { schemaUpdateProblem } from '../support/bigquery-test-server.js';

function record(fields: unknown[]): AvroSchema {
  return { type: 'record', name: 'Access', fields } as unknown as AvroSchema;
}

const REV1 = record([
  { name: 'ts', type: { type: 'long', logicalType: 'timestamp-micros' } },
  { name: 'service', type: 'string' },
  { name: 'status', type: 'int' },
  { name: 'amount', type: { type: 'bytes', logicalType: 'decimal', precision: 10, scale: 2 } },
  { name: 'source', type: { type: 'record', name: 'Source', fields: [{ name: 'host', type: 'string' }] } },
]);

const METADATA = { messageId: 'message_id', publishTime: 'publish_time' };

/** The table rev1 maps to, as BigQuery returns it (legacy type names). */
const TABLE_V1: TableSchema = {
  fields: [
    { name: 'ts', type: 'TIMESTAMP', mode: 'REQUIRED' },
    { name: 'service', type: 'STRING', mode: 'REQUIRED' },
    { name: 'status', type: 'INTEGER', mode: 'REQUIRED' },
    { name: 'amount', type: 'NUMERIC', mode: 'REQUIRED', precision: '10', scale: '2' },
    { name: 'source', type: 'RECORD', mode: 'REQUIRED', fields: [{ name: 'host', type: 'STRING', mode: 'REQUIRED' }] },
    { name: 'message_id', type: 'STRING', mode: 'REQUIRED' },
    { name: 'publish_time', type: 'TIMESTAMP', mode: 'REQUIRED' },
  ],
};

function withFields(extra: unknown[], replace: Record<string, unknown> = {}): AvroSchema {
  const base = (REV1 as unknown as { fields: Array<{ name: string }> }).fields.map((f) => (f.name in replace ? { name: f.name, type: replace[f.name] } : f));
  return record([...base, ...extra]);
}

describe('routeTableFields', () => {
  it('maps the record and appends the metadata columns, which replace a record field of the same name', () => {
    const fields = routeTableFields(withFields([{ name: 'message_id', type: 'long' }]), METADATA);
    expect(fields.map((f) => f.name)).toEqual(['ts', 'service', 'status', 'amount', 'source', 'message_id', 'publish_time']);
    expect(fields.find((f) => f.name === 'message_id')).toEqual({ name: 'message_id', type: 'STRING', mode: 'REQUIRED' });
  });

  it('has every metadata column the rows carry, the record index included, in the order rows write them', () => {
    const metadata = { messageId: '_id', publishTime: '_at', subscription: '_sub', attributes: '_attrs', recordIndex: '_index' };
    const fields = routeTableFields(REV1, metadata);
    expect(fields.slice(-5)).toEqual([
      { name: '_id', type: 'STRING', mode: 'REQUIRED' },
      { name: '_at', type: 'TIMESTAMP', mode: 'REQUIRED' },
      { name: '_sub', type: 'STRING', mode: 'REQUIRED' },
      { name: '_attrs', type: 'STRING', mode: 'REQUIRED' },
      { name: '_index', type: 'INTEGER', mode: 'REQUIRED' },
    ]);
  });
});

describe('diffAvroAgainstTable', () => {
  it('finds nothing to do when the table matches (legacy type names included)', () => {
    const diff = diffAvroAgainstTable(REV1, METADATA, TABLE_V1);
    expect(diff).toMatchObject({ additions: [], relaxations: [], incompatibilities: [] });
    expect(hasChanges(diff)).toBe(false);
    expect(diff.patched).toEqual(TABLE_V1);
    expect(renderSchemaDiff(diff)).toEqual([]);
  });

  it('adds new top-level columns NULLABLE, arrays and maps REPEATED, a new record with every field optional', () => {
    const rev2 = withFields([
      { name: 'region', type: ['null', 'string'], default: null },
      { name: 'zone', type: 'string' },
      { name: 'tags', type: { type: 'array', items: 'string' } },
      { name: 'labels', type: { type: 'map', values: 'string' } },
      {
        name: 'geo',
        type: {
          type: 'record',
          name: 'Geo',
          fields: [
            { name: 'lat', type: 'double' },
            { name: 'lon', type: 'double' },
          ],
        },
      },
    ]);
    const diff = diffAvroAgainstTable(rev2, METADATA, TABLE_V1);
    expect(diff.incompatibilities).toEqual([]);
    expect(diff.relaxations).toEqual([]);
    expect(diff.additions.map((a) => a.path)).toEqual(['region', 'zone', 'tags', 'labels', 'geo']);
    expect(renderSchemaDiff(diff)).toEqual([
      '+ region STRING NULLABLE',
      '+ zone STRING NULLABLE',
      '+ tags STRING REPEATED',
      '+ labels RECORD REPEATED',
      '+ labels.key STRING NULLABLE',
      '+ labels.value STRING NULLABLE',
      '+ geo RECORD NULLABLE',
      '+ geo.lat FLOAT64 NULLABLE',
      '+ geo.lon FLOAT64 NULLABLE',
    ]);
    // New columns go at the end, after the metadata columns; the existing ones keep their place.
    expect(diff.patched.fields.slice(0, TABLE_V1.fields.length)).toEqual(TABLE_V1.fields);
    expect(diff.patched.fields.map((f) => f.name).slice(TABLE_V1.fields.length)).toEqual(['region', 'zone', 'tags', 'labels', 'geo']);
    expect(schemaUpdateProblem(TABLE_V1.fields, diff.patched.fields, '')).toBeNull();
  });

  it('adds fields inside existing RECORD columns at any depth, at the end of their RECORD', () => {
    const deep = { type: 'record', name: 'Deep', fields: [{ name: 'a', type: 'string' }] };
    const deeper = {
      type: 'record',
      name: 'Deep',
      fields: [
        { name: 'a', type: 'string' },
        { name: 'b', type: ['null', 'long'], default: null },
      ],
    };
    const table: TableSchema = {
      fields: [
        ...TABLE_V1.fields.filter((f) => f.name !== 'source'),
        {
          name: 'source',
          type: 'RECORD',
          mode: 'REQUIRED',
          fields: [
            { name: 'host', type: 'STRING', mode: 'REQUIRED' },
            { name: 'deep', type: 'RECORD', mode: 'REQUIRED', fields: [{ name: 'a', type: 'STRING', mode: 'REQUIRED' }] },
          ],
        },
      ],
    };
    expect(
      hasChanges(
        diffAvroAgainstTable(
          withFields([], {
            source: {
              type: 'record',
              name: 'Source',
              fields: [
                { name: 'host', type: 'string' },
                { name: 'deep', type: deep },
              ],
            },
          }),
          METADATA,
          table,
        ),
      ),
    ).toBe(false);
    const rev = withFields([], {
      source: {
        type: 'record',
        name: 'Source',
        fields: [
          { name: 'port', type: 'int' },
          { name: 'host', type: 'string' },
          { name: 'deep', type: deeper },
        ],
      },
    });
    const diff = diffAvroAgainstTable(rev, METADATA, table);
    expect(renderSchemaDiff(diff)).toEqual(['+ source.deep.b INT64 NULLABLE', '+ source.port INT64 NULLABLE']);
    const source = diff.patched.fields.find((f) => f.name === 'source');
    expect(source?.fields?.map((f) => f.name)).toEqual(['host', 'deep', 'port']);
    expect(source?.fields?.[1]?.fields?.map((f) => `${f.name} ${f.mode}`)).toEqual(['a REQUIRED', 'b NULLABLE']);
    expect(schemaUpdateProblem(table.fields, diff.patched.fields, '')).toBeNull();
  });

  it('relaxes REQUIRED → NULLABLE when a field became nullable or left the record; dropped fields are otherwise fine', () => {
    const rev = record([
      { name: 'ts', type: { type: 'long', logicalType: 'timestamp-micros' } },
      { name: 'service', type: 'string' },
      { name: 'status', type: ['null', 'int'], default: null },
      { name: 'amount', type: { type: 'bytes', logicalType: 'decimal', precision: 10, scale: 2 } },
    ]);
    const diff = diffAvroAgainstTable(rev, METADATA, TABLE_V1);
    expect(diff.relaxations).toEqual([
      { path: 'status', type: 'INT64', because: 'nullable-in-record' },
      { path: 'source', type: 'RECORD', because: 'absent-from-record' },
    ]);
    expect(renderSchemaDiff(diff)).toEqual(['~ status REQUIRED → NULLABLE', '~ source REQUIRED → NULLABLE (no longer in the record)']);
    expect(diff.patched.fields.find((f) => f.name === 'status')?.mode).toBe('NULLABLE');
    expect(diff.patched.fields.map((f) => f.name)).toEqual(TABLE_V1.fields.map((f) => f.name));
    expect(schemaUpdateProblem(TABLE_V1.fields, diff.patched.fields, '')).toBeNull();
    // A NULLABLE column the record dropped needs nothing.
    const nullableTable: TableSchema = { fields: [...TABLE_V1.fields, { name: 'old', type: 'STRING', mode: 'NULLABLE' }] };
    expect(hasChanges(diffAvroAgainstTable(REV1, METADATA, nullableTable))).toBe(false);
  });

  it('names the field, the table type and the record type of every incompatibility, and proposes nothing for them', () => {
    const rev = withFields([], {
      amount: 'string',
      status: 'long',
      source: { type: 'record', name: 'Source', fields: [{ name: 'host', type: { type: 'array', items: 'string' } }] },
    });
    const table: TableSchema = { fields: TABLE_V1.fields.map((f) => (f.name === 'status' ? { ...f, type: 'STRING' } : f)) };
    const diff = diffAvroAgainstTable(rev, METADATA, table);
    expect(diff.incompatibilities).toEqual([
      {
        path: 'status',
        tableType: 'STRING',
        recordType: 'INT64',
        message: expect.stringContaining('field "status" is STRING in the table but INT64 in the record'),
      },
      { path: 'amount', tableType: 'NUMERIC', recordType: 'STRING', message: expect.stringContaining('"amount" is NUMERIC in the table but STRING') },
      { path: 'source.host', tableType: 'STRING', recordType: 'STRING REPEATED', message: expect.stringContaining('array') },
    ]);
    expect(renderSchemaDiff(diff)).toEqual(['! status STRING ≠ INT64', '! amount NUMERIC ≠ STRING', '! source.host STRING ≠ STRING REPEATED']);
    expect(diff.patched).toEqual(table);
    const error = incompatibilityError({ projectId: 'p', datasetId: 'd', tableId: 't' }, diff);
    expect(error.code).toBe('SCHEMA_INCOMPATIBLE');
    expect(error.errorClass).toBe('data');
    expect(error.message).toMatch(/^p\.d\.t: field "status" is STRING in the table but INT64 in the record.*; field "amount"/);
  });

  it('accepts what BigQuery takes without a change: INT64 into FLOAT64, NUMERIC into BIGNUMERIC, STRING into JSON', () => {
    const table: TableSchema = {
      fields: TABLE_V1.fields.map((f) =>
        f.name === 'status' ? { ...f, type: 'FLOAT' } : f.name === 'amount' ? { ...f, type: 'BIGNUMERIC' } : f.name === 'service' ? { ...f, type: 'JSON' } : f,
      ),
    };
    const diff = diffAvroAgainstTable(REV1, METADATA, table);
    expect(diff.incompatibilities).toEqual([]);
    expect(hasChanges(diff)).toBe(false);
    // Not the other way round: a FLOAT64 field cannot go into an INT64 column.
    const narrowing = diffAvroAgainstTable(withFields([], { status: 'double' }), METADATA, TABLE_V1);
    expect(renderSchemaDiff(narrowing)).toEqual(['! status INT64 ≠ FLOAT64']);
  });

  it('matches column names case-insensitively, as BigQuery does', () => {
    const table: TableSchema = { fields: TABLE_V1.fields.map((f) => (f.name === 'service' ? { ...f, name: 'Service' } : f)) };
    expect(hasChanges(diffAvroAgainstTable(REV1, METADATA, table))).toBe(false);
  });

  it('reports a schema the mapping cannot express as an incompatibility instead of throwing', () => {
    const recursive = record([{ name: 'next', type: ['null', 'Access'], default: null }]);
    const diff = diffAvroAgainstTable(recursive, {}, { fields: [] });
    expect(diff.incompatibilities).toHaveLength(1);
    expect(diff.incompatibilities[0]?.message).toMatch(/cannot be mapped to a table: recursive record/);
    expect(renderSchemaDiff(diff)[0]).toMatch(/^! the record's schema cannot be mapped/);
  });
});

describe('diffTableSchema properties', () => {
  const NAMES = ['a', 'b', 'c', 'd'];
  const TYPES = ['STRING', 'INT64', 'BOOL', 'TIMESTAMP'];
  const MODES = ['NULLABLE', 'REQUIRED', 'REPEATED'] as const;

  const fieldsArb: fc.Memo<TableField[]> = fc.memo((depth) =>
    fc
      .uniqueArray(
        fc.record({
          name: fc.constantFrom(...NAMES),
          mode: fc.constantFrom(...MODES),
          kind: depth > 1 ? fc.constantFrom(...TYPES, 'RECORD') : fc.constantFrom(...TYPES),
          fields: depth > 1 ? fieldsArb(depth - 1) : fc.constant([] as TableField[]),
        }),
        { selector: (f) => f.name, maxLength: NAMES.length },
      )
      .map((list) =>
        list.map(
          (f): TableField =>
            f.kind === 'RECORD' && f.fields.length > 0
              ? { name: f.name, type: 'RECORD', mode: f.mode, fields: f.fields }
              : { name: f.name, type: f.kind === 'RECORD' ? 'STRING' : f.kind, mode: f.mode },
        ),
      ),
  );

  /** Every existing field keeps its place at every depth: new ones only follow them. */
  function keepsOrder(before: readonly TableField[], after: readonly TableField[]): boolean {
    return before.every((f, i) => after[i]?.name === f.name && (f.fields === undefined || keepsOrder(f.fields, after[i]?.fields ?? [])));
  }

  it('applying the diff then diffing again leaves nothing to do, the same incompatibilities, and an update BigQuery accepts', () => {
    fc.assert(
      fc.property(fieldsArb(3), fieldsArb(3), (desired, tableFields) => {
        const table: TableSchema = { fields: tableFields };
        const first = diffTableSchema(desired, table);
        const second = diffTableSchema(desired, first.patched);
        expect(second.additions).toEqual([]);
        expect(second.relaxations).toEqual([]);
        expect(second.incompatibilities).toEqual(first.incompatibilities);
        expect(second.patched).toEqual(first.patched);
        expect(schemaUpdateProblem(tableFields, first.patched.fields, '')).toBeNull();
        expect(keepsOrder(tableFields, first.patched.fields)).toBe(true);
        if (first.incompatibilities.length === 0) {
          // Every row of the desired shape now fits the patched table.
          expect(createRowValidator(first.patched, { unknownFields: 'dead-letter' }).proves(desired)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never proposes a change to a table that already fits', () => {
    fc.assert(
      fc.property(fieldsArb(3), (fields) => {
        const diff = diffTableSchema(fields, { fields });
        expect(hasChanges(diff)).toBe(false);
        expect(diff.incompatibilities).toEqual([]);
      }),
    );
  });
});
