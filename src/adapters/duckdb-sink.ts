import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type * as DuckDb from '@duckdb/node-api';
import type { Config } from '../config.js';
import { TributaryError } from '../errors.js';
import type { PreparedRow, RowFailure, Sink, SinkLimits, WriteOutcome } from '../core/sink.js';
import { diffTableSchema, hasChanges, incompatibilityError } from '../core/schema-diff.js';
import type { TableEvolution, TableEvolver } from '../core/table-evolver.js';
import type { TableLayout } from '../core/table-layout.js';
import { standardType, type Row, type RowValue, type TableField, type TableRef, type TableSchema } from '../core/table-schema.js';
import { loadTableDefinitions, type TableDefinition } from './duckdb-table-definitions.js';

type DuckDbModule = typeof DuckDb;
type DuckValue = DuckDb.DuckDBValue;
type DuckType = DuckDb.DuckDBType;

/** The sink cannot be used at all (module missing, file locked, bad table definition): one clear line. */
export class DuckDbUnavailableError extends Error {}

export interface DuckDbSinkOptions {
  /** A file path, or `:memory:`. */
  path: string;
  definitions: TableDefinition[];
  /** How insertIds are remembered for deduplication. */
  dedupWindowMs?: number;
  /** For tests: how `@duckdb/node-api` is loaded. */
  loadModule?: () => Promise<DuckDbModule>;
  now?: () => number;
}

/**
 * insertIds are remembered this long, in the database itself and in the same transaction as their
 * rows: a resend within the window (a redelivery after a crash between insert and ack) is
 * acknowledged without a second row. BigQuery's own window is about a minute and best effort.
 */
export const DUCKDB_DEDUP_WINDOW_MS = 15 * 60_000;
const PRUNE_INTERVAL_MS = 60_000;
const META_SCHEMA = '_tributary';
const INSERT_IDS = `${quoteIdent(META_SCHEMA)}."insert_ids"`;
/** DuckDB errors that are about one row's values; anything else is about the request. */
const ROW_ERROR = /^(Constraint|Conversion|Invalid Input|Out of Range|Mismatch Type) Error/;

export async function createDuckDbSink(config: Config, options: Pick<DuckDbSinkOptions, 'loadModule'> = {}): Promise<DuckDbSink> {
  const { definitions, problems } = await loadTableDefinitions(config);
  if (problems.length > 0) throw new DuckDbUnavailableError(`sink: duckdb: ${problems.join('; ')}`);
  return DuckDbSink.open({ path: config.duckdb.path, definitions, ...options });
}

interface Target {
  columns: TableField[];
  statement: DuckDb.DuckDBPreparedStatement;
  types: DuckType[];
  convert: (row: Record<string, RowValue>) => DuckValue[];
}

/**
 * An embedded DuckDB file as the destination, with BigQuery's contract: tables are addressed as
 * `dataset.table` (the project is ignored), `getTableSchema` answers in BigQuery's TableSchema
 * shape so pre-validation works unchanged, a row DuckDB rejects comes back as that row's `invalid`
 * while the others land, and insertIds deduplicate resends.
 *
 * Everything goes through one connection, one operation at a time: DuckDB is embedded and its
 * work is CPU-bound, and serial access is what makes the insertId check and the insert atomic.
 */
export class DuckDbSink implements Sink, TableEvolver {
  readonly name = 'duckdb';
  /** Embedded: no request limit of its own; batches are bounded by the route's batch settings. */
  readonly limits: SinkLimits = { maxRequestBytes: 64 * 1024 * 1024, maxRequestRows: 100_000 };
  private readonly targets = new Map<string, Target>();
  /** Changes settled per (table, schema id): the file has one writer, this process. */
  private readonly evolved = new Map<string, TableEvolution>();
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private lastPruneAt = 0;

  private constructor(
    private readonly duckdb: DuckDbModule,
    private readonly instance: DuckDb.DuckDBInstance,
    private readonly connection: DuckDb.DuckDBConnection,
    private readonly dedupWindowMs: number,
    private readonly now: () => number,
  ) {}

