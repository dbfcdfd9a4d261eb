import { TributaryError } from '../errors.js';
import type { AvroSchema } from './avro-type.js';
import { bigQueryFieldsFor } from './rows/bigquery-fields.js';
import { metadataFields, type MetadataColumns } from './row-metadata.js';
import { formatTableRef, standardType, type TableField, type TableRef, type TableSchema } from './table-schema.js';

/*
 * What a table lacks, or has incompatible, for the rows of a route: the Avro schema through the
 * documented type mapping plus the route's metadata columns, compared with the table's schema.
 * Only changes BigQuery makes without rewriting data are proposed: new NULLABLE (or REPEATED)
 * columns appended at the end of their RECORD, and REQUIRED -> NULLABLE. Everything else is an
 * incompatibility a person must resolve; the table is never touched for it.
 */

export interface ColumnAddition {
  /** Dotted path of the new column, e.g. `source.zone`. */
  path: string;
  /** The column as it is added: NULLABLE or REPEATED, and so are its own fields. */
  field: TableField;
}

export interface ColumnRelaxation {
  path: string;
  type: string;
  /** The record made the field optional, or no longer carries it at all. */
  because: 'nullable-in-record' | 'absent-from-record';
}

export interface Incompatibility {
  /** Dotted path of the field, or empty when the whole schema cannot be mapped. */
  path: string;
  /** The table's type with its mode, e.g. `NUMERIC` or `STRING REPEATED`. */
  tableType: string;
  /** The record's type as mapped to BigQuery. */
  recordType: string;
  message: string;
}

export interface SchemaDiff {
  additions: ColumnAddition[];
  relaxations: ColumnRelaxation[];
  incompatibilities: Incompatibility[];
  /** The table schema with the additions and relaxations applied (what tables.patch is sent). */
  patched: TableSchema;
}

/** The columns a route's rows have for this Avro schema: mapped record fields plus metadata columns. */
export function routeTableFields(schema: AvroSchema, metadata: MetadataColumns): TableField[] {
  const fields = bigQueryFieldsFor(schema);
  const extra = metadataFields(metadata);
  // A metadata column replaces a record field of the same name: the row writes the metadata value.
  return [...fields.filter((f) => !extra.some((m) => m.name === f.name)), ...extra];
}

/**
 * Diffs the route's rows for an Avro schema against a table. A schema the mapping cannot express
 * (too deeply nested, recursive) comes back as one incompatibility instead of throwing.
 */
export function diffAvroAgainstTable(schema: AvroSchema, metadata: MetadataColumns, table: TableSchema): SchemaDiff {
  let desired: TableField[];
  try {
    desired = routeTableFields(schema, metadata);
  } catch (err) {
    if (!(err instanceof TributaryError)) throw err;
    return {
      additions: [],
      relaxations: [],
      incompatibilities: [{ path: '', tableType: '', recordType: '', message: `the record's schema cannot be mapped to a table: ${err.message}` }],
      patched: structuredClone(table),
    };
  }
  return diffTableSchema(desired, table);
}

export function diffTableSchema(desired: readonly TableField[], table: TableSchema): SchemaDiff {
  const diff: SchemaDiff = { additions: [], relaxations: [], incompatibilities: [], patched: { fields: [] } };
  diff.patched.fields = diffFields(desired, table.fields, '', diff);
  return diff;
}

export function hasChanges(diff: SchemaDiff): boolean {
  return diff.additions.length > 0 || diff.relaxations.length > 0;
}

/**
 * Column types that take what the row converter writes for another type: every INT64 is a valid
 * FLOAT64, every NUMERIC a valid BIGNUMERIC; a JSON or GEOGRAPHY column (made so by a person) reads
 * its values from strings, and a string that does not parse is refused row by row, not here.
 */
const ACCEPTED_WIDENINGS: ReadonlySet<string> = new Set(['FLOAT64<-INT64', 'BIGNUMERIC<-NUMERIC', 'JSON<-STRING', 'GEOGRAPHY<-STRING']);

function typeAccepts(tableType: string, recordType: string): boolean {
  return tableType === recordType || ACCEPTED_WIDENINGS.has(`${tableType}<-${recordType}`);
}

function modeOf(field: TableField): 'NULLABLE' | 'REQUIRED' | 'REPEATED' {
  return field.mode ?? 'NULLABLE';
}

function typeLabel(field: TableField): string {
  const type = standardType(field.type);
  return modeOf(field) === 'REPEATED' ? `${type} REPEATED` : type;
}

