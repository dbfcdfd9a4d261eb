/** The parts of a BigQuery table schema the core needs, in the REST API's own shape. */
export interface TableField {
  name: string;
  /** Legacy (INTEGER, FLOAT, BOOLEAN, RECORD) or standard (INT64, FLOAT64, BOOL, STRUCT) names. */
  type: string;
  mode?: 'NULLABLE' | 'REQUIRED' | 'REPEATED';
  fields?: TableField[];
  precision?: string;
  scale?: string;
}

/** BigQuery's legacy type names and aliases, by the standard name they stand for. */
const STANDARD_TYPES: Readonly<Record<string, string>> = {
  INTEGER: 'INT64',
  FLOAT: 'FLOAT64',
  BOOLEAN: 'BOOL',
  STRUCT: 'RECORD',
  DECIMAL: 'NUMERIC',
  BIGDECIMAL: 'BIGNUMERIC',
};

/** A field type by one name whichever the table uses: INT64, FLOAT64, BOOL, RECORD, NUMERIC, BIGNUMERIC, … */
export function standardType(type: string): string {
  const upper = type.toUpperCase();
  return STANDARD_TYPES[upper] ?? upper;
}

export interface TableSchema {
  fields: TableField[];
}

/** A fully qualified table. */
export interface TableRef {
  projectId: string;
  datasetId: string;
  tableId: string;
}

export function formatTableRef(ref: TableRef): string {
  return `${ref.projectId}.${ref.datasetId}.${ref.tableId}`;
}

/** JSON-ready row value: what BigQuery's JSON row format accepts and JSON.stringify can write. */
export type RowValue = string | number | boolean | null | RowValue[] | Row;
export interface Row {
  [column: string]: RowValue;
}
