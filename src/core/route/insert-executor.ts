import { TributaryError, toTributaryError, type ErrorCode } from '../../errors.js';
import { actionFor, isThrottle } from '../failure-policy.js';
import type { PipelineObserver } from '../observer.js';
import type { Clock, Logger, Random } from '../ports.js';
import { backoffDelay, retry, type RetryPolicy } from '../retry.js';
import type { Settler } from '../settler.js';
import type { PreparedRow, Sink, WriteOutcome } from '../sink.js';
import type { TableRef } from '../table-schema.js';
import type { ConcurrencyController } from './concurrency-controller.js';
import { envelopesOf, type PendingRow } from './pending-row.js';

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
  constructor(private readonly deps: InsertExecutorDeps) {}

  async execute(batch: PendingRow[], options: ExecuteOptions): Promise<BatchResult> {
    const { deps } = this;
    const deadLetters: Array<Promise<void>> = [];
    let rows = batch;
    let startedAt = 0;
    if (deps.signal.aborted) {
      deps.settler.nack(envelopesOf(rows), deps.route, 'SHUTTING_DOWN');
      return { kind: 'settled' };
    }
    try {
      await retry(
        async () => {
          startedAt = await this.startRequest();
          const left = await this.send(rows, startedAt, deadLetters);
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
      const result = await this.failed(rows, error, options, deadLetters);
      await Promise.all(deadLetters);
      return result;
    }
    await Promise.all(deadLetters);
    return { kind: 'settled' };
  }

  private async failed(rows: PendingRow[], error: TributaryError, options: ExecuteOptions, deadLetters: Array<Promise<void>>): Promise<BatchResult> {
    const { deps } = this;
    switch (actionFor(error, { draining: options.draining })) {
      case 'pause':
        return { kind: 'held', rows, error };
      case 'split':
        return this.split(rows, error, options, deadLetters);
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
  private async split(rows: PendingRow[], error: TributaryError, options: ExecuteOptions, deadLetters: Array<Promise<void>>): Promise<BatchResult> {
    if (rows.length === 1) {
      deadLetters.push(this.deadLetter(rows[0] as PendingRow, new TributaryError('ROW_TOO_LARGE', `the destination refused a request of this row alone: ${error.message}`)));
      return { kind: 'settled' };
    }
    this.deps.logger.warn({ route: this.deps.route, rows: rows.length, err: error.message }, 'Request too large for the destination; sending the batch in halves.');
    const middle = Math.ceil(rows.length / 2);
    const first = await this.execute(rows.slice(0, middle), options);
    if (first.kind === 'held') return { kind: 'held', rows: [...first.rows, ...rows.slice(middle)], error: first.error };
    return this.execute(rows.slice(middle), options);
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
  private async send(batch: PendingRow[], startedAt: number, deadLetters: Array<Promise<void>>): Promise<{ rows: PendingRow[]; code: ErrorCode }> {
    const { deps } = this;
    let rows = batch;
    for (;;) {
      let outcome: WriteOutcome;
      try {
        outcome = await deps.sink.write(deps.table, preparedOf(rows));
      } catch (err) {
        const error = toTributaryError(err);
        deps.observer.insertRequest(deps.route, (deps.clock.now() - startedAt) / 1000, error.code);
        if (actionFor(error) === 'retry') deps.logger.warn({ route: deps.route, code: error.code, rows: rows.length, err: error.message }, 'Insert failed; will retry.');
        throw error;
      }
      const took = deps.clock.now() - startedAt;
      deps.concurrency.observeLatency(took);
      deps.observer.insertRequest(deps.route, took / 1000, outcome.failures.length === 0 ? 'ok' : 'partial');
      const left = this.settleOutcome(rows, outcome, deadLetters);
      if (!left.resendNow || left.rows.length === 0) return left;
      rows = left.rows;
    }
  }

  private settleOutcome(rows: PendingRow[], outcome: WriteOutcome, deadLetters: Array<Promise<void>>): { rows: PendingRow[]; code: ErrorCode; resendNow: boolean } {
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
        if (failure.staleSchema) deps.staleSchema();
        deadLetters.push(this.deadLetter(item, new TributaryError(failure.code, failure.reason)));
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