  static async open(options: DuckDbSinkOptions): Promise<DuckDbSink> {
    let duckdb: DuckDbModule;
    try {
      duckdb = await (options.loadModule ?? (() => import('@duckdb/node-api')))();
    } catch (err) {
      throw new DuckDbUnavailableError(
        `sink: duckdb needs the optional dependency @duckdb/node-api, which cannot be loaded (${firstLine(err)}); install it with: npm install @duckdb/node-api`,
      );
    }
    if (options.path !== ':memory:') await mkdir(dirname(options.path), { recursive: true });
    let instance: DuckDb.DuckDBInstance;
    try {
      instance = await duckdb.DuckDBInstance.create(options.path);
    } catch (err) {
      throw new DuckDbUnavailableError(`sink: duckdb: cannot open ${options.path}: ${firstLine(err)}`);
    }
    const connection = await instance.connect();
    const sink = new DuckDbSink(duckdb, instance, connection, options.dedupWindowMs ?? DUCKDB_DEDUP_WINDOW_MS, options.now ?? Date.now);
    try {
      await sink.setUp(options.definitions);
    } catch (err) {
      await sink.close();
      throw new DuckDbUnavailableError(`sink: duckdb: cannot create the tables in ${options.path}: ${firstLine(err)}`);
    }
    return sink;
  }

  /** Rows are bound value by value; their size is only an estimate, for batching. */
  prepare(id: string, row: Row): PreparedRow {
    return { id, row, bytes: JSON.stringify(row).length };
  }

  write(table: TableRef, rows: readonly PreparedRow[]): Promise<WriteOutcome> {
    return this.serialized(() => this.insertNow(table, rows));
  }

  getTableSchema(table: TableRef): Promise<TableSchema> {
    return this.serialized(async () => {
      const { schema } = await this.readSchema(table);
      // The route re-reads the schema when a row names a field it lacks: the insert statement
      // must follow, or the new column would be refused here after pre-validation let it through.
      const cached = this.targets.get(tableSql(table));
      if (cached && JSON.stringify(cached.columns) !== JSON.stringify(schema.fields)) this.forget(table);
      return schema;
    });
  }

  /**
   * Brings the table up to the `desired` columns with the change BigQuery would make (the same
   * schema diff): `ALTER TABLE … ADD COLUMN` for new columns and for new fields inside STRUCT
   * columns at any depth, `DROP NOT NULL` for relaxed ones. Throws SCHEMA_INCOMPATIBLE and alters
   * nothing when a column would have to change type.
   */
  evolve(table: TableRef, schemaId: string, desired: readonly TableField[]): Promise<TableEvolution> {
    return this.serialized(async () => {
      const key = `${tableSql(table)}|${schemaId}`;
      const settled = this.evolved.get(key);
      if (settled) return settled;
      const { schema } = await this.readSchema(table);
      const diff = diffTableSchema(desired, schema);
      if (diff.incompatibilities.length > 0) throw incompatibilityError(table, diff);
      if (!hasChanges(diff)) {
        const unchanged = { changed: false, diff, schema };
        this.evolved.set(key, unchanged);
        return unchanged;
      }
      const name = tableSql(table);
      await this.connection.run('BEGIN TRANSACTION');
      try {
        for (const addition of diff.additions) {
          await this.connection.run(`ALTER TABLE ${name} ADD COLUMN ${columnPathSql(diff.patched.fields, addition.path)} ${duckDbTypeSql(addition.field)}`);
        }
        for (const relaxation of diff.relaxations) {
          // Nested fields have no NOT NULL in DuckDB: their mode lives in the column comment only.
          if (!relaxation.path.includes('.')) await this.connection.run(`ALTER TABLE ${name} ALTER ${quoteIdent(relaxation.path)} DROP NOT NULL`);
        }
        const before = new Map(schema.fields.map((f) => [f.name, JSON.stringify(f)]));
        for (const field of diff.patched.fields) {
          if (before.get(field.name) !== JSON.stringify(field)) {
            await this.connection.run(`COMMENT ON COLUMN ${name}.${quoteIdent(field.name)} IS ${quoteLiteral(JSON.stringify(field))}`);
          }
        }
        await this.connection.run('COMMIT');
      } catch (err) {
        await this.connection.run('ROLLBACK').catch(() => undefined);
        throw new TributaryError('INTERNAL', `${table.datasetId}.${table.tableId}: cannot change the table: ${firstLine(err)}`, { cause: err });
      } finally {
        this.forget(table);
      }
      const changed = { changed: true, diff, schema: diff.patched };
      this.evolved.set(key, changed);
      return changed;
    });
  }

