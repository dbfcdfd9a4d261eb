import { getHeapStatistics } from 'node:v8';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorCode } from '../errors.js';
import type { PipelineObserver, RouteStateName, SettledMessage, SettleOutcome, TableChangeWaitKind } from '../core/observer.js';
import type { TableChangeKind, TableChangeObserver, TableChangeResult } from '../core/table-change-observer.js';
import type { Framing } from '../core/schema-reference.js';
import { SettleAgeHistogram } from './settle-age-histogram.js';

const ROUTE_STATES: RouteStateName[] = ['running', 'paused', 'draining', 'stopped'];

/** What one subscription holds right now: received and not yet acked or nacked. */
export interface InFlightSnapshot {
  subscription: string;
  messages: number;
  bytes: number;
  /** Publish time of the oldest message held, undefined when none is. */
  oldestPublishTimeMs: number | undefined;
}

/** prom-client metrics on a registry of our own; every label value is bounded. */
export class Metrics implements PipelineObserver, TableChangeObserver {
  readonly registry = new Registry();
  private readonly receivedTotal: Counter<'subscription' | 'framing'>;
  private readonly receivedBytes: Counter<'subscription' | 'framing'>;
  private readonly embeddedSchemaBytesTotal: Counter<'route'>;
  private readonly settledTotal: Counter<'route' | 'outcome' | 'code'>;
  private readonly settleAge: SettleAgeHistogram;
  private readonly rowsInsertedTotal: Counter<'route' | 'table'>;
  private readonly billedBytesTotal: Counter<'route' | 'table' | 'write_api'>;
  private readonly insertDuration: Histogram<'route' | 'outcome'>;
  private readonly batchRows: Histogram<'route'>;
  private readonly batchBytes: Histogram<'route'>;
  private readonly retriesTotal: Counter<'route' | 'code'>;
  private readonly droppedFields: Counter<'route'>;
  private readonly routeStateGauge: Gauge<'route' | 'state' | 'reason'>;
  private readonly tableChangesTotal: Counter<'table' | 'kind' | 'result'>;
  private readonly tableChangeWaitSeconds: Histogram<'route' | 'kind'>;
  readonly schemaCacheHits: Counter;
  readonly schemaCacheMisses: Counter;
  readonly schemaFetchDuration: Histogram<'registry' | 'outcome'>;
  private readonly lastRouteReason = new Map<string, string>();
  private inFlightSources: Array<() => InFlightSnapshot> = [];
  private schemaCacheSize: () => number = () => 0;
  private readonly pendingReceived = new Map<string, Map<Framing | 'none', { count: number; bytes: number }>>();
  private pendingCacheHits = 0;

