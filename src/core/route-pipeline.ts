import { TributaryError, toTributaryError, type ErrorCode } from '../errors.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import type { PipelineObserver, RouteStateName } from './observer.js';
import type { Clock, Envelope, InsertRow, Logger, Sink } from './ports.js';
import type { RowValidator } from './row-validator.js';
import type { Settler } from './settler.js';
import { formatTableRef, type Row, type TableField, type TableRef } from './table-schema.js';
import type { TableValidators } from './table-validators.js';

export interface PendingRow {
  envelope: Envelope;
  row: Row;
  /** The row as JSON, as the insert request carries it. */
  text: string;
  /** UTF-8 size of `text`, the unit of the batch byte limit. */
  bytes: number;
  schemaKey: string;
  /**
   * The columns every row of this schema has, as the converter writes them: when the table's
   * validator proves that shape fits, the row is not checked value by value.
   */
  shape?: readonly TableField[] | undefined;
}

export interface RoutePipelineOptions {
  name: string;
  table: TableRef;
  batch: { maxRows: number; maxBytes: number; maxDelayMs: number };
  maxInFlightBatches: number;
  unknownFields: 'dead-letter' | 'drop';
  retry: BackoffPolicy & { maxAttempts: number };
  /** Upper bound of the probe period while paused; probes start faster and back off to it. */
  probeIntervalMs: number;
}

export interface RouteDeps {
  sink: Sink;
  validators: TableValidators;
  settler: Settler;
  observer: PipelineObserver;
  clock: Clock;
  logger: Logger;
  random?: () => number;
}

export interface RouteStatus {
  route: string;
  table: string;
  state: RouteStateName;
  reason?: { code: ErrorCode; message: string };
  since: number;
  lastSuccessAt?: number;
  lastError?: { code: ErrorCode; message: string; at: number };
  pendingRows: number;
  queuedBatches: number;
  inFlightBatches: number;
  /** The in-flight limit in force: lowered when BigQuery throttles, raised back as inserts succeed. */
  concurrencyLimit: number;
  /** Minimum gap between request starts once a single request in flight still gets throttled. */
  pacingMs: number;
  /** Unsettled rows and no insert for STALL_AFTER_MS: the route has work and makes no progress. */
  stalled: boolean;
}

/** BigQuery's streaming inserts bill each row as at least 1 KB. */
const MIN_BILLED_ROW_BYTES = 1024;
/** Stale table schemas are re-read at most this often when a row names a field the cache lacks. */
const SCHEMA_REFRESH_MIN_INTERVAL_MS = 10_000;
/** A route with work and no successful insert for this long is reported as stalled. */
const STALL_AFTER_MS = 120_000;
/** The first pacing gap once a single request in flight is still throttled. */
const MIN_PACING_MS = 20;
/** Pacing never waits longer than this between two request starts. */
const MAX_PACING_MS = 5_000;
/**
 * Additive increase of the paced request rate, in requests per second gained per second of
 * successes: each success adds RATE_STEP / rate, and `rate` successes take about a second. Gentle,
 * so that the rate spends most of its time below the quota rather than probing above it.
 */
const RATE_STEP = 0.5;

/**
 * One route: its own batch, its own in-flight limit, its own retries and its own pause state, so a
 * slow or broken table never stalls another route.
 */