  /**
   * Creates a missing table with these columns (a layout's partitioning and clustering mean
   * nothing to DuckDB and are ignored); `exists` when it is there already.
   */
  createTable(table: TableRef, fields: readonly TableField[], _layout?: TableLayout): Promise<'created' | 'exists'> {
    return this.serialized(async () => {
      const existing = await this.connection.runAndReadAll('SELECT 1 FROM duckdb_tables() WHERE schema_name = $1 AND table_name = $2', [
        table.datasetId,
        table.tableId,
      ]);
      if (existing.currentRowCount > 0) return 'exists';
      try {
        await this.createNow(table, fields);
      } catch (err) {
        throw new TributaryError('INTERNAL', `${table.datasetId}.${table.tableId}: cannot create the table: ${firstLine(err)}`, { cause: err });
      }
      return 'created';
    });
  }

  /** Runs a query on the sink's own connection (a DuckDB file has one writer process). */
  query(sql: string): Promise<Array<Record<string, unknown>>> {
    return this.serialized(async () => (await this.connection.runAndReadAll(sql)).getRowObjectsJson() as Array<Record<string, unknown>>);
  }

  /** Waits for what is running, then closes the file (DuckDB checkpoints it on close). */
  close(): Promise<void> {
    return this.serialized(async () => {
      if (this.closed) return;
      this.closed = true;
      for (const target of this.targets.values()) target.statement.destroySync();
      this.targets.clear();
      this.connection.closeSync();
      this.instance.closeSync();
    });
  }

