import { BigQuery } from '@google-cloud/bigquery';
import { TributaryError } from '../errors.js';
import { backoffDelay, type BackoffPolicy } from '../core/retry.js';
import type { Logger } from '../core/ports.js';
import { diffTableSchema, hasChanges, incompatibilityError, renderSchemaDiff, type SchemaDiff } from '../core/schema-diff.js';
import type { TableChangeObserver, TableChangeResult } from '../core/table-change-observer.js';
import type { TableEvolution, TableEvolver } from '../core/table-evolver.js';
import { tableLayoutProblems, tableLayoutResource, type TableLayout } from '../core/table-layout.js';
import { formatTableRef, type TableField, type TableRef, type TableSchema } from '../core/table-schema.js';
import { classifyBigQueryError } from './bigquery-sink.js';
import { withTimeout } from './with-timeout.js';

export interface TableChangeClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface BigQueryTablesOptions {
  projectId: string;
  apiEndpoint?: string | undefined;
  /** One metadata call is given up after this long. */
  timeoutMs: number;
  observer?: TableChangeObserver | undefined;
  logger?: Pick<Logger, 'info' | 'warn'> | undefined;
  clock?: TableChangeClock | undefined;
  random?: (() => number) | undefined;
  /** Backoff after a 403 rateLimitExceeded. Default 1 s doubling up to 10 s (the limit's window). */
  rateLimitBackoff?: BackoffPolicy | undefined;
  /** Give up on a change that stayed rate-limited this long (BIGQUERY_RATE_LIMITED, transient). Default 2 min. */
  maxRateLimitWaitMs?: number | undefined;
  /** Give up after this many etag conflicts in a row. Default 10. */
  maxConflicts?: number | undefined;
  /** A refused schema is re-checked after this long, so a table a person fixed is noticed. Default 60 s. */
  refusalTtlMs?: number | undefined;
}

/** The table as read with its etag, for a read-modify-write. */
export interface TableSnapshot {
  schema: TableSchema;
  etag: string;
}

interface ApiErrorShape {
  code?: number | string;
  message?: string;
  errors?: Array<{ reason?: string; message?: string }>;
}

type Memo = { ok: true; result: TableEvolution } | { ok: false; error: TributaryError; until: number };

const realClock: TableChangeClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Floor of a rate-limit backoff: full jitter alone may pick 0 and hammer a limit counted over 10 s. */
const MIN_RATE_LIMIT_DELAY_MS = 250;

/**
 * Creates route tables and applies additive schema changes through tables.get / tables.patch with
 * the etag in If-Match. Within one process: at most one change in flight per table, each
 * (table, schema id) settled once, concurrent callers of the same change share its outcome.
 * Between processes the etag makes the read-modify-write safe: a replica that lost the race re-reads,
 * finds nothing left to do, and makes no call.
 */
export class BigQueryTables implements TableEvolver {
  private readonly client: BigQuery;
  private readonly clock: TableChangeClock;
  private readonly random: () => number;
  private readonly backoff: BackoffPolicy;
  private readonly maxRateLimitWaitMs: number;
  private readonly maxConflicts: number;
  private readonly refusalTtlMs: number;
  private readonly memo = new Map<string, Memo>();
  private readonly inFlight = new Map<string, Promise<TableEvolution>>();
  /** When this process saw each table created (by itself or, on 409, by another replica). */
  private readonly created = new Map<string, number>();
  /** Tail of the queue of changes per table. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly options: BigQueryTablesOptions) {
    this.client = new BigQuery({
      projectId: options.projectId,
      ...(options.apiEndpoint ? { apiEndpoint: options.apiEndpoint } : {}),
      retryOptions: { autoRetry: false, maxRetries: 0 },
    } as ConstructorParameters<typeof BigQuery>[0]);
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
    this.backoff = options.rateLimitBackoff ?? { initialDelayMs: 1000, maxDelayMs: 10_000 };
    this.maxRateLimitWaitMs = options.maxRateLimitWaitMs ?? 120_000;
    this.maxConflicts = options.maxConflicts ?? 10;
    this.refusalTtlMs = options.refusalTtlMs ?? 60_000;
  }

  /** The table's schema and etag, or null when the table does not exist. */
  async read(table: TableRef): Promise<TableSnapshot | null> {
    try {
      const [metadata] = (await this.call(this.tableOf(table).getMetadata(), table)) as unknown as [{ schema?: TableSchema; etag?: string }];
      return { schema: { fields: metadata.schema?.fields ?? [] }, etag: metadata.etag ?? '' };
    } catch (err) {
      if (err instanceof TributaryError) throw err;
      if (statusOf(err) === 404) return null;
      throw classifyBigQueryError(err, table);
    }
  }

