import { standardType, type TableField } from '../table-schema.js';
import { integerDigits } from './scalar-checks.js';

/*
 * Proof, once per schema, that every row a converter shapes passes the validator: the check then
 * leaves the per-row path.
 */

/** Types whose every well-formed value from the row converter is also valid for the column. */
const PROVABLE_TYPES: ReadonlySet<string> = new Set([
  'INT64',
  'FLOAT64',
  'BOOL',
  'STRING',
  'BYTES',
  'TIMESTAMP',
  'DATETIME',
  'DATE',
  'TIME',
  'NUMERIC',
  'BIGNUMERIC',
  'RECORD',
]);

/**
 * `produced` are the columns of the rows (every field always present, REQUIRED ones never null),
 * `table` the destination's. Conservative: anything it cannot vouch for is "not proven".
 */
export function fieldsFit(produced: readonly TableField[], table: readonly TableField[]): boolean {
  const byName = new Map<string, TableField>();
  for (const column of table) byName.set(column.name, column);
  const seen = new Set<string>();
  for (const field of produced) {
    const lower = field.name.toLowerCase();
    if (seen.has(lower)) return false;
    seen.add(lower);
    const column = byName.get(field.name);
    if (column === undefined || !fieldFits(field, column)) return false;
  }
  // A REQUIRED column the rows never fill would fail every row; a case-variant would be matched by
  // the validator where this proof matched nothing.
  for (const column of table) {
    if (!seen.has(column.name.toLowerCase())) {
      if (column.mode === 'REQUIRED') return false;
    } else if (!produced.some((f) => f.name === column.name)) {
      return false;
    }
  }
  return true;
}

function fieldFits(field: TableField, column: TableField): boolean {
  const type = standardType(field.type);
  if (!PROVABLE_TYPES.has(type) || standardType(column.type) !== type) return false;
  const mode = field.mode ?? 'NULLABLE';
  const columnMode = column.mode ?? 'NULLABLE';
  if (mode === 'REPEATED' || columnMode === 'REPEATED') {
    if (mode !== columnMode) return false;
  } else if (columnMode === 'REQUIRED' && mode !== 'REQUIRED') {
    return false;
  }
  if (type === 'RECORD') return fieldsFit(field.fields ?? [], column.fields ?? []);
  if (type === 'NUMERIC' || type === 'BIGNUMERIC') {
    // The converter writes at most P - S integer digits (P, S of the Avro decimal).
    const fallback = type === 'NUMERIC' ? 29 : 38;
    const produced = field.precision === undefined ? fallback : Number(field.precision) - Number(field.scale ?? 0);
    return Number.isInteger(produced) && produced <= integerDigits(column, fallback);
  }
  return true;
}