  private serialized<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.tail.then(() => {
      if (this.closed) throw new TributaryError('INTERNAL', 'the DuckDB sink is closed');
      return operation();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async setUp(definitions: TableDefinition[]): Promise<void> {
    await this.connection.run(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(META_SCHEMA)}`);
    await this.connection.run(
      `CREATE TABLE IF NOT EXISTS ${INSERT_IDS} (table_name VARCHAR NOT NULL, insert_id VARCHAR NOT NULL, inserted_at TIMESTAMPTZ NOT NULL)`,
    );
    for (const definition of definitions) {
      const { datasetId, tableId } = definition.table;
      // An existing table is never altered, as with BigQuery: rows are validated against what it is.
      const existing = await this.connection.runAndReadAll('SELECT 1 FROM duckdb_tables() WHERE schema_name = $1 AND table_name = $2', [datasetId, tableId]);
      if (existing.currentRowCount > 0) continue;
      await this.createNow(definition.table, definition.schema.fields);
    }
  }

  private async createNow(table: TableRef, fields: readonly TableField[]): Promise<void> {
    const name = tableSql(table);
    await this.connection.run('BEGIN TRANSACTION');
    try {
      await this.connection.run(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(table.datasetId)}`);
      await this.connection.run(`CREATE TABLE ${name} (${fields.map(columnSql).join(', ')})`);
      // The BigQuery field rides along as the column comment: DuckDB cannot say that a nested
      // field is REQUIRED or that a VARCHAR holds a BIGNUMERIC, and pre-validation needs both.
      for (const field of fields) {
        await this.connection.run(`COMMENT ON COLUMN ${name}.${quoteIdent(field.name)} IS ${quoteLiteral(JSON.stringify(field))}`);
      }
      await this.connection.run('COMMIT');
    } catch (err) {
      await this.connection.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  private async readSchema(table: TableRef): Promise<{ schema: TableSchema; mapColumns: Set<string> }> {
    let rows: Array<Record<string, unknown>>;
    try {
      const reader = await this.connection.runAndReadAll(
        'SELECT column_name, data_type, is_nullable, comment FROM duckdb_columns() WHERE schema_name = $1 AND table_name = $2 ORDER BY column_index',
        [table.datasetId, table.tableId],
      );
      rows = reader.getRowObjectsJS() as Array<Record<string, unknown>>;
    } catch (err) {
      throw new TributaryError('INTERNAL', `${table.datasetId}.${table.tableId}: cannot read the table schema: ${firstLine(err)}`, { cause: err });
    }
    if (rows.length === 0) throw new TributaryError('TABLE_NOT_FOUND', `Not found: Table ${table.datasetId}.${table.tableId} in the DuckDB file`);
    const fields = rows.map((r) =>
      fieldOfColumn(String(r.column_name), String(r.data_type), r.is_nullable !== false, typeof r.comment === 'string' ? r.comment : undefined),
    );
    const mapColumns = new Set(rows.filter((r) => /^MAP\(/i.test(String(r.data_type))).map((r) => String(r.column_name)));
    return { schema: { fields }, mapColumns };
  }

  private async target(table: TableRef): Promise<Target> {
    const key = tableSql(table);
    const cached = this.targets.get(key);
    if (cached) return cached;
    const { schema, mapColumns } = await this.readSchema(table);
    const columns = schema.fields;
    // A map travels as the list of key/value records BigQuery knows; a MAP column (in a table made
    // outside tributary) needs it turned back into a map.
    const values = columns.map((c, i) => (mapColumns.has(c.name) ? `map_from_entries($${i + 1})` : `$${i + 1}`));
    const statement = await this.connection.prepare(`INSERT INTO ${key} (${columns.map((c) => quoteIdent(c.name)).join(', ')}) VALUES (${values.join(', ')})`);
    const target: Target = {
      columns,
      statement,
      types: columns.map((c) => this.transportType(c)),
      convert: rowConverter(this.duckdb, columns),
    };
    this.targets.set(key, target);
    return target;
  }

  private forget(table: TableRef): void {
    const key = tableSql(table);
    this.targets.get(key)?.statement.destroySync();
    this.targets.delete(key);
  }

  private async insertNow(table: TableRef, rows: readonly PreparedRow[]): Promise<WriteOutcome> {
    let target: Target;
    try {
      target = await this.target(table);
    } catch (err) {
      throw toSinkError(err, table);
    }
    const failures = new Map<number, RowFailure>();
    const pending: Array<{ index: number; insertId: string; values: DuckValue[] }> = [];
    for (let index = 0; index < rows.length; index++) {
      const row = rows[index] as PreparedRow;
      try {
        pending.push({ index, insertId: row.id, values: target.convert(row.row) });
      } catch (err) {
        if (!(err instanceof RowError)) throw err;
        failures.set(index, refusedRow(index, err.message, err.location));
      }
    }
    const tableName = `${table.datasetId}.${table.tableId}`;
    try {
      await this.pruneInsertIds();
      const known = await this.knownInsertIds(
        tableName,
        pending.map((p) => p.insertId),
      );
      const fresh: typeof pending = [];
      for (const item of pending) {
        if (known.has(item.insertId)) continue;
        known.add(item.insertId);
        fresh.push(item);
      }
      // DuckDB aborts a transaction at its first error and has no savepoints: roll back, set the
      // rejected row aside and run the rest again, so that every good row of the batch lands.
      for (;;) {
        const candidates = fresh.filter((item) => !failures.has(item.index));
        await this.connection.run('BEGIN TRANSACTION');
        let rejected = false;
        try {
          for (const item of candidates) {
            try {
              target.statement.bind(item.values, target.types);
              await target.statement.run();
            } catch (err) {
              const message = firstLine(err);
              if (!ROW_ERROR.test(message)) throw err;
              failures.set(item.index, refusedRow(item.index, message, locationOf(message, target.columns)));
              rejected = true;
              break;
            }
          }
          if (!rejected) {
            if (candidates.length > 0) {
              await this.connection.run(
                `INSERT INTO ${INSERT_IDS} SELECT $1, unnest($2), now()`,
                [tableName, this.duckdb.listValue(candidates.map((c) => c.insertId))],
                [this.duckdb.VARCHAR, this.duckdb.LIST(this.duckdb.VARCHAR)],
              );
            }
            await this.connection.run('COMMIT');
            break;
          }
          await this.connection.run('ROLLBACK');
        } catch (err) {
          await this.connection.run('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }
    } catch (err) {
      // The table may have changed under the cached statement: read it again next time.
      this.forget(table);
      throw toSinkError(err, table);
    }
    let billedBytes = 0;
    for (let i = 0; i < rows.length; i++) if (!failures.has(i)) billedBytes += (rows[i] as PreparedRow).bytes;
    return { failures: [...failures.values()].sort((a, b) => a.index - b.index), billedBytes };
  }

  private async knownInsertIds(tableName: string, ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const reader = await this.connection.runAndReadAll(
      `SELECT DISTINCT insert_id FROM ${INSERT_IDS} WHERE table_name = $1 AND insert_id IN (SELECT unnest($2))`,
      [tableName, this.duckdb.listValue(ids)],
      [this.duckdb.VARCHAR, this.duckdb.LIST(this.duckdb.VARCHAR)],
    );
    return new Set(reader.getRowsJS().map((r) => String(r[0])));
  }

  private async pruneInsertIds(): Promise<void> {
    const now = this.now();
    if (now - this.lastPruneAt < PRUNE_INTERVAL_MS) return;
    this.lastPruneAt = now;
    await this.connection.run(`DELETE FROM ${INSERT_IDS} WHERE inserted_at < to_timestamp($1)`, [(now - this.dedupWindowMs) / 1000], [this.duckdb.DOUBLE]);
  }

  /**
   * The type a value is bound with. Temporal and decimal values travel as text and DuckDB casts
   * them to the column's type on insert, also inside structs and lists; an unparseable or
   * out-of-range one fails that row with a Conversion Error.
   */
  private transportType(field: TableField): DuckType {
    const d = this.duckdb;
    let base: DuckType;
    switch (standardType(field.type)) {
      case 'BYTES':
        base = d.BLOB;
        break;
      case 'INT64':
        base = d.BIGINT;
        break;
      case 'FLOAT64':
        base = d.DOUBLE;
        break;
      case 'BOOL':
        base = d.BOOLEAN;
        break;
      case 'RECORD': {
        const entries: Record<string, DuckType> = {};
        for (const sub of field.fields ?? []) entries[sub.name] = this.transportType(sub);
        base = d.STRUCT(entries);
        break;
      }
      default:
        base = d.VARCHAR;
    }
    return field.mode === 'REPEATED' ? d.LIST(base) : base;
  }
}

function refusedRow(index: number, message: string, location: string | undefined): RowFailure {
  const where = location ? `field "${location}": ` : '';
  return {
    index,
    kind: 'rejected',
    code: 'BIGQUERY_ROW_INVALID',
    reason: `DuckDB rejected the row: ${where}${message}`,
    staleSchema: /no such field/i.test(message),
  };
}

/** A value that cannot be bound to its column: that row alone is refused. */
class RowError extends Error {
  constructor(
    message: string,
    readonly location: string,
  ) {
    super(message);
  }
}

type Convert = (value: RowValue | undefined, path: string) => DuckValue;

function rowConverter(duckdb: DuckDbModule, columns: TableField[]): (row: Record<string, RowValue>) => DuckValue[] {
  const converters = columns.map((c) => fieldConverter(duckdb, c));
  const names = new Set(columns.map((c) => c.name));
  return (row) => {
    for (const key of Object.keys(row)) if (!names.has(key)) throw new RowError(`no such field: ${key}.`, key);
    return columns.map((c, i) => (converters[i] as Convert)(row[c.name], c.name));
  };
}

function fieldConverter(duckdb: DuckDbModule, field: TableField): Convert {
  const scalar = scalarConverter(duckdb, field);
  if (field.mode !== 'REPEATED') return scalar;
  return (value, path) => {
    if (value === null || value === undefined) return duckdb.listValue([]);
    if (!Array.isArray(value)) throw new RowError(`field ${path}: expected an array`, path);
    return duckdb.listValue(
      value.map((item, i) => {
        if (item === null) throw new RowError(`field ${path}[${i}]: an array cannot hold NULL`, path);
        return scalar(item, `${path}[${i}]`);
      }),
    );
  };
}

function scalarConverter(duckdb: DuckDbModule, field: TableField): Convert {
  const nullable =
    (convert: (value: RowValue, path: string) => DuckValue): Convert =>
    (value, path) =>
      value === null || value === undefined ? null : convert(value, path);
  switch (standardType(field.type)) {
    case 'INT64':
      return nullable((v, path) => {
        if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
        if (typeof v === 'string' && /^[+-]?\d+$/.test(v.trim())) return BigInt(v.trim());
        throw new RowError(`field ${path}: ${JSON.stringify(v)} is not an integer`, path);
      });
    case 'FLOAT64':
      return nullable((v, path) => {
        const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
        if (Number.isNaN(n) && v !== 'NaN') throw new RowError(`field ${path}: ${JSON.stringify(v)} is not a number`, path);
        return n;
      });
    case 'BOOL':
      return nullable((v, path) => {
        if (typeof v === 'boolean') return v;
        if (v === 'true' || v === 'false') return v === 'true';
        throw new RowError(`field ${path}: ${JSON.stringify(v)} is not a boolean`, path);
      });
    case 'BYTES':
      return nullable((v, path) => {
        if (typeof v !== 'string') throw new RowError(`field ${path}: BYTES must be base64 text`, path);
        return duckdb.blobValue(Buffer.from(v, 'base64'));
      });
    case 'RECORD': {
      const subs = (field.fields ?? []).map((sub) => ({ name: sub.name, convert: fieldConverter(duckdb, sub) }));
      const names = new Set(subs.map((s) => s.name));
      return nullable((v, path) => {
        if (typeof v !== 'object' || Array.isArray(v) || v === null) throw new RowError(`field ${path}: expected a record`, path);
        for (const key of Object.keys(v)) if (!names.has(key)) throw new RowError(`no such field: ${path}.${key}.`, `${path}.${key}`);
        const entries: Record<string, DuckValue> = {};
        for (const sub of subs) entries[sub.name] = sub.convert(v[sub.name], `${path}.${sub.name}`);
        return duckdb.structValue(entries);
      });
    }
    case 'TIMESTAMP':
      return nullable((v) => (typeof v === 'number' ? new Date(v * 1000).toISOString() : textOf(v)));
    default:
      return nullable((v) => textOf(v));
  }
}

function textOf(value: RowValue): string {
  return typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** The DuckDB column type a BigQuery field becomes (documented in docs/development.md). */
export function duckDbTypeSql(field: TableField): string {
  let base: string;
  switch (standardType(field.type)) {
    case 'BYTES':
      base = 'BLOB';
      break;
    case 'INT64':
      base = 'BIGINT';
      break;
    case 'FLOAT64':
      base = 'DOUBLE';
      break;
    case 'BOOL':
      base = 'BOOLEAN';
      break;
    case 'NUMERIC': {
      const precision = field.precision !== undefined ? Number(field.precision) : 38;
      const scale = field.scale !== undefined ? Number(field.scale) : field.precision !== undefined ? 0 : 9;
      base = `DECIMAL(${precision}, ${scale})`;
      break;
    }
    case 'BIGNUMERIC': {
      // DuckDB's DECIMAL stops at 38 digits; wider values are kept exactly, as text.
      const precision = field.precision !== undefined ? Number(field.precision) : 77;
      base = precision <= 38 ? `DECIMAL(${precision}, ${field.scale !== undefined ? Number(field.scale) : 0})` : 'VARCHAR';
      break;
    }
    case 'TIMESTAMP':
      base = 'TIMESTAMPTZ';
      break;
    case 'DATETIME':
      base = 'TIMESTAMP';
      break;
    case 'DATE':
      base = 'DATE';
      break;
    case 'TIME':
      base = 'TIME';
      break;
    case 'RECORD':
      base = `STRUCT(${(field.fields ?? []).map((f) => `${quoteIdent(f.name)} ${duckDbTypeSql(f)}`).join(', ')})`;
      break;
    default:
      base = 'VARCHAR';
  }
  return field.mode === 'REPEATED' ? `${base}[]` : base;
}

/** `"s"."items".element."zone"`: DuckDB's path to a nested field, through the element of each list. */
function columnPathSql(fields: readonly TableField[], path: string): string {
  const parts: string[] = [];
  let level: readonly TableField[] = fields;
  const names = path.split('.');
  names.forEach((segment, i) => {
    const field = level.find((f) => f.name.toLowerCase() === segment.toLowerCase());
    parts.push(quoteIdent(field?.name ?? segment));
    if (i < names.length - 1) {
      if (field?.mode === 'REPEATED') parts.push('element');
      level = field?.fields ?? [];
    }
  });
  return parts.join('.');
}

function columnSql(field: TableField): string {
  return `${quoteIdent(field.name)} ${duckDbTypeSql(field)}${field.mode === 'REQUIRED' ? ' NOT NULL' : ''}`;
}

/** The column's BigQuery field: its comment when tributary created it, else read off the DuckDB type. */
function fieldOfColumn(name: string, dataType: string, nullable: boolean, comment: string | undefined): TableField {
  if (comment !== undefined) {
    try {
      const field = JSON.parse(comment) as TableField;
      if (field && field.name === name && typeof field.type === 'string' && (field.mode === 'REQUIRED') === !nullable) return field;
    } catch {
      // Not ours: a comment someone wrote.
    }
  }
  const parsed = parseDuckType(dataType);
  const field = fieldOfDuckType(name, parsed);
  if (!nullable && field.mode !== 'REPEATED') field.mode = 'REQUIRED';
  return field;
}

type ParsedType =
  | { kind: 'scalar'; name: string }
  | { kind: 'decimal'; precision: number; scale: number }
  | { kind: 'struct'; fields: Array<[string, ParsedType]> }
  | { kind: 'map'; key: ParsedType; value: ParsedType }
  | { kind: 'list'; item: ParsedType };

/** Parses DuckDB's spelling of a type (`STRUCT("a" INTEGER, b VARCHAR[])[]`, `MAP(VARCHAR, BIGINT)`, …). */
export function parseDuckType(text: string): ParsedType {
  let pos = 0;
  const peek = (s: string): boolean => text.startsWith(s, pos);
  const skipSpaces = (): void => {
    while (text[pos] === ' ') pos++;
  };
  const expect = (s: string): void => {
    skipSpaces();
    if (!peek(s)) throw new Error(`cannot read the DuckDB type ${text}`);
    pos += s.length;
  };
  const ident = (): string => {
    skipSpaces();
    if (text[pos] === '"') {
      let out = '';
      pos++;
      while (pos < text.length) {
        if (text[pos] === '"') {
          if (text[pos + 1] === '"') {
            out += '"';
            pos += 2;
            continue;
          }
          pos++;
          return out;
        }
        out += text[pos++];
      }
      throw new Error(`cannot read the DuckDB type ${text}`);
    }
    const start = pos;
    while (pos < text.length && !' (),['.includes(text[pos] as string)) pos++;
    return text.slice(start, pos);
  };
  const type = (): ParsedType => {
    skipSpaces();
    let result: ParsedType;
    const upper = text.slice(pos).toUpperCase();
    if (upper.startsWith('STRUCT(')) {
      pos += 'STRUCT('.length;
      const fields: Array<[string, ParsedType]> = [];
      for (;;) {
        const name = ident();
        fields.push([name, type()]);
        skipSpaces();
        if (peek(',')) pos++;
        else break;
      }
      expect(')');
      result = { kind: 'struct', fields };
    } else if (upper.startsWith('MAP(')) {
      pos += 'MAP('.length;
      const key = type();
      expect(',');
      const value = type();
      expect(')');
      result = { kind: 'map', key, value };
    } else if (upper.startsWith('DECIMAL(') || upper.startsWith('NUMERIC(')) {
      pos = text.indexOf('(', pos) + 1;
      const close = text.indexOf(')', pos);
      const [p, s] = text
        .slice(pos, close)
        .split(',')
        .map((n) => Number(n.trim()));
      pos = close + 1;
      result = { kind: 'decimal', precision: p ?? 18, scale: s ?? 0 };
    } else {
      const start = pos;
      while (pos < text.length && !'(),['.includes(text[pos] as string)) pos++;
      let name = text.slice(start, pos).trim().toUpperCase();
      // Parameters of other types (VARCHAR(10), ENUM('a', 'b')) do not change the mapping.
      if (peek('(')) {
        let depth = 0;
        do {
          if (text[pos] === '(') depth++;
          else if (text[pos] === ')') depth--;
          pos++;
        } while (depth > 0 && pos < text.length);
        name = name || 'VARCHAR';
      }
      result = { kind: 'scalar', name };
    }
    while (peek('[')) {
      const close = text.indexOf(']', pos);
      pos = close + 1;
      result = { kind: 'list', item: result };
    }
    return result;
  };
  return type();
}

function fieldOfDuckType(name: string, parsed: ParsedType): TableField {
  switch (parsed.kind) {
    case 'list': {
      if (parsed.item.kind === 'list' || parsed.item.kind === 'map') {
        // BigQuery has no array of arrays: the documented wrapping record.
        return { name, type: 'RECORD', mode: 'REPEATED', fields: [{ ...fieldOfDuckType('value', parsed.item), mode: 'REPEATED' }] };
      }
      return { ...fieldOfDuckType(name, parsed.item), mode: 'REPEATED' };
    }
    case 'map':
      return {
        name,
        type: 'RECORD',
        mode: 'REPEATED',
        fields: [{ ...fieldOfDuckType('key', parsed.key), mode: 'REQUIRED' }, fieldOfDuckType('value', parsed.value)],
      };
    case 'struct':
      return { name, type: 'RECORD', mode: 'NULLABLE', fields: parsed.fields.map(([n, t]) => fieldOfDuckType(n, t)) };
    case 'decimal': {
      const big = parsed.scale > 9 || parsed.precision - parsed.scale > 29;
      return { name, type: big ? 'BIGNUMERIC' : 'NUMERIC', mode: 'NULLABLE', precision: String(parsed.precision), scale: String(parsed.scale) };
    }
    case 'scalar':
      return { name, type: scalarTypeOf(parsed.name), mode: 'NULLABLE' };
  }
}

function scalarTypeOf(duckName: string): string {
  if (/^(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|INT\d*|LONG|SHORT)$/.test(duckName)) return 'INTEGER';
  if (/^(DOUBLE|FLOAT|REAL|FLOAT[48])$/.test(duckName)) return 'FLOAT';
  if (duckName === 'BOOLEAN' || duckName === 'BOOL') return 'BOOLEAN';
  if (duckName === 'BLOB' || duckName === 'BYTEA') return 'BYTES';
  if (duckName === 'TIMESTAMP WITH TIME ZONE' || duckName === 'TIMESTAMPTZ') return 'TIMESTAMP';
  if (duckName.startsWith('TIMESTAMP')) return 'DATETIME';
  if (duckName === 'DATE') return 'DATE';
  if (duckName === 'TIME') return 'TIME';
  return 'STRING';
}

function locationOf(message: string, columns: TableField[]): string {
  const constraint = /NOT NULL constraint failed: [^.]+\.(\S+)/.exec(message);
  if (constraint?.[1]) return constraint[1];
  return columns.find((c) => message.includes(`"${c.name}"`))?.name ?? '';
}

/** Request-level failures, in the codes the route understands. */
function toSinkError(err: unknown, table: TableRef): TributaryError {
  if (err instanceof TributaryError) return err;
  const message = firstLine(err);
  const where = `${table.datasetId}.${table.tableId}`;
  if (/^Catalog Error: .*does not exist/.test(message)) return new TributaryError('TABLE_NOT_FOUND', `${where}: ${message}`, { cause: err });
  return new TributaryError('INTERNAL', `${where}: ${message}`, { cause: err });
}

function tableSql(table: TableRef): string {
  return `${quoteIdent(table.datasetId)}.${quoteIdent(table.tableId)}`;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}
