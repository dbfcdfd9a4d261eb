import type { SchemaDiff } from './schema-diff.js';
import type { TableLayout } from './table-layout.js';
import type { TableField, TableRef, TableSchema } from './table-schema.js';

export interface TableEvolution {
  /** True when this call changed the table; false when it already had every column. */
  changed: boolean;
  /** What this call applied (empty when nothing). */
  diff: SchemaDiff;
  /** The table's schema after the change. */
  schema: TableSchema;
}

/**
 * Table management a route needs for schema evolution, implemented by the BigQuery table manager
 * and the DuckDB sink alike.
 */
export interface TableEvolver {
  /**
   * Brings the table up to `desired` (a route's columns for schema `schemaId`): adds the columns it
   * lacks, relaxes REQUIRED columns the rows may leave empty. Settled once per (table, schema id).
   * Throws SCHEMA_INCOMPATIBLE (data) without changing the table when a column would change type,
   * TABLE_NOT_FOUND when the table is missing, a transient code when the change could not be made yet.
   */
  evolve(table: TableRef, schemaId: string, desired: readonly TableField[]): Promise<TableEvolution>;
  /** Creates a missing table; `exists` when it was there already (another replica's included). */
  createTable(table: TableRef, fields: readonly TableField[], layout?: TableLayout): Promise<'created' | 'exists'>;
}
