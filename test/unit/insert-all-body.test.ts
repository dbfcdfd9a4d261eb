import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BigQuerySink } from '../../src/adapters/bigquery-sink.js';
import { BODY_OVERHEAD_BYTES, insertAllBody } from '../../src/adapters/insert-all-body.js';
import type { PreparedRow } from '../../src/core/sink.js';
import type { Row } from '../../src/core/table-schema.js';

/** What `JSON.stringify` makes of the body `table.insert(rows, { raw: true })` sends. */
function reference(rows: PreparedRow[]): string {
  return JSON.stringify({ skipInvalidRows: false, ignoreUnknownValues: false, rows: rows.map((r) => ({ insertId: r.id, json: r.row })) });
}

const sink = new BigQuerySink({ projectId: 'test-project', timeoutMs: 1000 });

const rowValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ unit: 'binary' }),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), tie('value'), { maxKeys: 3 }),
  ),
})).value;

describe('insertAllBody', () => {
  it('is byte for byte what JSON.stringify makes of the request, with or without the rows’ own text', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            insertId: fc.string({ unit: 'binary' }),
            json: fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), rowValue, { maxKeys: 4 }),
            withText: fc.boolean(),
          }),
          { maxLength: 6 },
        ),
        (specs) => {
          const rows: PreparedRow[] = specs.map((s) =>
            s.withText ? sink.prepare(s.insertId, s.json as Row) : { id: s.insertId, row: s.json as Row, bytes: 0 },
          );
          expect(insertAllBody(rows)).toBe(reference(rows));
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('sends the text the row was prepared with: the pipeline owns keeping it in step with the row', () => {
    const body = JSON.parse(insertAllBody([{ id: 'a"b', row: { n: 1 }, bytes: 7, encoded: '{"n":2}' }])) as {
      rows: Array<{ insertId: string; json: unknown }>;
    };
    expect(body.rows).toEqual([{ insertId: 'a"b', json: { n: 2 } }]);
  });

  it('prepared sizes add up to the request exactly: envelope and insertId of every row counted', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            insertId: fc.string({ unit: 'binary', minLength: 1 }),
            json: fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), rowValue, { maxKeys: 4 }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        (specs) => {
          const rows = specs.map((s) => sink.prepare(s.insertId, s.json as Row));
          const total = rows.reduce((sum, r) => sum + r.bytes, 0);
          expect(Buffer.byteLength(insertAllBody(rows))).toBe(BODY_OVERHEAD_BYTES + total - 1);
        },
      ),
      { numRuns: 1_000 },
    );
  });
});