export class RoutePipeline {
  private pending: PendingRow[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly ready: PendingRow[][] = [];
  private inFlight = 0;
  private concurrency: number;
  private pacingMs = 0;
  private nextStartAt = 0;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;
  private lastProgressAt: number;
  private state: RouteStateName = 'running';
  private stateSince: number;
  private pauseError: TributaryError | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private probeFailures = 0;
  private lastSuccessAt: number | undefined;
  private lastError: { code: ErrorCode; message: string; at: number } | undefined;
  private idleWaiters: Array<() => void> = [];
  private readonly stop = new AbortController();
  private readonly tableName: string;
  private readonly holdLimit: number;
  private readonly random: () => number;

  constructor(
    readonly options: RoutePipelineOptions,
    private readonly deps: RouteDeps,
  ) {
    this.tableName = formatTableRef(options.table);
    this.stateSince = deps.clock.now();
    this.holdLimit = options.batch.maxRows * options.maxInFlightBatches;
    this.concurrency = options.maxInFlightBatches;
    this.lastProgressAt = this.stateSince;
    this.random = deps.random ?? Math.random;
    deps.observer.routeState(options.name, 'running', undefined);
  }

  get name(): string {
    return this.options.name;
  }

  submit(item: PendingRow): void {
    if (this.state === 'stopped') {
      this.deps.settler.nack([item.envelope], this.name, 'SHUTTING_DOWN');
      return;
    }
    // A paused route holds a bounded number of rows; the rest go back to Pub/Sub at once so a
    // shared subscription's flow control is not filled by a route that cannot make progress.
    if (this.state === 'paused' && this.heldRows() >= this.holdLimit) {
      this.deps.settler.nack([item.envelope], this.name, this.pauseError?.code ?? 'TABLE_NOT_FOUND');
      return;
    }
    const { maxRows, maxBytes, maxDelayMs } = this.options.batch;
    if (this.pending.length > 0 && this.pendingBytes + item.bytes > maxBytes) this.cut();
    this.pending.push(item);
    this.pendingBytes += item.bytes;
    if (this.pending.length >= maxRows || this.pendingBytes >= maxBytes || this.state === 'draining') {
      this.cut();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.cut();
      }, maxDelayMs);
    }
  }

  /** Sends the batch being filled now instead of when it is full or old enough. */
  flush(): void {
    if (this.pending.length > 0 && (this.state === 'running' || this.state === 'draining')) this.cut();
  }

  status(): RouteStatus {
    const status: RouteStatus = {
      route: this.name,
      table: this.tableName,
      state: this.state,
      since: this.stateSince,
      pendingRows: this.pending.length,
      queuedBatches: this.ready.length,
      inFlightBatches: this.inFlight,
      concurrencyLimit: Math.floor(this.concurrency),
      pacingMs: Math.round(this.pacingMs * 100) / 100,
      stalled: this.unsettledRows > 0 && this.deps.clock.now() - this.lastProgressAt > STALL_AFTER_MS,
    };
    if (this.pauseError) status.reason = { code: this.pauseError.code, message: this.pauseError.message };
    if (this.lastSuccessAt !== undefined) status.lastSuccessAt = this.lastSuccessAt;
    if (this.lastError) status.lastError = this.lastError;
    return status;
  }

  /** Rows accepted but not yet settled. */
  get unsettledRows(): number {
    return this.heldRows() + this.inFlight;
  }

  /**
   * Flushes everything now and resolves once every row of this route is settled. A paused route
   * gives its rows back to Pub/Sub. After `abort`, retries stop waiting and what is left is nacked.
   */
  async drain(): Promise<void> {
    if (this.state === 'paused') this.releaseHeld(this.pauseError?.code ?? 'SHUTTING_DOWN');
    this.clearProbe();
    this.setState('draining', undefined);
    this.cut();
    await this.whenIdle();
    this.setState('stopped', undefined);
  }

  /** Ends waiting in retries at once (the drain deadline passed). */
  abort(): void {
    this.stop.abort();
    this.clearProbe();
    this.releaseHeld('SHUTTING_DOWN');
    this.wakeIfIdle();
  }

  private heldRows(): number {
    let rows = this.pending.length;
    for (const batch of this.ready) rows += batch.length;
    return rows;
  }

  private cut(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length > 0) {
      this.ready.push(this.pending);
      this.deps.observer.batchFlushed(this.name, this.pending.length, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    this.pump();
  }

  private pump(): void {
    while ((this.state === 'running' || this.state === 'draining') && this.inFlight < Math.floor(this.concurrency) && this.ready.length > 0) {
      const batch = this.ready.shift();
      if (batch === undefined) break;
      this.inFlight++;
      void this.run(batch).then(
        () => this.batchDone(),
        (err: unknown) => {
          // run() settles its rows on every path; reaching here is a bug, and the rows were nacked.
          this.deps.logger.error({ route: this.name, err: String(err) }, 'Batch failed unexpectedly.');
          this.batchDone();
        },
      );
    }
    this.wakeIfIdle();
  }

  private batchDone(): void {
    this.inFlight--;
    this.pump();
  }

  private wakeIfIdle(): void {
    if (this.inFlight > 0 || this.ready.length > 0 || this.pending.length > 0) return;
    this.lastProgressAt = this.deps.clock.now();
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private whenIdle(): Promise<void> {
    if (this.inFlight === 0 && this.ready.length === 0 && this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async run(batch: PendingRow[]): Promise<void> {
    const deadLetters: Array<Promise<void>> = [];
    let rows: PendingRow[] | undefined = batch;
    try {
      rows = await this.validate(batch, deadLetters);
      let attempt = 0;
      while (rows.length > 0) {
        attempt++;
        if (this.stop.signal.aborted) {
          this.deps.settler.nack(envelopesOf(rows), this.name, 'SHUTTING_DOWN');
          rows = undefined;
          break;
        }
        const result = await this.attempt(rows, deadLetters);
        if (result.kind === 'done') {
          rows = undefined;
          break;
        }
        if (result.kind === 'paused') {
          // Held in front of the queue: the probe decides whether they are sent or given back.
          this.ready.unshift(rows);
          rows = undefined;
          break;
        }
        rows = result.rows;
        // A resend of rows that were only `stopped` by an invalid neighbour is progress, not a retry.
        if (!result.backoff) {
          attempt--;
          continue;
        }
        this.deps.observer.retried(this.name, result.code);
        if (attempt >= this.options.retry.maxAttempts) {
          this.deps.logger.warn(
            { route: this.name, code: result.code, rows: rows.length, attempts: attempt },
            'Retries exhausted; rows nacked for redelivery.',
          );
          this.deps.settler.nack(envelopesOf(rows), this.name, result.code);
          rows = undefined;
          break;
        }
        // Once requests are paced, the pace is the backoff: waiting longer on top would leave the
        // quota unused, and the retry takes its turn like any other request.
        if (!(result.throttled && this.pacingMs > 0)) await this.deps.clock.sleep(backoffDelay(this.options.retry, attempt, this.random), this.stop.signal);
      }
    } catch (err) {
      if (err instanceof HeldError) {
        this.ready.unshift(batch);
      } else {
        const error = toTributaryError(err);
        this.deps.logger.error({ route: this.name, code: error.code, err: error.message }, 'Batch failed; rows nacked.');
        if (rows) this.deps.settler.nack(envelopesOf(rows), this.name, error.code);
      }
    }
    await Promise.all(deadLetters);
  }

  /** Pre-validation against the table's schema: a row BigQuery would reject never leaves. */
  private async validate(batch: PendingRow[], deadLetters: Array<Promise<void>>): Promise<PendingRow[]> {
    let validator: RowValidator;
    for (let attempt = 1; ; attempt++) {
      try {
        validator = await this.deps.validators.get(this.options.table, this.options.unknownFields);
        break;
      } catch (err) {
        const error = toTributaryError(err);
        this.recordError(error);
        if (error.errorClass === 'destination') {
          this.pause(error);
          throw new HeldError();
        }
        if (attempt >= this.options.retry.maxAttempts || this.stop.signal.aborted) throw error;
        this.deps.observer.retried(this.name, error.code);
        await this.deps.clock.sleep(backoffDelay(this.options.retry, attempt, this.random), this.stop.signal);
      }
    }
    let valid = this.applyValidator(validator, batch, deadLetters, true);
    if (valid.unknownField) {
      // The table may have gained a column since its schema was cached: re-read it once before
      // calling any row's field unknown.
      const fresh = await this.deps.validators.refresh(this.options.table, this.options.unknownFields, SCHEMA_REFRESH_MIN_INTERVAL_MS).catch(() => validator);
      valid = this.applyValidator(fresh, batch, deadLetters, false);
    }
    return valid.rows;
  }

  private applyValidator(
    validator: RowValidator,
    batch: PendingRow[],
    deadLetters: Array<Promise<void>>,
    deferUnknown: boolean,
  ): { rows: PendingRow[]; unknownField: boolean } {
    const rows: PendingRow[] = [];
    const rejected: Array<[PendingRow, TributaryError]> = [];
    let dropped = 0;
    for (const item of batch) {
      if (item.shape !== undefined && validator.proves(item.shape)) {
        rows.push(item);
        continue;
      }
      const result = validator.validate(item.row);
      if (result.ok) {
        if (result.dropped.length > 0) {
          dropped += result.dropped.length;
          // The text is of the row as converted: it must describe the row that is sent.
          rows.push({ ...item, row: result.row, text: JSON.stringify(result.row) });
        } else {
          rows.push(item);
        }
      } else {
        if (deferUnknown && result.code === 'UNKNOWN_FIELD') return { rows: [], unknownField: true };
        rejected.push([item, new TributaryError(result.code, result.message)]);
      }
    }
    for (const [item, error] of rejected) deadLetters.push(this.deadLetter(item, error, 1));
    if (dropped > 0) this.deps.observer.fieldsDropped(this.name, dropped);
    return { rows, unknownField: false };
  }

  private async attempt(
    rows: PendingRow[],
    deadLetters: Array<Promise<void>>,
  ): Promise<{ kind: 'done' } | { kind: 'paused' } | { kind: 'retry'; rows: PendingRow[]; code: ErrorCode; backoff: boolean; throttled?: boolean }> {
    await this.paceSlot();
    const request: InsertRow[] = new Array<InsertRow>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const item = rows[i] as PendingRow;
      request[i] = { insertId: item.envelope.id, json: item.row, text: item.text };
    }
    const started = this.deps.clock.now();
    let failures;
    try {
      failures = (await this.deps.sink.insert(this.options.table, request)).failures;
    } catch (err) {
      const error = toTributaryError(err);
      this.deps.observer.insertRequest(this.name, (this.deps.clock.now() - started) / 1000, error.code);
      this.recordError(error);
      if (error.errorClass === 'destination') {
        this.pause(error);
        return { kind: 'paused' };
      }
      const throttled = error.code === 'BIGQUERY_RATE_LIMITED' || error.code === 'BIGQUERY_QUOTA_EXCEEDED';
      if (throttled) this.throttled(started);
      this.deps.logger.warn({ route: this.name, code: error.code, rows: rows.length, err: error.message }, 'Insert failed; will retry.');
      return { kind: 'retry', rows, code: error.code, backoff: true, throttled };
    }
    this.deps.observer.insertRequest(this.name, (this.deps.clock.now() - started) / 1000, failures.length === 0 ? 'ok' : 'partial');

    const inserted: Envelope[] = [];
    const retry: PendingRow[] = [];
    let backoff = false;
    let billed = 0;
    const byIndex = new Map<number, (typeof failures)[number]>();
    for (const failure of failures) if (!byIndex.has(failure.index) || failure.reason === 'invalid') byIndex.set(failure.index, failure);
    for (let i = 0; i < rows.length; i++) {
      const item = rows[i] as PendingRow;
      const failure = byIndex.get(i);
      if (failure === undefined) {
        inserted.push(item.envelope);
        billed += Math.max(MIN_BILLED_ROW_BYTES, item.bytes);
      } else if (failure.reason === 'invalid') {
        if (/no such field/i.test(failure.message)) this.deps.validators.invalidate(this.options.table);
        const where = failure.location ? `field "${failure.location}": ` : '';
        deadLetters.push(this.deadLetter(item, new TributaryError('BIGQUERY_ROW_INVALID', `BigQuery rejected the row: ${where}${failure.message}`), 1));
      } else {
        retry.push(item);
        if (failure.reason !== 'stopped') backoff = true;
      }
    }
    if (inserted.length > 0) {
      this.deps.settler.ack(inserted, this.name);
      this.deps.observer.rowsInserted(this.name, this.tableName, inserted.length, billed);
      this.lastSuccessAt = this.deps.clock.now();
      this.lastProgressAt = this.lastSuccessAt;
      this.succeeded();
    }
    if (retry.length === 0) return { kind: 'done' };
    return { kind: 'retry', rows: retry, code: 'BIGQUERY_ROW_RETRYABLE', backoff };
  }

  /**
   * Multiplicative decrease when BigQuery throttles: halve the requests in flight; once a single
   * request is still throttled, space request starts apart. Retrying at full speed into a quota is
   * what this avoids. One decrease per round trip: requests sent before the last decrease were
   * sent at the old rate, and their rejections must not cut the rate again.
   */
  private throttled(requestStartedAt: number): void {
    if (requestStartedAt < this.lastDecreaseAt) return;
    this.lastDecreaseAt = this.deps.clock.now();
    if (this.concurrency > 1) {
      this.concurrency = Math.max(1, this.concurrency / 2);
    } else {
      this.pacingMs = Math.min(MAX_PACING_MS, Math.max(MIN_PACING_MS, this.pacingMs * 2));
    }
  }

  /** Waits for this request's turn when requests are paced; every attempt takes one. */
  private async paceSlot(): Promise<void> {
    if (this.pacingMs <= 0) return;
    const now = this.deps.clock.now();
    const at = Math.max(now, this.nextStartAt);
    this.nextStartAt = at + this.pacingMs;
    if (at > now) await this.deps.clock.sleep(at - now, this.stop.signal);
  }

  /** Additive increase: the paced rate first, then one more request in flight per window of successes. */
  private succeeded(): void {
    if (this.pacingMs > 0) {
      const rate = 1000 / this.pacingMs;
      const gap = 1000 / (rate + RATE_STEP / rate);
      this.pacingMs = gap < MIN_PACING_MS ? 0 : gap;
      return;
    }
    const max = this.options.maxInFlightBatches;
    if (this.concurrency < max) this.concurrency = Math.min(max, this.concurrency + 1 / this.concurrency);
  }

  private deadLetter(item: PendingRow, error: TributaryError, attempts: number): Promise<void> {
    return this.deps.settler.deadLetter({ envelope: item.envelope, error, route: this.name, attempts, schemaKey: item.schemaKey });
  }

  private recordError(error: TributaryError): void {
    this.lastError = { code: error.code, message: error.message, at: this.deps.clock.now() };
  }

  private setState(state: RouteStateName, error: TributaryError | undefined): void {
    if (this.state === state && this.pauseError === error) return;
    this.state = state;
    this.pauseError = error;
    this.stateSince = this.deps.clock.now();
    this.deps.observer.routeState(this.name, state, error?.code);
  }

  private pause(error: TributaryError): void {
    if (this.state === 'draining' || this.state === 'stopped') return;
    if (this.state !== 'paused') {
      this.deps.logger.error({ route: this.name, table: this.tableName, code: error.code, err: error.message }, 'Route paused: the destination is unusable; probing until it recovers.');
      this.probeFailures = 0;
    }
    this.setState('paused', error);
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.probeTimer !== undefined) return;
    const delay = Math.min(this.options.probeIntervalMs, Math.max(100, this.options.retry.initialDelayMs) * 2 ** Math.min(this.probeFailures, 30));
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      void this.probe();
    }, delay);
  }

  private clearProbe(): void {
    if (this.probeTimer !== undefined) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
  }

  /** One request per probe period: re-read the table; on success send what was held. */
  private async probe(): Promise<void> {
    if (this.state !== 'paused') return;
    try {
      this.deps.validators.invalidate(this.options.table);
      await this.deps.validators.get(this.options.table, this.options.unknownFields);
    } catch (err) {
      const error = toTributaryError(err);
      this.recordError(error);
      if (this.state !== 'paused') return;
      this.probeFailures++;
      // What was held goes back to Pub/Sub once per probe period: redelivery, not a hot loop.
      this.releaseHeld(error.code);
      this.setState('paused', error.errorClass === 'destination' ? error : this.pauseError);
      this.scheduleProbe();
      return;
    }
    if (this.state !== 'paused') return;
    this.deps.logger.info({ route: this.name, table: this.tableName }, 'Route resumed: the destination answers again.');
    this.setState('running', undefined);
    this.cut();
  }

  private releaseHeld(code: ErrorCode): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const held: Envelope[] = [];
    for (const item of this.pending) held.push(item.envelope);
    for (const batch of this.ready.splice(0)) for (const item of batch) held.push(item.envelope);
    this.pending = [];
    this.pendingBytes = 0;
    this.deps.settler.nack(held, this.name, code);
    this.wakeIfIdle();
  }
}

/** Thrown inside run() when the batch has been put on hold by a pause. */
class HeldError extends Error {}

function envelopesOf(rows: readonly PendingRow[]): Envelope[] {
  return rows.map((r) => r.envelope);
}
