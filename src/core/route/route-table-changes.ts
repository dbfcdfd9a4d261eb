import { TributaryError, toTributaryError } from '../../errors.js';
import type { PipelineObserver, TableChangeWaitKind } from '../observer.js';
import type { Clock, Logger, Random } from '../ports.js';
import { retry, type RetryPolicy } from '../retry.js';
import { renderNewTable, renderSchemaDiff } from '../schema-diff.js';
import type { TableEvolver } from '../table-evolver.js';
import type { TableLayout } from '../table-layout.js';
import type { TableField, TableRef } from '../table-schema.js';
import type { PendingRow } from './pending-row.js';

export type SchemaEvolutionMode = 'off' | 'add-columns';

/** How long after the route saw its table created a `notFound` from an insert is a wait, not a pause. */
export const NOT_FOUND_AFTER_CREATE_MS = 10 * 60_000;

export interface RouteTableChangesDeps {
  route: string;
  table: TableRef;
  tableName: string;
  schemaEvolution: SchemaEvolutionMode;
  /** The layout of a table created when it is missing; undefined: a missing table pauses the route. */
  createTable: TableLayout | undefined;
  evolver: TableEvolver | undefined;
  observer: PipelineObserver;
  clock: Clock;
  random: Random;
  logger: Logger;
  retry: RetryPolicy;
  signal: AbortSignal;
  /** Rows are held for a change: the wait is progress, not a stall. */
  progress(): void;
}

/** What `/status` shows of the change a route waits for. */
export interface PendingTableChange {
  kind: TableChangeWaitKind;
  /** When the oldest wait began. */
  since: number;
  /** Rows held for changes of this route's table, all kinds together. */
  heldRows: number;
  /** The schema whose columns are being added, when that is the wait. */
  schemaId?: string;
}

/** What evolving the table for a batch's schemas found. */
export interface EvolutionOutcome {
  /** Schemas the table cannot take without an incompatible change, with the error their rows get. */
  refused: Map<string, TributaryError>;
  /**
   * When the table was first found up to one of these schemas (by this change or another
   * replica's): a cached table schema read before that is stale.
   */
  settledAt: number | undefined;
}

interface Hold {
  kind: TableChangeWaitKind;
  since: number;
  rows: number;
  schemaId?: string | undefined;
}

/**
 * A route's side of table management: asks the table evolver to add the columns a new schema
 * brings (once per schema: the evolver remembers), creates a missing table from the columns of the
 * rows in hand, and keeps account of the rows held meanwhile, for `/status` and the wait metric.
 * Each change is logged once, with its diff.
 */
export class RouteTableChanges {
  private readonly holds = new Set<Hold>();
  private readonly logged = new Set<string>();
  /** When the table was first found up to each schema; cached table schemas older than that are stale. */
  private readonly settledAt = new Map<string, number>();
  private creating: Promise<void> | undefined;
  private createdAt: number | undefined;

  constructor(private readonly deps: RouteTableChangesDeps) {}

  /** Whether rows whose columns the table lacks make the route change the table. */
  get evolving(): boolean {
    return this.deps.schemaEvolution === 'add-columns' && this.deps.evolver !== undefined;
  }

  /** Whether a missing table is created rather than pausing the route. */
  get creates(): boolean {
    return this.deps.createTable !== undefined && this.deps.evolver !== undefined;
  }

  /** The route created the table (or saw it created) so recently that streaming may not see it yet. */
  justCreated(): boolean {
    return this.createdAt !== undefined && this.deps.clock.now() - this.createdAt < NOT_FOUND_AFTER_CREATE_MS;
  }

  pending(): PendingTableChange | undefined {
    let oldest: Hold | undefined;
    let heldRows = 0;
    for (const hold of this.holds) {
      heldRows += hold.rows;
      if (oldest === undefined || hold.since < oldest.since) oldest = hold;
    }
    if (oldest === undefined) return undefined;
    const pending: PendingTableChange = { kind: oldest.kind, since: oldest.since, heldRows };
    if (oldest.schemaId !== undefined) pending.schemaId = oldest.schemaId;
    return pending;
  }

  /**
   * Marks `rows` rows as held for a change until the returned function is called, which records
   * how long they waited.
   */
  hold(kind: TableChangeWaitKind, rows: number, schemaId?: string): () => void {
    const hold: Hold = { kind, since: this.deps.clock.now(), rows, schemaId };
    this.holds.add(hold);
    this.deps.progress();
    return () => {
      if (!this.holds.delete(hold)) return;
      this.deps.progress();
      this.deps.observer.tableChangeWait(this.deps.route, kind, (this.deps.clock.now() - hold.since) / 1000, rows);
    };
  }

