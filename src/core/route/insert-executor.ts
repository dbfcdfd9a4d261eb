import { TributaryError, toTributaryError, type ErrorCode } from '../../errors.js';
import { actionFor, isThrottle } from '../failure-policy.js';
import type { PipelineObserver } from '../observer.js';
import type { Clock, Logger, Random } from '../ports.js';
import { backoffDelay, retry, type RetryPolicy } from '../retry.js';
import { PROPAGATION_WAIT_BOUND_MS, propagationDelay } from '../schema-propagation.js';
import type { ReadTableSchema } from '../table-validators.js';
import type { Settler } from '../settler.js';
import type { PreparedRow, Sink, WriteOutcome } from '../sink.js';
import type { TableRef } from '../table-schema.js';
import type { ConcurrencyController } from './concurrency-controller.js';
import { envelopesOf, type PendingRow } from './pending-row.js';
import { judgeSuspects, PROPAGATION_BACKOFF, type JudgeSuspectsDeps, type Suspect, type Waiting } from './propagation-wait.js';

export interface InsertExecutorDeps {
  route: string;
  table: TableRef;
  tableName: string;
  sink: Sink;
  settler: Settler;
  observer: PipelineObserver;
  clock: Clock;
  random: Random;
  logger: Logger;
  concurrency: ConcurrencyController;
  retry: RetryPolicy;
  /** Aborted when the drain deadline passes: retries stop waiting. */
  signal: AbortSignal;
  /** The destination said its schema may have changed: the cached one must be read again. */
  staleSchema(): void;
  /** The table's schema read afresh (a change made a moment ago is in it). */
  freshSchema(): Promise<ReadTableSchema>;
  /** The table was created so recently that an insert's `notFound` means "not visible yet". */
  tableJustCreated(): boolean;
  /** Rows wait for a table change to reach streaming inserts; the returned function ends the wait. */
  holdForPropagation(rows: number): () => void;
  /** A write succeeded. */
  wrote(): void;
}

/** What is left of a batch once the executor is done with it; everything else is settled. */
export type BatchResult = { kind: 'settled' } | { kind: 'held'; rows: PendingRow[]; error: TributaryError };

export interface ExecuteOptions {
  /** Attempts with backoff before the rows are nacked (a probe makes one). */
  maxAttempts?: number;
  /** The route is draining: a destination error nacks instead of holding. */
  draining: boolean;
}

/**
 * Sends one batch until every row is settled: written rows are acked, rows the destination refuses
 * are dead-lettered, the rest are retried through the one retry helper and nacked when the budget is
 * spent. A destination error hands the rows back to the route (held); a request too large is split.
 */
export class InsertExecutor {
  private readonly judge: JudgeSuspectsDeps;

  constructor(private readonly deps: InsertExecutorDeps) {
    this.judge = { route: deps.route, logger: deps.logger, freshSchema: () => deps.freshSchema(), deadLetter: (item, error) => this.deadLetter(item, error) };
  }

  /**
   * Sends the batch. Rows the destination refuses only because a change of the table has not
   * reached streaming inserts yet (a column the freshly read schema has, a table just created) wait
   * with their own backoff, bounded by PROPAGATION_WAIT_BOUND_MS, and are sent again: each send has
   * the whole retry budget, which the wait does not use. Past the bound they are nacked.
   */
  async execute(batch: PendingRow[], options: ExecuteOptions): Promise<BatchResult> {
    const { deps } = this;
    let rows = batch;
    let held: BatchResult | undefined;
    let since: number | undefined;
    let release: (() => void) | undefined;
    let reason = '';
    try {
      await retry(
        async () => {
          const waiting: Waiting = { rows: [], reason: '' };
          const result = await this.attempt(rows, options, waiting);
          if (result.kind === 'held') held = held?.kind === 'held' ? { ...result, rows: [...held.rows, ...result.rows] } : result;
          rows = waiting.rows;
          reason = waiting.reason;
          if (rows.length === 0) return;
          since ??= deps.clock.now();
          release ??= deps.holdForPropagation(rows.length);
          // While draining there is no time to wait: the rows come back from Pub/Sub later.
          if (options.draining || deps.clock.now() - since >= PROPAGATION_WAIT_BOUND_MS) return;
          throw new TributaryError('SCHEMA_PROPAGATING', reason);
        },
        {
          policy: { ...PROPAGATION_BACKOFF, maxAttempts: Number.MAX_SAFE_INTEGER },
          clock: deps.clock,
          random: deps.random,
          signal: deps.signal,
          onRetry: (error) => deps.observer.retried(deps.route, error.code),
          delayMs: (_error, attempt) =>
            propagationDelay(PROPAGATION_BACKOFF, attempt, deps.clock.now() - (since ?? deps.clock.now()), PROPAGATION_WAIT_BOUND_MS, deps.random) ?? 0,
        },
      );
    } catch {
      // Only an abort ends the wait early: the drain deadline passed.
      reason = 'the drain deadline passed';
    }
    release?.();
    if (rows.length > 0) {
      const code = deps.signal.aborted ? 'SHUTTING_DOWN' : 'SCHEMA_PROPAGATING';
      if (code === 'SCHEMA_PROPAGATING' && !options.draining) {
        deps.logger.warn(
          { route: deps.route, table: deps.tableName, rows: rows.length, waitedMs: deps.clock.now() - (since ?? 0), err: reason },
          'A table change is still not visible to streaming inserts; rows nacked for redelivery.',
        );
      }
      deps.settler.nack(envelopesOf(rows), deps.route, code);
    }
    return held ?? { kind: 'settled' };
  }

