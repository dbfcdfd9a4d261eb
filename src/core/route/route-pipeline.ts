import { type TributaryError, toTributaryError, type ErrorCode } from '../../errors.js';
import { actionFor } from '../failure-policy.js';
import type { RouteStateName } from '../observer.js';
import type { PreparedRow } from '../sink.js';
import { formatTableRef, type Row } from '../table-schema.js';
import { BatchSender } from './batch-sender.js';
import { Batcher, type BatchLimits } from './batcher.js';
import { ConcurrencyController } from './concurrency-controller.js';
import type { BatchResult } from './insert-executor.js';
import { envelopesOf, type PendingRow } from './pending-row.js';
import type { WindowMember } from './window-share.js';
import { RouteHealth, type ProbeResult } from './route-health.js';
import type { RouteDeps, RoutePipelineOptions } from './route-options.js';
import { STALL_AFTER_MS, type RouteStatus } from './route-status.js';

/** A route whose requests take longer than this is slow: it keeps to its share of the window. */
const SLOW_REQUEST_MS = 1000;

/**
 * One route, composed of parts that each do one thing: the batcher cuts batches, the batch sender
 * validates a batch and sends it through the insert executor until every row is settled, the
 * concurrency controller sizes how many go at once, and the route health
 * pauses, probes and resumes. Separate batches, limits and state per route: a slow or broken
 * table never stalls another route's batches.
 */
export class RoutePipeline implements WindowMember {
  private readonly batcher: Batcher<PendingRow>;
  private readonly ready: PendingRow[][] = [];
  private inFlight = 0;
  private inFlightRows = 0;
  /** When each batch in flight was sent: a request still open after SLOW_REQUEST_MS makes the route slow. */
  private readonly sentAt = new Map<PendingRow[], number>();
  private readonly concurrency: ConcurrencyController;
  private readonly health: RouteHealth;
  private readonly sender: BatchSender;
  private lastProgressAt: number;
  private lastSuccessAt: number | undefined;
  private lastError: { code: ErrorCode; message: string; at: number } | undefined;
  private idleWaiters: Array<() => void> = [];
  private readonly stop = new AbortController();
  private readonly tableName: string;

  constructor(
    readonly options: RoutePipelineOptions,
    private readonly deps: RouteDeps,
  ) {
    const { clock } = deps;
    const random = deps.random ?? Math.random;
    this.tableName = formatTableRef(options.table);
    this.lastProgressAt = clock.now();
    const limits: BatchLimits = {
      maxRows: Math.min(options.batch.maxRows, deps.sink.limits.maxRequestRows, options.maxUnsettledRows),
      maxBytes: Math.min(options.batch.maxBytes, deps.sink.limits.maxRequestBytes),
      maxDelayMs: options.batch.maxDelayMs,
    };
    this.batcher = new Batcher<PendingRow>(
      limits,
      clock,
      (item) => item.prepared.bytes,
      (batch, bytes) => {
        this.ready.push(batch);
        deps.observer.batchFlushed(options.name, batch.length, bytes);
        this.pump();
      },
    );
    this.concurrency = new ConcurrencyController(options.maxInFlightBatches, clock);
    this.health = new RouteHealth({ initialProbeDelayMs: options.retry.initialDelayMs, probeIntervalMs: options.probeIntervalMs }, clock, {
      probe: () => this.probe(),
      changed: (state, error) => this.stateChanged(state, error),
    });
    this.sender = new BatchSender({
      ...deps,
      route: options.name,
      table: options.table,
      tableName: this.tableName,
      unknownFields: options.unknownFields,
      random,
      retry: options.retry,
      signal: this.stop.signal,
      concurrency: this.concurrency,
      schemaEvolution: options.schemaEvolution ?? 'off',
      createTable: options.createTable,
      progress: () => {
        this.lastProgressAt = clock.now();
      },
      draining: () => this.draining,
      recordError: (error) => this.recordError(error),
      wrote: () => {
        this.lastSuccessAt = clock.now();
        this.lastProgressAt = this.lastSuccessAt;
        this.health.recovered();
      },
    });
    deps.observer.routeState(options.name, 'running', undefined);
    options.window?.join(this);
  }

  get name(): string {
    return this.options.name;
  }

