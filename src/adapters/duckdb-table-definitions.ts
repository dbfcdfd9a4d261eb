import { readFile } from 'node:fs/promises';
import type { Config } from '../config.js';
import type { AvroSchema } from '../core/avro-type.js';
import { bigQueryFieldsFor } from '../core/rows/bigquery-fields.js';
import type { TableField, TableRef, TableSchema } from '../core/table-schema.js';

/** A table the DuckDB sink creates when it is missing, in BigQuery's schema shape. */
export interface TableDefinition {
  route: string;
  table: TableRef;
  schema: TableSchema;
  /** The file it was read from, for messages. */
  source: string;
}

const MODES = new Set(['NULLABLE', 'REQUIRED', 'REPEATED']);

/**
 * Reads each route's table definition named in `duckdb.tables`: an Avro schema (`.avsc`, mapped
 * with the same type mapping the rows get) or a BigQuery schema (`.json`: a field array, `{fields}`
 * or `bq show --format=json` output). The route's metadata columns are added when missing.
 * Collects every problem instead of stopping at the first, like the rest of the config checks.
 */
export async function loadTableDefinitions(config: Config): Promise<{ definitions: TableDefinition[]; problems: string[] }> {
  const definitions: TableDefinition[] = [];
  const problems: string[] = [];
  for (const route of config.routes) {
    const source = config.duckdb.tables[route.name];
    if (source === undefined) continue;
    const key = `duckdb.tables.${route.name}`;
    let text: string;
    try {
      text = await readFile(source, 'utf8');
    } catch (err) {
      problems.push(`${key}: cannot read ${source} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      continue;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      problems.push(`${key}: ${source} is not valid JSON: ${(err as Error).message}`);
      continue;
    }
    try {
      const fields = isAvroRecord(doc) ? bigQueryFieldsFor(doc as AvroSchema) : bigQueryFieldsOf(doc, source);
      definitions.push({ route: route.name, table: route.table, schema: { fields: withMetadataColumns(fields, route.metadata) }, source });
    } catch (err) {
      problems.push(`${key}: ${(err as Error).message}`);
    }
  }
  return { definitions, problems };
}

function isAvroRecord(doc: unknown): boolean {
  return typeof doc === 'object' && doc !== null && !Array.isArray(doc) && (doc as { type?: unknown }).type === 'record';
}

function bigQueryFieldsOf(doc: unknown, source: string): TableField[] {
  let fields: unknown = doc;
  if (isObject(fields) && isObject(fields.schema)) fields = fields.schema.fields;
  else if (isObject(fields)) fields = fields.fields;
  if (!Array.isArray(fields)) throw new Error(`${source} is neither an Avro record schema nor a BigQuery schema (an array of fields or {"fields": [...]})`);
  return fields.map((f, i) => checkField(f, `${source}: field ${i}`));
}

function checkField(value: unknown, where: string): TableField {
  if (!isObject(value) || typeof value.name !== 'string' || value.name === '' || typeof value.type !== 'string') {
    throw new Error(`${where}: a field needs a "name" and a "type"`);
  }
  const field: TableField = { name: value.name, type: value.type.toUpperCase() };
  if (value.mode !== undefined) {
    const mode = String(value.mode).toUpperCase();
    if (!MODES.has(mode)) throw new Error(`${where} (${value.name}): mode must be NULLABLE, REQUIRED or REPEATED`);
    field.mode = mode as TableField['mode'];
  }
  if (value.precision !== undefined) field.precision = String(value.precision);
  if (value.scale !== undefined) field.scale = String(value.scale);
  if (field.type === 'RECORD' || field.type === 'STRUCT') {
    if (!Array.isArray(value.fields) || value.fields.length === 0) throw new Error(`${where} (${value.name}): a RECORD needs "fields"`);
    field.fields = value.fields.map((f, i) => checkField(f, `${where}.${value.name}[${i}]`));
  }
  return field;
}

function withMetadataColumns(fields: TableField[], metadata: Config['routes'][number]['metadata']): TableField[] {
  const out = [...fields];
  const add = (name: string | undefined, type: string): void => {
    if (name !== undefined && !out.some((f) => f.name === name)) out.push({ name, type, mode: 'NULLABLE' });
  };
  add(metadata.messageId, 'STRING');
  add(metadata.publishTime, 'TIMESTAMP');
  add(metadata.subscription, 'STRING');
  add(metadata.attributes, 'STRING');
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