  /** One pass of the batch through the retry budget; rows waiting for a table change are put in `waiting`. */
  private async attempt(batch: PendingRow[], options: ExecuteOptions, waiting: Waiting): Promise<BatchResult> {
    const { deps } = this;
    const deadLetters: Array<Promise<void>> = [];
    const suspects: Suspect[] = [];
    let rows = batch;
    let startedAt = 0;
    if (deps.signal.aborted) {
      deps.settler.nack(envelopesOf(rows), deps.route, 'SHUTTING_DOWN');
      return { kind: 'settled' };
    }
    let result: BatchResult = { kind: 'settled' };
    try {
      await retry(
        async () => {
          startedAt = await this.startRequest();
          const left = await this.send(rows, startedAt, deadLetters, suspects);
          rows = left.rows;
          // Rows not yet written are retried: the code says why, for metrics and the final nack.
          if (rows.length > 0) throw new TributaryError(left.code, `${rows.length} rows not written yet`);
        },
        {
          policy: { ...deps.retry, maxAttempts: options.maxAttempts ?? deps.retry.maxAttempts },
          clock: deps.clock,
          random: deps.random,
          signal: deps.signal,
          onRetry: (error) => {
            deps.observer.retried(deps.route, error.code);
            if (isThrottle(error.code)) deps.concurrency.throttled(startedAt);
          },
          // Once requests are paced, the pace is the backoff: waiting longer on top would leave the
          // quota unused, and the retry takes its turn like any other request.
          delayMs: (error, attempt) => (isThrottle(error.code) && deps.concurrency.pacingMs > 0 ? 0 : backoffDelay(deps.retry, attempt, deps.random)),
        },
      );
    } catch (err) {
      const error = deps.signal.aborted ? new TributaryError('SHUTTING_DOWN', 'the drain deadline passed') : toTributaryError(err);
      if (error.code === 'TABLE_NOT_FOUND' && deps.tableJustCreated()) {
        // BigQuery answers inserts `notFound` for a while after the table was created.
        waiting.rows.push(...rows);
        waiting.reason = `the table was just created and streaming inserts do not see it yet: ${error.message}`;
      } else {
        result = await this.failed(rows, error, options, deadLetters, waiting);
      }
    }
    await judgeSuspects(suspects, waiting, deadLetters, this.judge);
    await Promise.all(deadLetters);
    return result;
  }

  private async failed(
    rows: PendingRow[],
    error: TributaryError,
    options: ExecuteOptions,
    deadLetters: Array<Promise<void>>,
    waiting: Waiting,
  ): Promise<BatchResult> {
    const { deps } = this;
    switch (actionFor(error, { draining: options.draining })) {
      case 'pause':
        return { kind: 'held', rows, error };
      case 'split':
        return this.split(rows, error, options, deadLetters, waiting);
      case 'dead-letter':
        for (const item of rows) deadLetters.push(this.deadLetter(item, error));
        return { kind: 'settled' };
      case 'retry':
        deps.logger.warn({ route: deps.route, code: error.code, rows: rows.length, err: error.message }, 'Retries exhausted; rows nacked for redelivery.');
        deps.settler.nack(envelopesOf(rows), deps.route, error.code);
        return { kind: 'settled' };
      case 'nack':
        deps.settler.nack(envelopesOf(rows), deps.route, error.code);
        return { kind: 'settled' };
    }
  }

  /** Sends the halves one after the other; a single row too large for any request is dead-lettered. */
  private async split(
    rows: PendingRow[],
    error: TributaryError,
    options: ExecuteOptions,
    deadLetters: Array<Promise<void>>,
    waiting: Waiting,
  ): Promise<BatchResult> {
    if (rows.length === 1) {
      deadLetters.push(
        this.deadLetter(rows[0] as PendingRow, new TributaryError('ROW_TOO_LARGE', `the destination refused a request of this row alone: ${error.message}`)),
      );
      return { kind: 'settled' };
    }
    this.deps.logger.warn(
      { route: this.deps.route, rows: rows.length, err: error.message },
      'Request too large for the destination; sending the batch in halves.',
    );
    const middle = Math.ceil(rows.length / 2);
    const first = await this.attempt(rows.slice(0, middle), options, waiting);
    if (first.kind === 'held') return { kind: 'held', rows: [...first.rows, ...rows.slice(middle)], error: first.error };
    return this.attempt(rows.slice(middle), options, waiting);
  }