function join(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}.${name}`;
}

/** A new column may not be REQUIRED, nor may anything inside it: the table's existing rows lack it. */
function optional(field: TableField): TableField {
  const out: TableField = { ...field, mode: modeOf(field) === 'REPEATED' ? 'REPEATED' : 'NULLABLE' };
  if (field.fields !== undefined) out.fields = field.fields.map(optional);
  return out;
}

function diffFields(desired: readonly TableField[], current: readonly TableField[], prefix: string, diff: SchemaDiff): TableField[] {
  // BigQuery column names are case-insensitive.
  const wanted = new Map<string, TableField>();
  for (const field of desired) wanted.set(field.name.toLowerCase(), field);
  const patched: TableField[] = [];
  for (const column of current) {
    const path = join(prefix, column.name);
    const field = wanted.get(column.name.toLowerCase());
    if (field === undefined) {
      if (modeOf(column) === 'REQUIRED') {
        diff.relaxations.push({ path, type: standardType(column.type), because: 'absent-from-record' });
        patched.push({ ...structuredClone(column), mode: 'NULLABLE' });
      } else {
        patched.push(structuredClone(column));
      }
      continue;
    }
    patched.push(diffColumn(field, column, path, diff));
  }
  const known = new Set(current.map((c) => c.name.toLowerCase()));
  for (const field of desired) {
    if (known.has(field.name.toLowerCase())) continue;
    const added = optional(field);
    diff.additions.push({ path: join(prefix, field.name), field: added });
    patched.push(structuredClone(added));
  }
  return patched;
}

function diffColumn(field: TableField, column: TableField, path: string, diff: SchemaDiff): TableField {
  const tableType = standardType(column.type);
  const recordType = standardType(field.type);
  const tableMode = modeOf(column);
  const recordMode = modeOf(field);
  const refuse = (message: string): TableField => {
    diff.incompatibilities.push({ path, tableType: typeLabel(column), recordType: typeLabel(field), message });
    return structuredClone(column);
  };
  if (!typeAccepts(tableType, recordType)) {
    return refuse(`field "${path}" is ${typeLabel(column)} in the table but ${typeLabel(field)} in the record: BigQuery cannot change a column's type`);
  }
  if ((tableMode === 'REPEATED') !== (recordMode === 'REPEATED')) {
    return refuse(
      `field "${path}" is ${typeLabel(column)} in the table but ${typeLabel(field)} in the record: BigQuery cannot turn a column into an array or back`,
    );
  }
  const out: TableField = { ...structuredClone(column) };
  if (tableMode === 'REQUIRED' && recordMode === 'NULLABLE') {
    diff.relaxations.push({ path, type: tableType, because: 'nullable-in-record' });
    out.mode = 'NULLABLE';
  }
  if (tableType === 'RECORD') out.fields = diffFields(field.fields ?? [], column.fields ?? [], path, diff);
  return out;
}

/** The incompatibilities as one SCHEMA_INCOMPATIBLE error naming every field, the table's and the record's type. */
export function incompatibilityError(table: TableRef, diff: SchemaDiff): TributaryError {
  const parts = diff.incompatibilities.map((i) => i.message);
  return new TributaryError('SCHEMA_INCOMPATIBLE', `${formatTableRef(table)}: ${parts.join('; ')}`);
}

function addedLines(path: string, field: TableField): string[] {
  const lines = [`+ ${path} ${standardType(field.type)} ${modeOf(field)}`];
  for (const child of field.fields ?? []) lines.push(...addedLines(`${path}.${child.name}`, child));
  return lines;
}

/**
 * A migration-tool style listing, one line per change:
 * `+ region STRING NULLABLE`, `~ status REQUIRED → NULLABLE`, `! amount NUMERIC ≠ STRING`.
 */
export function renderSchemaDiff(diff: SchemaDiff): string[] {
  const lines: string[] = [];
  for (const i of diff.incompatibilities) lines.push(i.path === '' ? `! ${i.message}` : `! ${i.path} ${i.tableType} ≠ ${i.recordType}`);
  for (const r of diff.relaxations) {
    lines.push(`~ ${r.path} REQUIRED → NULLABLE${r.because === 'absent-from-record' ? ' (no longer in the record)' : ''}`);
  }
  for (const a of diff.additions) lines.push(...addedLines(a.path, a.field));
  return lines;
}

/** The columns of a table about to be created, one `+ name TYPE MODE` line each (nested fields too). */
export function renderNewTable(fields: readonly TableField[]): string[] {
  return fields.flatMap((f) => addedLines(f.name, f));
}