  constructor(options: { version?: string } = {}) {
    const registers = [this.registry];
    // prom-client's names already start with process_ or nodejs_: the prefix makes tributary_process_*, tributary_nodejs_*.
    collectDefaultMetrics({ register: this.registry, prefix: 'tributary_' });
    // Both counters are brought up to date whenever either is read.
    const flushReceived = (): void => this.flushReceived();
    this.receivedTotal = new Counter({
      name: 'tributary_messages_received_total',
      help: 'Messages received from Pub/Sub, by how they carry their schema (framing: pubsub-schema, confluent, single-object, container-file, or none).',
      labelNames: ['subscription', 'framing'],
      registers,
      collect: flushReceived,
    });
    this.receivedBytes = new Counter({
      name: 'tributary_messages_received_bytes_total',
      help: 'Payload bytes received from Pub/Sub, by framing.',
      labelNames: ['subscription', 'framing'],
      registers,
      collect: flushReceived,
    });
    this.embeddedSchemaBytesTotal = new Counter({
      name: 'tributary_embedded_schema_bytes_total',
      help: 'Bytes messages spent carrying their own schema (Avro container-file headers), per route: what moving the producer to schema ids saves.',
      labelNames: ['route'],
      registers,
    });
    this.settledTotal = new Counter({
      name: 'tributary_messages_settled_total',
      help: 'Messages settled; outcome is acked (after insert), dead-lettered (then acked) or nacked (for redelivery); code is the error code, "none" for acks.',
      labelNames: ['route', 'outcome', 'code'],
      registers,
    });
    this.settleAge = new SettleAgeHistogram(
      'tributary_message_age_at_settle_seconds',
      'Publish time to ack, one observation per message, per route and outcome (acked after insert, or dead-lettered and acked; a nack is not a settle): the backlog SLO. Buckets up to 7 days.',
      [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400, 259200, 604800],
    );
    this.registry.registerMetric(this.settleAge.asMetric());
    this.rowsInsertedTotal = new Counter({
      name: 'tributary_rows_inserted_total',
      help: 'Rows the destination accepted.',
      labelNames: ['route', 'table'],
      registers,
    });
    this.billedBytesTotal = new Counter({
      name: 'tributary_insert_billed_bytes_total',
      help: 'Bytes the destination bills for the rows written, per write API: insert-all bills each row as at least 1 KB of JSON, storage-write the encoded bytes.',
      labelNames: ['route', 'table', 'write_api'],
      registers,
    });
    this.insertDuration = new Histogram({
      name: 'tributary_insert_request_duration_seconds',
      help: 'Insert request duration; outcome is ok, partial (some rows rejected or to retry) or the error code.',
      labelNames: ['route', 'outcome'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.batchRows = new Histogram({
      name: 'tributary_batch_rows',
      help: 'Rows per batch.',
      labelNames: ['route'],
      buckets: [1, 10, 50, 100, 250, 500, 1000, 5000, 10000, 50000],
      registers,
    });
    this.batchBytes = new Histogram({
      name: 'tributary_batch_bytes',
      help: 'Bytes per batch, as the sink measures them.',
      labelNames: ['route'],
      buckets: [1e3, 1e4, 1e5, 5e5, 1e6, 2.5e6, 5e6, 1e7],
      registers,
    });
    this.retriesTotal = new Counter({
      name: 'tributary_retries_total',
      help: 'Retries (inserts, registry fetches) by error code.',
      labelNames: ['route', 'code'],
      registers,
    });
    this.droppedFields = new Counter({
      name: 'tributary_unknown_fields_dropped_total',
      help: 'Fields dropped because the table lacks them (unknownFields: drop).',
      labelNames: ['route'],
      registers,
    });
    this.tableChangesTotal = new Counter({
      name: 'tributary_table_changes_total',
      help: 'Table change attempts: kind created, added-columns, relaxed or refused; result ok, rate-limited, conflict or error.',
      labelNames: ['table', 'kind', 'result'],
      registers,
    });
    this.tableChangeWaitSeconds = new Histogram({
      name: 'tributary_schema_change_wait_seconds',
      help: 'How long rows were held for a change of their table, one observation per row: kind add-columns (columns being added), create-table (the table being created) or propagation (added columns or a new table not yet visible to streaming inserts).',
      labelNames: ['route', 'kind'],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200],
      registers,
    });
    this.routeStateGauge = new Gauge({
      name: 'tributary_route_state',
      help: '1 for the state each route is in (running, paused, draining, stopped); reason is the error code that paused it, or "none".',
      labelNames: ['route', 'state', 'reason'],
      registers,
    });
    // Read at scrape time: a gauge that is updated per message would cost on the hot path.
    const snapshots = (): InFlightSnapshot[] => this.inFlightSources.map((f) => f());
    new Gauge({
      name: 'tributary_in_flight_messages',
      help: 'Messages received and not yet acked or nacked, per subscription.',
      labelNames: ['subscription'],
      registers,
      collect() {
        this.reset();
        for (const s of snapshots()) this.set({ subscription: s.subscription }, s.messages);
      },
    });
    new Gauge({
      name: 'tributary_in_flight_bytes',
      help: 'Payload bytes of the messages in flight, per subscription.',
      labelNames: ['subscription'],
      registers,
      collect() {
        this.reset();
        for (const s of snapshots()) this.set({ subscription: s.subscription }, s.bytes);
      },
    });
    new Gauge({
      name: 'tributary_oldest_in_flight_message_age_seconds',
      help: 'Publish time to now of the oldest message in flight (0 when none): a stuck message shows here before it shows in age at settle.',
      labelNames: ['subscription'],
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const s of snapshots())
          this.set({ subscription: s.subscription }, s.oldestPublishTimeMs === undefined ? 0 : Math.max(0, now - s.oldestPublishTimeMs) / 1000);
      },
    });
    const cacheSize = (): number => this.schemaCacheSize();
    new Gauge({
      name: 'tributary_schema_cache_entries',
      help: 'Compiled schemas in the cache.',
      registers,
      collect() {
        this.set(cacheSize());
      },
    });
    // prom-client reports heap use but not the limit (--max-old-space-size): the heap alert needs both.
    new Gauge({ name: 'tributary_heap_size_limit_bytes', help: 'V8 heap size limit; the process aborts when the heap reaches it.', registers }).set(
      getHeapStatistics().heap_size_limit,
    );
    new Gauge({ name: 'tributary_build_info', help: 'Always 1; the version is a label.', labelNames: ['version'], registers }).set(
      { version: options.version ?? 'unknown' },
      1,
    );
    this.schemaCacheHits = new Counter({
      name: 'tributary_schema_cache_hits_total',
      help: 'Schema lookups served from the cache.',
      registers,
      collect: () => {
        if (this.pendingCacheHits > 0) this.schemaCacheHits.inc(this.pendingCacheHits);
        this.pendingCacheHits = 0;
      },
    });
    this.schemaCacheMisses = new Counter({
      name: 'tributary_schema_cache_misses_total',
      help: 'Schema lookups not served from the cache (they fetched, or waited on a fetch in progress); fetches are counted by tributary_schema_fetch_duration_seconds_count.',
      registers,
    });
    this.schemaFetchDuration = new Histogram({
      name: 'tributary_schema_fetch_duration_seconds',
      help: 'Registry fetch duration.',
      labelNames: ['registry', 'outcome'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
  }

  /** Adds a subscription whose in-flight messages are reported at each scrape. */
  watchInFlight(source: () => InFlightSnapshot): void {
    this.inFlightSources.push(source);
  }

  watchSchemaCache(size: () => number): void {
    this.schemaCacheSize = size;
  }

  /**
   * Called for every message: counted in a plain map and handed to prom-client when the registry
   * is read, so a message costs no label lookup.
   */
  received(subscription: string, count: number, bytes: number, framing: Framing | undefined = undefined): void {
    let perFraming = this.pendingReceived.get(subscription);
    if (perFraming === undefined) {
      perFraming = new Map();
      this.pendingReceived.set(subscription, perFraming);
    }
    const label = framing ?? 'none';
    const entry = perFraming.get(label);
    if (entry === undefined) {
      perFraming.set(label, { count, bytes });
    } else {
      entry.count += count;
      entry.bytes += bytes;
    }
  }

  embeddedSchemaBytes(route: string, bytes: number): void {
    this.embeddedSchemaBytesTotal.inc({ route }, bytes);
  }

  /** Called for every message, like received(). */
  schemaCacheHit(): void {
    this.pendingCacheHits++;
  }

  private flushReceived(): void {
    for (const [subscription, perFraming] of this.pendingReceived) {
      for (const [framing, entry] of perFraming) {
        if (entry.count > 0) this.receivedTotal.inc({ subscription, framing }, entry.count);
        if (entry.bytes > 0) this.receivedBytes.inc({ subscription, framing }, entry.bytes);
        entry.count = 0;
        entry.bytes = 0;
      }
    }
  }

  settled(route: string, outcome: SettleOutcome, code: ErrorCode | undefined, messages: readonly SettledMessage[], nowMs: number): void {
    this.settledTotal.inc({ route, outcome, code: code ?? 'none' }, messages.length);
    // A nack is not a settle for the backlog: the message comes back and is aged again.
    if (outcome !== 'nacked') this.settleAge.observeBatch(route, outcome, messages, nowMs);
  }

  rowsInserted(route: string, table: string, rows: number, billedBytes: number, writeApi: string): void {
    this.rowsInsertedTotal.inc({ route, table }, rows);
    this.billedBytesTotal.inc({ route, table, write_api: writeApi }, billedBytes);
  }

  insertRequest(route: string, seconds: number, outcome: string): void {
    this.insertDuration.observe({ route, outcome }, seconds);
  }

  batchFlushed(route: string, rows: number, bytes: number): void {
    this.batchRows.observe({ route }, rows);
    this.batchBytes.observe({ route }, bytes);
  }

  retried(route: string, code: ErrorCode): void {
    this.retriesTotal.inc({ route, code });
  }

  fieldsDropped(route: string, count: number): void {
    this.droppedFields.inc({ route }, count);
  }

  tableChanged(table: string, kind: TableChangeKind, result: TableChangeResult): void {
    this.tableChangesTotal.inc({ table, kind, result });
  }

  tableChangeWait(route: string, kind: TableChangeWaitKind, seconds: number, rows: number): void {
    for (let i = 0; i < rows; i++) this.tableChangeWaitSeconds.observe({ route, kind }, seconds);
  }

  routeState(route: string, state: RouteStateName, code: ErrorCode | undefined): void {
    const previous = this.lastRouteReason.get(route);
    const reason = code ?? 'none';
    for (const s of ROUTE_STATES) {
      if (previous !== undefined) this.routeStateGauge.remove({ route, state: s, reason: previous });
      this.routeStateGauge.set({ route, state: s, reason }, s === state ? 1 : 0);
    }
    this.lastRouteReason.set(route, reason);
  }
}