  /** Waits for this request's turn when requests are paced; returns when it started. */
  private async startRequest(): Promise<number> {
    const wait = this.deps.concurrency.reserveStart();
    if (wait > 0) await this.deps.clock.sleep(wait, this.deps.signal);
    return this.deps.clock.now();
  }

  /**
   * One request, then what its answer says of each row. Returns the rows still to send; rows that
   * were refused only because a neighbour was are sent again at once, without counting an attempt.
   */
  private async send(
    batch: PendingRow[],
    startedAt: number,
    deadLetters: Array<Promise<void>>,
    suspects: Suspect[],
  ): Promise<{ rows: PendingRow[]; code: ErrorCode }> {
    const { deps } = this;
    let rows = batch;
    for (;;) {
      let outcome: WriteOutcome;
      try {
        outcome = await deps.sink.write(deps.table, preparedOf(rows));
      } catch (err) {
        const error = toTributaryError(err);
        deps.observer.insertRequest(deps.route, (deps.clock.now() - startedAt) / 1000, error.code);
        if (actionFor(error) === 'retry')
          deps.logger.warn({ route: deps.route, code: error.code, rows: rows.length, err: error.message }, 'Insert failed; will retry.');
        throw error;
      }
      const took = deps.clock.now() - startedAt;
      deps.concurrency.observeLatency(took);
      deps.observer.insertRequest(deps.route, took / 1000, outcome.failures.length === 0 ? 'ok' : 'partial');
      const left = this.settleOutcome(rows, outcome, deadLetters, suspects);
      if (!left.resendNow || left.rows.length === 0) return left;
      rows = left.rows;
    }
  }

  private settleOutcome(
    rows: PendingRow[],
    outcome: WriteOutcome,
    deadLetters: Array<Promise<void>>,
    suspects: Suspect[],
  ): { rows: PendingRow[]; code: ErrorCode; resendNow: boolean } {
    const { deps } = this;
    const failureOf = new Map<number, WriteOutcome['failures'][number]>();
    for (const failure of outcome.failures) {
      if (!Number.isInteger(failure.index) || failure.index < 0 || failure.index >= rows.length) {
        // An answer that names no row of the request cannot say which rows were written: none is
        // acked on it, the whole request is tried again.
        throw new TributaryError('BIGQUERY_UNAVAILABLE', `the destination's answer names row ${failure.index} of a request of ${rows.length}`);
      }
      const seen = failureOf.get(failure.index);
      if (seen === undefined || failure.kind === 'rejected') failureOf.set(failure.index, failure);
    }
    const written: PendingRow[] = [];
    const again: PendingRow[] = [];
    let rejected = 0;
    let allImmediate = true;
    let code: ErrorCode = 'BIGQUERY_ROW_RETRYABLE';
    for (let i = 0; i < rows.length; i++) {
      const item = rows[i] as PendingRow;
      const failure = failureOf.get(i);
      if (failure === undefined) {
        written.push(item);
      } else if (failure.kind === 'rejected') {
        rejected++;
        const error = new TributaryError(failure.code, failure.reason);
        if (failure.staleSchema) {
          deps.staleSchema();
          suspects.push({ item, error });
        } else {
          deadLetters.push(this.deadLetter(item, error));
        }
      } else {
        again.push(item);
        if (!failure.immediate) {
          allImmediate = false;
          code = failure.code;
        }
      }
    }
    if (written.length > 0) {
      deps.settler.ack(envelopesOf(written), deps.route);
      deps.observer.rowsInserted(deps.route, deps.tableName, written.length, outcome.billedBytes, deps.sink.name);
      deps.concurrency.succeeded();
      deps.wrote();
    }
    // Rows held back only by a refused neighbour go again at once: that neighbour is gone now.
    return { rows: again, code, resendNow: allImmediate && rejected > 0 };
  }

  private deadLetter(item: PendingRow, error: TributaryError): Promise<void> {
    return this.deps.settler.deadLetter({ envelope: item.envelope, error, route: this.deps.route, attempts: 1, schemaKey: item.schemaKey });
  }
}

function preparedOf(rows: readonly PendingRow[]): PreparedRow[] {
  const prepared = new Array<PreparedRow>(rows.length);
  for (let i = 0; i < rows.length; i++) prepared[i] = (rows[i] as PendingRow).prepared;
  return prepared;
}
