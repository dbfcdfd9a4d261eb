import type { PreparedRow } from '../core/sink.js';

/** What the insertAll request adds around each row's JSON: `{"insertId":<id>,"json":<row>}` and a comma. */
export function rowEnvelopeBytes(insertId: string): number {
  return Buffer.byteLength(JSON.stringify(insertId)) + 22;
}

/** The request body around the rows. */
const BODY_PREFIX = '{"skipInvalidRows":false,"ignoreUnknownValues":false,"rows":[';
const BODY_SUFFIX = ']}';
export const BODY_OVERHEAD_BYTES = BODY_PREFIX.length + BODY_SUFFIX.length;

/**
 * The tabledata.insertAll request body, as `table.insert(rows, { raw: true })` would send it, built
 * from each row's JSON text made when the row was prepared, so a batch costs a join rather than a
 * second serialization of every row. Handed to the client as an object instead, the client would
 * deep-copy every row several times and rewrite "{{projectId}}" inside row values.
 */
export function insertAllBody(rows: readonly PreparedRow[]): string {
  const parts = new Array<string>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as PreparedRow;
    const text = typeof row.encoded === 'string' ? row.encoded : JSON.stringify(row.row);
    parts[i] = `{"insertId":${JSON.stringify(row.id)},"json":${text}}`;
  }
  return `${BODY_PREFIX}${parts.join(',')}${BODY_SUFFIX}`;
}