  /**
   * Brings the table up to the columns of each schema among `rows` (rows whose shape the cached
   * table schema does not prove). A schema the table cannot take is returned refused, with the
   * SCHEMA_INCOMPATIBLE error naming the field and both types; the table is not touched for it.
   * Throws what could not be settled: TABLE_NOT_FOUND, ACCESS_DENIED, a transient code after retries.
   */
  async evolveFor(rows: readonly PendingRow[]): Promise<EvolutionOutcome> {
    const { deps } = this;
    const outcome: EvolutionOutcome = { refused: new Map(), settledAt: undefined };
    const evolver = deps.evolver;
    if (evolver === undefined) return outcome;
    const schemas = new Map<string, { shape: readonly TableField[]; rows: number }>();
    for (const item of rows) {
      if (item.shape === undefined) continue;
      const seen = schemas.get(item.schemaKey);
      if (seen) seen.rows++;
      else schemas.set(item.schemaKey, { shape: item.shape, rows: 1 });
    }
    for (const [schemaId, { shape, rows: count }] of schemas) {
      const release = this.hold('add-columns', count, schemaId);
      try {
        const evolution = await retry(() => evolver.evolve(deps.table, schemaId, shape), this.retryOptions());
        // Unchanged may mean another replica made the change: the cached schema is stale either way.
        let at = this.settledAt.get(schemaId);
        if (at === undefined) {
          at = deps.clock.now();
          this.settledAt.set(schemaId, at);
        }
        outcome.settledAt = Math.max(outcome.settledAt ?? 0, at);
        if (evolution.changed) {
          this.logOnce(`changed|${schemaId}`, () =>
            deps.logger.info({ route: deps.route, table: deps.tableName, schemaId, diff: renderSchemaDiff(evolution.diff) }, 'Table schema changed.'),
          );
        }
      } catch (err) {
        const error = toTributaryError(err);
        if (error.code !== 'SCHEMA_INCOMPATIBLE') throw error;
        outcome.refused.set(schemaId, error);
        this.logOnce(`refused|${schemaId}`, () =>
          deps.logger.error(
            { route: deps.route, table: deps.tableName, schemaId, code: error.code, err: error.message },
            'Schema change refused: incompatible with the table; its messages are dead-lettered.',
          ),
        );
      } finally {
        release();
      }
    }
    return outcome;
  }

  /**
   * Creates the missing table from the columns of the first row in hand that has them (its schema
   * through the type mapping, plus the route's metadata columns), with the route's layout. Another
   * replica having created it first is success. Throws TABLE_NOT_FOUND when it cannot be created
   * (a layout that does not fit the columns, no dataset), which pauses the route.
   */
  async createFor(rows: readonly PendingRow[]): Promise<void> {
    if (this.creating === undefined) {
      this.creating = this.create(rows).finally(() => {
        this.creating = undefined;
      });
    }
    const release = this.hold('create-table', rows.length);
    try {
      await this.creating;
    } finally {
      release();
    }
  }

  private async create(rows: readonly PendingRow[]): Promise<void> {
    const { deps } = this;
    const evolver = deps.evolver;
    const layout = deps.createTable;
    if (evolver === undefined || layout === undefined) throw new TributaryError('TABLE_NOT_FOUND', `${deps.tableName} is missing`);
    const source = rows.find((item) => item.shape !== undefined);
    if (source?.shape === undefined) {
      throw new TributaryError(
        'TABLE_NOT_FOUND',
        `${deps.tableName} is missing and cannot be created: the schema of the rows in hand cannot be mapped to columns`,
      );
    }
    const fields = source.shape;
    const result = await retry(() => evolver.createTable(deps.table, fields, layout), this.retryOptions());
    this.createdAt = deps.clock.now();
    if (result === 'created') {
      deps.logger.info({ route: deps.route, table: deps.tableName, schemaId: source.schemaKey, columns: renderNewTable(fields), layout }, 'Table created.');
    } else {
      deps.logger.info({ route: deps.route, table: deps.tableName }, 'Table found created by another worker.');
    }
  }

  private retryOptions() {
    const { deps } = this;
    return {
      policy: deps.retry,
      clock: deps.clock,
      random: deps.random,
      signal: deps.signal,
      onRetry: (error: TributaryError) => deps.observer.retried(deps.route, error.code),
    };
  }

  private logOnce(key: string, log: () => void): void {
    if (this.logged.has(key)) return;
    this.logged.add(key);
    log();
  }
}