  /**
   * Creates the table with these columns and layout. `exists` when it was there already, another
   * replica's creation included (409 duplicate is success). A layout BigQuery would refuse is a
   * destination error naming the setting: the route pauses, nothing is dead-lettered.
   */
  createTable(table: TableRef, fields: readonly TableField[], layout: TableLayout = {}): Promise<'created' | 'exists'> {
    return this.exclusive(formatTableRef(table), () => this.create(table, fields, layout));
  }

  /**
   * When this process created the table, or learnt from a 409 that another replica just had. Streaming
   * inserts may answer `notFound` for a while after creation: within that window it is a wait.
   */
  createdAt(table: TableRef): number | undefined {
    return this.created.get(formatTableRef(table));
  }

  /**
   * Brings the table up to the columns `desired` (a route's rows for schema `schemaId`): adds what
   * it lacks, relaxes REQUIRED columns the rows may leave empty. Throws SCHEMA_INCOMPATIBLE (data)
   * without touching the table when a column would have to change type; TABLE_NOT_FOUND when the
   * table is missing; BIGQUERY_RATE_LIMITED when the update limit held it longer than the bound.
   */
  evolve(table: TableRef, schemaId: string, desired: readonly TableField[]): Promise<TableEvolution> {
    const name = formatTableRef(table);
    const key = `${name}|${schemaId}`;
    const memo = this.memo.get(key);
    if (memo?.ok) return Promise.resolve(memo.result);
    if (memo && this.clock.now() < memo.until) return Promise.reject(memo.error);
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const promise = this.exclusive(name, () => this.apply(table, desired)).then(
      (result) => {
        this.memo.set(key, { ok: true, result });
        return result;
      },
      (err: unknown) => {
        if (err instanceof TributaryError && err.code === 'SCHEMA_INCOMPATIBLE') {
          this.memo.set(key, { ok: false, error: err, until: this.clock.now() + this.refusalTtlMs });
        }
        throw err;
      },
    );
    const tracked = promise.finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, tracked);
    return tracked;
  }

  private tableOf(table: TableRef) {
    return this.client.dataset(table.datasetId, { projectId: table.projectId }).table(table.tableId);
  }

  private call<T>(promise: Promise<T>, table: TableRef): Promise<T> {
    return withTimeout(
      promise,
      this.options.timeoutMs,
      () => new TributaryError('BIGQUERY_UNAVAILABLE', `${formatTableRef(table)}: no answer within ${this.options.timeoutMs} ms`),
    );
  }

  private exclusive<T>(name: string, task: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(name) ?? Promise.resolve();
    const run = previous.then(task, task);
    const tail = run.catch(() => undefined);
    this.queues.set(name, tail);
    void tail.then(() => {
      if (this.queues.get(name) === tail) this.queues.delete(name);
    });
    return run;
  }

  private async create(table: TableRef, fields: readonly TableField[], layout: TableLayout): Promise<'created' | 'exists'> {
    const name = formatTableRef(table);
    const problems = tableLayoutProblems(fields, layout);
    if (problems.length > 0) {
      this.options.observer?.tableChanged(name, 'created', 'error');
      throw new TributaryError('TABLE_NOT_FOUND', `${name} is missing and cannot be created: ${problems.join('; ')}`);
    }
    const dataset = this.client.dataset(table.datasetId, { projectId: table.projectId });
    try {
      await this.call(dataset.createTable(table.tableId, { schema: { fields: structuredClone([...fields]) }, ...tableLayoutResource(layout) }), table);
    } catch (err) {
      if (err instanceof TributaryError) {
        this.options.observer?.tableChanged(name, 'created', 'error');
        throw err;
      }
      if (statusOf(err) === 409) {
        this.created.set(name, this.clock.now());
        this.options.observer?.tableChanged(name, 'created', 'conflict');
        return 'exists';
      }
      this.options.observer?.tableChanged(name, 'created', 'error');
      if (statusOf(err) === 404) throw new TributaryError('TABLE_NOT_FOUND', `${name} cannot be created: ${messageOf(err)}`, { cause: err });
      throw classifyBigQueryError(err, table);
    }
    this.created.set(name, this.clock.now());
    this.options.observer?.tableChanged(name, 'created', 'ok');
    this.options.logger?.info({ table: name, columns: fields.length, layout }, 'Table created.');
    return 'created';
  }

  private report(name: string, diff: SchemaDiff, result: TableChangeResult): void {
    if (diff.additions.length > 0) this.options.observer?.tableChanged(name, 'added-columns', result);
    if (diff.relaxations.length > 0) this.options.observer?.tableChanged(name, 'relaxed', result);
  }

  private async apply(table: TableRef, desired: readonly TableField[]): Promise<TableEvolution> {
    const name = formatTableRef(table);
    const started = this.clock.now();
    let conflicts = 0;
    let rateLimited = 0;
    for (;;) {
      const current = await this.read(table);
      if (current === null) throw new TributaryError('TABLE_NOT_FOUND', `Not found: Table ${name}`);
      const diff = diffTableSchema(desired, current.schema);
      if (diff.incompatibilities.length > 0) {
        this.options.observer?.tableChanged(name, 'refused', 'ok');
        this.options.logger?.warn({ table: name, diff: renderSchemaDiff(diff) }, 'Schema change refused: incompatible with the table.');
        throw incompatibilityError(table, diff);
      }
      if (!hasChanges(diff)) return { changed: false, diff, schema: current.schema };
      try {
        await this.call(this.tableOf(table).setMetadata({ schema: diff.patched, etag: current.etag }), table);
      } catch (err) {
        if (err instanceof TributaryError) {
          this.report(name, diff, 'error');
          throw err;
        }
        const status = statusOf(err);
        const reason = reasonOf(err);
        if (status === 412) {
          // Another replica (or a person) changed the table since it was read: re-read and recompute.
          this.report(name, diff, 'conflict');
          conflicts++;
          if (conflicts > this.maxConflicts) {
            throw new TributaryError(
              'BIGQUERY_UNAVAILABLE',
              `${name}: the table kept changing while a schema change was applied (${conflicts} etag conflicts)`,
            );
          }
          continue;
        }
        if (reason === 'rateLimitExceeded') {
          this.report(name, diff, 'rate-limited');
          rateLimited++;
          const delay = Math.max(MIN_RATE_LIMIT_DELAY_MS, backoffDelay(this.backoff, rateLimited, this.random));
          if (this.clock.now() - started + delay > this.maxRateLimitWaitMs) {
            throw new TributaryError(
              'BIGQUERY_RATE_LIMITED',
              `${name}: table updates stayed rate-limited for ${this.clock.now() - started} ms: ${messageOf(err)}`,
              { cause: err },
            );
          }
          await this.clock.sleep(delay);
          continue;
        }
        this.report(name, diff, 'error');
        if (status === 400 && reason === 'invalid') {
          throw new TributaryError('SCHEMA_INCOMPATIBLE', `${name}: BigQuery refused the schema change: ${messageOf(err)}`, { cause: err });
        }
        throw classifyBigQueryError(err, table);
      }
      this.report(name, diff, 'ok');
      this.options.logger?.info({ table: name, diff: renderSchemaDiff(diff), conflicts, rateLimited }, 'Table schema changed.');
      return { changed: true, diff, schema: diff.patched };
    }
  }
}

function statusOf(err: unknown): number | undefined {
  const code = (err as ApiErrorShape).code;
  return typeof code === 'number' ? code : undefined;
}

function reasonOf(err: unknown): string {
  return (err as ApiErrorShape).errors?.[0]?.reason ?? '';
}

function messageOf(err: unknown): string {
  return (err as ApiErrorShape).message ?? String(err);
}