  /** Makes a row ready for this route's sink: its encoding and size. Throws ROW_TOO_LARGE. */
  prepare(id: string, row: Row): PreparedRow {
    return this.deps.sink.prepare(id, row);
  }

  submit(item: PendingRow): void {
    const state = this.health.state;
    if (state === 'stopped') {
      this.deps.settler.nack([item.envelope], this.name, 'SHUTTING_DOWN');
      return;
    }
    // A route holds at most its share of the window, in every state: the rest goes back to Pub/Sub
    // to come back later, so a paused or slow route cannot fill a window other routes share.
    const unsettled = this.unsettledRows;
    if (unsettled >= this.options.maxUnsettledRows && unsettled >= (this.options.window?.limitFor(this) ?? 0)) {
      this.deps.settler.nack([item.envelope], this.name, this.health.pauseCode ?? 'ROUTE_FULL', this.redeliveryDelayMs());
      return;
    }
    this.batcher.add(item);
    if (state === 'draining') this.batcher.cut();
  }

  /** Sends the batch being filled now instead of when it is full or old enough. */
  flush(): void {
    if (this.health.sending) this.batcher.cut();
  }

  status(): RouteStatus {
    const pauseError = this.health.error;
    const pendingChange = this.sender.pendingChange();
    const status: RouteStatus = {
      route: this.name,
      table: this.tableName,
      state: this.health.state,
      since: this.health.stateSince,
      pendingRows: this.batcher.size,
      queuedBatches: this.ready.length,
      inFlightBatches: this.inFlight,
      concurrencyLimit: this.concurrency.limit,
      pacingMs: Math.round(this.concurrency.pacingMs * 100) / 100,
      // Rows held for a table change wait on purpose, within a bound: that is not a stall.
      stalled: this.unsettledRows > 0 && pendingChange === undefined && this.deps.clock.now() - this.lastProgressAt > STALL_AFTER_MS,
    };
    if (pendingChange) status.pendingChange = pendingChange;
    if (pauseError) status.reason = { code: pauseError.code, message: pauseError.message };
    if (this.lastSuccessAt !== undefined) status.lastSuccessAt = this.lastSuccessAt;
    if (this.lastError) status.lastError = this.lastError;
    return status;
  }

  /** Rows accepted but not yet settled. */
  get unsettledRows(): number {
    return this.heldRows() + this.inFlightRows;
  }

  /** The route's guaranteed share of the window (WindowMember). */
  get share(): number {
    return this.options.maxUnsettledRows;
  }

  /** Only a route that is running, quick and not throttled borrows window beyond its share. */
  get mayBorrow(): boolean {
    const latency = this.concurrency.latencyMs;
    // Before its first answer a route's speed is unknown: it keeps to its share until then.
    if (this.health.state !== 'running' || this.concurrency.pacingMs > 0 || latency === 0 || latency >= SLOW_REQUEST_MS) return false;
    const now = this.deps.clock.now();
    for (const at of this.sentAt.values()) if (now - at >= SLOW_REQUEST_MS) return false;
    return true;
  }

  /**
   * When a message handed back at the route's share should come again: a paused route's at its next
   * probe, a busy route's once it has about worked off what it holds (the requests it needs for
   * them, at its pace or its request time), so redeliveries do not spin while it is full.
   */
  private redeliveryDelayMs(): number {
    if (this.health.state === 'paused') return Math.max(1000, this.health.nextProbeDelay());
    const requests = Math.ceil(this.unsettledRows / Math.max(1, this.options.batch.maxRows));
    const perRequest = Math.max(this.concurrency.pacingMs, this.concurrency.latencyMs / Math.max(1, this.concurrency.limit));
    return Math.min(30_000, Math.max(1000, requests * perRequest));
  }

  /**
   * Flushes everything now and resolves once every row of this route is settled. A paused route
   * gives its rows back to Pub/Sub. After `abort`, retries stop waiting and what is left is nacked.
   */
  async drain(): Promise<void> {
    if (this.health.state === 'paused') this.releaseHeld(this.health.pauseCode ?? 'SHUTTING_DOWN');
    this.health.draining();
    this.batcher.cut();
    this.pump();
    await this.whenIdle();
    this.health.stopped();
  }

