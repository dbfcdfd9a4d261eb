import type { InsertRow } from '../core/ports.js';

/**
 * The tabledata.insertAll request body, as `table.insert(rows, { raw: true })` would send it, built
 * from each row's JSON text where the pipeline already made it (every row it sends), so a batch
 * costs a join rather than a second serialization of every row. Handed to the client as an object
 * instead, the client would deep-copy every row several times and rewrite "{{projectId}}" inside
 * row values.
 */
export function insertAllBody(rows: readonly InsertRow[]): string {
  const parts = new Array<string>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as InsertRow;
    parts[i] = `{"insertId":${JSON.stringify(row.insertId)},"json":${row.text ?? JSON.stringify(row.json)}}`;
  }
  return `{"skipInvalidRows":false,"ignoreUnknownValues":false,"rows":[${parts.join(',')}]}`;
}
