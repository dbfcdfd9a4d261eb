import { type TributaryError, toTributaryError } from '../../errors.js';
import { actionFor } from '../failure-policy.js';
import type { PipelineObserver } from '../observer.js';
import type { Clock, Logger, Random } from '../ports.js';
import type { RetryPolicy } from '../retry.js';
import type { Settler } from '../settler.js';
import type { Sink } from '../sink.js';
import type { TableEvolver } from '../table-evolver.js';
import type { TableLayout } from '../table-layout.js';
import type { TableRef } from '../table-schema.js';
import type { TableValidators } from '../table-validators.js';
import type { ConcurrencyController } from './concurrency-controller.js';
import { InsertExecutor, type BatchResult } from './insert-executor.js';
import { envelopesOf, type PendingRow } from './pending-row.js';
import { PreValidation } from './pre-validation.js';
import { RouteTableChanges, type PendingTableChange, type SchemaEvolutionMode } from './route-table-changes.js';

/** A "no such field" answer is judged against a table schema read at most this long ago. */
const FRESH_SCHEMA_MAX_AGE_MS = 1000;

export interface BatchSenderDeps {
  route: string;
  table: TableRef;
  tableName: string;
  unknownFields: 'dead-letter' | 'drop';
  sink: Sink;
  validators: TableValidators;
  settler: Settler;
  observer: PipelineObserver;
  clock: Clock;
  random: Random;
  logger: Logger;
  retry: RetryPolicy;
  /** Aborted when the drain deadline passes: retries stop waiting. */
  signal: AbortSignal;
  concurrency: ConcurrencyController;
  schemaEvolution: SchemaEvolutionMode;
  /** The layout of a table created when it is missing; undefined: a missing table pauses the route. */
  createTable: TableLayout | undefined;
  /** Adds columns and creates tables, for routes with schemaEvolution or createTable. */
  evolver?: TableEvolver | undefined;
  /** Rows are held for a table change: the wait is progress, not a stall. */
  progress(): void;
  /** The route is draining: a destination error nacks instead of holding, and no table is created. */
  draining(): boolean;
  /** A destination error stopped the batch: kept for `/status`. */
  recordError(error: TributaryError): void;
  /** A write succeeded. */
  wrote(): void;
}

/**
 * Takes one batch from validation to settlement: pre-validation keeps rows the table would refuse
 * from leaving (adding the columns a new schema brings, with schemaEvolution), the insert executor
 * sends the rest until each is settled, and a missing table is created once here when the route
 * has createTable. What a destination error stops is returned to
 * be held by the route.
 */
export class BatchSender {
  private readonly changes: RouteTableChanges;
  private readonly validation: PreValidation;
  private readonly executor: InsertExecutor;

  constructor(private readonly deps: BatchSenderDeps) {
    const { route, table, tableName, observer, clock, random, retry, signal, validators, unknownFields, logger } = deps;
    const common = { route, table, observer, clock, random, retry, signal };
    const changes = new RouteTableChanges({
      ...common,
      tableName,
      logger,
      schemaEvolution: deps.schemaEvolution,
      createTable: deps.createTable,
      evolver: deps.evolver,
      progress: () => deps.progress(),
    });
    this.changes = changes;
    this.validation = new PreValidation({ ...common, unknownFields, validators, sink: deps.sink, changes });
    this.executor = new InsertExecutor({
      ...common,
      tableName: deps.tableName,
      sink: deps.sink,
      settler: deps.settler,
      logger: deps.logger,
      concurrency: deps.concurrency,
      staleSchema: () => validators.invalidate(table),
      freshSchema: () => validators.fresh(table, unknownFields, FRESH_SCHEMA_MAX_AGE_MS),
      tableJustCreated: () => changes.justCreated(),
      holdForPropagation: (rows) => changes.hold('propagation', rows),
      wrote: () => deps.wrote(),
    });
  }

  /** The table change rows of this route wait for, for `/status`. */
  pendingChange(): PendingTableChange | undefined {
    return this.changes.pending();
  }

  /** Validates and sends one batch; `maxAttempts` bounds the insert's retries (a probe makes one). */
  async send(batch: PendingRow[], maxAttempts?: number): Promise<BatchResult> {
    const { deps } = this;
    let created = false;
    let checked: Awaited<ReturnType<PreValidation['check']>> | undefined;
    while (checked === undefined) {
      try {
        checked = await this.validation.check(batch);
      } catch (err) {
        let error = toTributaryError(err);
        if (!created && this.mayCreate(error)) {
          created = true;
          const failure = await this.createTable(batch);
          if (failure === undefined) continue;
          error = failure;
        }
        deps.recordError(error);
        if (actionFor(error, { draining: deps.draining() }) === 'pause') return { kind: 'held', rows: batch, error };
        deps.logger.error({ route: deps.route, code: error.code, err: error.message }, 'Table schema unavailable; rows nacked.');
        deps.settler.nack(envelopesOf(batch), deps.route, error.code);
        return { kind: 'settled' };
      }
    }
    const deadLetters = checked.refused.map(({ item, error }) =>
      deps.settler.deadLetter({ envelope: item.envelope, error, route: deps.route, attempts: 1, schemaKey: item.schemaKey }),
    );
    const options = { draining: deps.draining(), ...(maxAttempts ? { maxAttempts } : {}) };
    let result: BatchResult = checked.rows.length > 0 ? await this.executor.execute(checked.rows, options) : { kind: 'settled' };
    if (result.kind === 'held' && !created && this.mayCreate(result.error)) {
      // The table went missing between the schema read and the write.
      const failure = await this.createTable(result.rows);
      result = failure === undefined ? await this.executor.execute(result.rows, options) : { ...result, error: failure };
    }
    await Promise.all(deadLetters);
    if (result.kind === 'held') deps.recordError(result.error);
    return result;
  }

  private mayCreate(error: TributaryError): boolean {
    return error.code === 'TABLE_NOT_FOUND' && this.changes.creates && !this.deps.draining();
  }

  /** Creates the missing table from the rows in hand; the error that keeps the route paused, if any. */
  private async createTable(rows: readonly PendingRow[]): Promise<TributaryError | undefined> {
    const { deps } = this;
    try {
      await this.changes.createFor(rows);
      deps.validators.invalidate(deps.table);
      return undefined;
    } catch (err) {
      const error = toTributaryError(err);
      deps.logger.error({ route: deps.route, table: deps.tableName, code: error.code, err: error.message }, 'Cannot create the missing table.');
      return error;
    }
  }
}