  /** Ends waiting in retries at once (the drain deadline passed). */
  abort(): void {
    this.stop.abort();
    this.health.stopped();
    this.releaseHeld('SHUTTING_DOWN');
  }

  private get draining(): boolean {
    return this.health.state === 'draining' || this.health.state === 'stopped';
  }

  private heldRows(): number {
    let rows = this.batcher.size;
    for (const batch of this.ready) rows += batch.length;
    return rows;
  }

  private pump(): void {
    while (this.health.sending && this.inFlight < this.concurrency.limit && this.ready.length > 0) {
      const batch = this.ready.shift() as PendingRow[];
      this.inFlight++;
      this.inFlightRows += batch.length;
      this.sentAt.set(batch, this.deps.clock.now());
      void this.sender.send(batch).then(
        (result) => this.batchDone(batch, result),
        (err: unknown) => {
          // send() settles its rows on every path; reaching here is a bug.
          this.deps.logger.error({ route: this.name, err: String(err) }, 'Batch failed unexpectedly.');
          this.batchDone(batch, { kind: 'settled' });
        },
      );
    }
    this.wakeIfIdle();
  }

  private batchDone(batch: PendingRow[], result: BatchResult): void {
    this.inFlight--;
    this.inFlightRows -= batch.length;
    this.sentAt.delete(batch);
    if (result.kind === 'held') this.hold(result.rows, result.error);
    this.pump();
  }

  /** Rows a destination error stopped wait in front of the queue while the route is paused. */
  private hold(rows: PendingRow[], error: TributaryError): void {
    if (this.draining || actionFor(error, { draining: this.draining }) !== 'pause') {
      this.deps.settler.nack(envelopesOf(rows), this.name, error.code);
      return;
    }
    this.ready.unshift(rows);
    if (this.health.state !== 'paused') {
      this.deps.logger.error(
        { route: this.name, table: this.tableName, code: error.code, err: error.message },
        'Route paused: the destination is unusable; probing until it recovers.',
      );
    }
    this.health.pause(error);
  }

  /**
   * One request per probe period: a real write of the first held batch, so a destination that can
   * be read but not written stays paused; with nothing held, a read of the table's schema.
   * What was held goes back to Pub/Sub when the probe fails: redelivery, not a hot loop.
   */
  private async probe(): Promise<ProbeResult> {
    this.deps.validators.invalidate(this.options.table);
    const batch = this.ready.shift();
    let error: TributaryError | undefined;
    if (batch === undefined) {
      try {
        await this.deps.validators.get(this.options.table, this.options.unknownFields);
      } catch (err) {
        error = toTributaryError(err);
      }
    } else {
      this.inFlight++;
      this.inFlightRows += batch.length;
      try {
        const result = await this.sender.send(batch, 1);
        if (result.kind === 'held') {
          error = result.error;
          this.ready.unshift(result.rows);
        }
      } finally {
        this.inFlight--;
        this.inFlightRows -= batch.length;
      }
    }
    if (error === undefined) return { ok: true };
    this.recordError(error);
    if (this.health.state === 'paused') this.releaseHeld(error.code);
    return { ok: false, error };
  }

  private stateChanged(state: RouteStateName, error: TributaryError | undefined): void {
    this.deps.observer.routeState(this.name, state, error?.code);
    if (state === 'running') {
      this.deps.logger.info({ route: this.name, table: this.tableName }, 'Route resumed: the destination answers again.');
      this.batcher.cut();
      this.pump();
    }
  }

  private recordError(error: TributaryError): void {
    this.lastError = { code: error.code, message: error.message, at: this.deps.clock.now() };
  }

  private releaseHeld(code: ErrorCode): void {
    const held = this.batcher.takeAll();
    for (const batch of this.ready.splice(0)) for (const item of batch) held.push(item);
    this.deps.settler.nack(envelopesOf(held), this.name, code);
    this.wakeIfIdle();
  }

  private wakeIfIdle(): void {
    if (!this.idle()) return;
    this.lastProgressAt = this.deps.clock.now();
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private idle(): boolean {
    return this.inFlight === 0 && this.ready.length === 0 && this.batcher.size === 0;
  }

  private whenIdle(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
