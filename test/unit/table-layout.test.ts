import { describe, expect, it } from 'vitest';
import { tableLayoutProblems, tableLayoutResource } from '../../src/core/table-layout.js';
import type { TableField } from '../../src/core/table-schema.js';

const FIELDS: TableField[] = [
  { name: 'ts', type: 'TIMESTAMP', mode: 'REQUIRED' },
  { name: 'day', type: 'DATE' },
  { name: 'service', type: 'STRING' },
  { name: 'status', type: 'INTEGER' },
  { name: 'score', type: 'FLOAT' },
  { name: 'tags', type: 'STRING', mode: 'REPEATED' },
  { name: 'times', type: 'TIMESTAMP', mode: 'REPEATED' },
  { name: 'source', type: 'RECORD', fields: [{ name: 'host', type: 'STRING' }] },
];

describe('tableLayoutProblems', () => {
  it('accepts TIMESTAMP/DATE partitioning and up to 4 clusterable columns, legacy type names included', () => {
    expect(tableLayoutProblems(FIELDS, { partitioning: { type: 'DAY', field: 'ts' }, clustering: ['service', 'status', 'day', 'TS'] })).toEqual([]);
    expect(tableLayoutProblems(FIELDS, { partitioning: { type: 'MONTH', field: 'day' } })).toEqual([]);
    expect(tableLayoutProblems(FIELDS, { partitioning: { type: 'HOUR' } })).toEqual([]);
  });

  it('names every problem: missing or wrongly typed partitioning field, too many or unclusterable columns', () => {
    expect(tableLayoutProblems(FIELDS, { partitioning: { type: 'DAY', field: 'nope' } })).toEqual(['partitioning field "nope" is not a column of the table']);
    expect(tableLayoutProblems(FIELDS, { partitioning: { type: 'DAY', field: 'service' } })).toEqual([
      'partitioning field "service" is STRING; it must be a TIMESTAMP, DATE or DATETIME column',
    ]);
    expect(tableLayoutProblems(FIELDS, { partitioning: { type: 'DAY', field: 'times' } })).toEqual([
      'partitioning field "times" is TIMESTAMP REPEATED; it must be a TIMESTAMP, DATE or DATETIME column',
    ]);
    expect(tableLayoutProblems(FIELDS, { clustering: ['ts', 'day', 'service', 'status', 'score', 'tags', 'source', 'gone'] })).toEqual([
      'clustering has 8 columns; BigQuery allows at most 4',
      'clustering column "score" is FLOAT64, which BigQuery cannot cluster on',
      'clustering column "tags" is STRING REPEATED, which BigQuery cannot cluster on',
      'clustering column "source" is RECORD, which BigQuery cannot cluster on',
      'clustering column "gone" is not a column of the table',
    ]);
  });
});

describe('tableLayoutResource', () => {
  it('builds the tables.insert fields', () => {
    expect(tableLayoutResource({ partitioning: { type: 'DAY', field: 'ts' }, clustering: ['service'], expirationDays: 1.5, description: 'd' })).toEqual({
      timePartitioning: { type: 'DAY', field: 'ts', expirationMs: '129600000' },
      clustering: { fields: ['service'] },
      description: 'd',
    });
    expect(tableLayoutResource({})).toEqual({});
    expect(tableLayoutResource({ clustering: [] })).toEqual({});
  });
});
