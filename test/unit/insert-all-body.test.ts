import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { insertAllBody } from '../../src/adapters/insert-all-body.js';
import type { InsertRow } from '../../src/core/ports.js';
import type { Row } from '../../src/core/table-schema.js';

/** What `JSON.stringify` makes of the body `table.insert(rows, { raw: true })` sends. */
function reference(rows: InsertRow[]): string {
  return JSON.stringify({ skipInvalidRows: false, ignoreUnknownValues: false, rows: rows.map((r) => ({ insertId: r.insertId, json: r.json })) });
}

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
        fc.array(fc.record({ insertId: fc.string({ unit: 'binary' }), json: fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), rowValue, { maxKeys: 4 }), withText: fc.boolean() }), { maxLength: 6 }),
        (specs) => {
          const rows: InsertRow[] = specs.map((s) => ({ insertId: s.insertId, json: s.json as Row, ...(s.withText ? { text: JSON.stringify(s.json) } : {}) }));
          expect(insertAllBody(rows)).toBe(reference(rows));
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('sends the text it is given: the pipeline owns keeping it in step with the row', () => {
    const body = JSON.parse(insertAllBody([{ insertId: 'a"b', json: { n: 1 }, text: '{"n":2}' }])) as { rows: Array<{ insertId: string; json: unknown }> };
    expect(body.rows).toEqual([{ insertId: 'a"b', json: { n: 2 } }]);
  });
});
