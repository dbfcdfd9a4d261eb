import type { ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Topic } from '@google-cloud/pubsub';
import type { WriteApi } from '../../src/config.js';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import type { TableRef } from '../../src/core/table-schema.js';
import { startCli } from './cli-process.js';
import { metricValue, parseMetrics } from './prometheus-text.js';
import { accessRecord, accessV1, audit, auditRecord, encode, tableSchemaFor } from './log-schemas.js';
import { createTopicAndSubscription, pullAll, uniqueName, type PulledMessage } from './pubsub-fixtures.js';
import { Harness, type HarnessOptions } from './worker-harness.js';

/** The write APIs every BigQuery fault scenario runs on. */
export const WRITE_APIS: readonly WriteApi[] = ['insert-all', 'storage-write'];

/** One write request as either test server recorded it. */
export interface WriteRequest {
  /** Rows stored by it. */
  ok: boolean;
  /** Failed by an injected fault (outage, failNext). */
  injected: boolean;
  throttled: boolean;
  timestamp: number;
  rowCount: number;
  storedRowCount: number;
  /** Rows the destination refused in it (insertAll `invalid`, Storage Write `row_errors`). */
  rowErrorCount: number;
}

/** Scales the fault suite: 1 in CI, more for a longer run (`TRIBUTARY_FAULT_SCALE=10`). */
export const FAULT_SCALE = Math.max(1, Number(process.env.TRIBUTARY_FAULT_SCALE ?? '1'));

export interface WorkerProcess {
  child: ChildProcess;
  port: number;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  lines: Array<Record<string, unknown>>;
  stderr: string[];
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  ready(): Promise<{ status: number; body: { routes?: Array<Record<string, unknown>> } }>;
}

export interface Conservation {
  published: number;
  inserted: number;
  deadLettered: number;
  remaining: number;
  lost: string[];
  both: string[];
  /** Rows BigQuery received more than once (deduplicated by insertId or stored twice). */
  duplicates: number;
}

/**
 * The real worker as a child process (the built CLI), the real emulator and the BigQuery test
 * servers (REST and Storage Write on the same tables), a Confluent-framed stream of two log types,
 * and conservation accounting. The fault knobs (`outage`, `throttle`, `latency`, `rejectRow`)
 * reach the test server of the write API under test.
 */
export class FaultRig {
  readonly access: TableRef;
  readonly audit: TableRef;
  readonly workers: WorkerProcess[] = [];
  private seq = 0;
  /** Messages generated so far: poison ones are picked by this count, across publish calls. */
  private generated = 0;

  private constructor(
    readonly h: Harness,
    readonly dir: string,
  ) {
    this.access = h.table('access');
    this.audit = h.table('audit');
  }

  /** The write API under test. */
  get api(): WriteApi {
    return this.h.writeApi;
  }

  static async create(options: HarnessOptions = {}): Promise<FaultRig> {
    const h = await Harness.create(options);
    const dir = await mkdtemp(join(tmpdir(), 'tributary-fault-'));
    await writeFile(join(dir, '1.avsc'), JSON.stringify(accessV1));
    await writeFile(join(dir, '2.avsc'), JSON.stringify(audit));
    const rig = new FaultRig(h, dir);
    h.bigquery.createTable(rig.access, tableSchemaFor(accessV1));
    h.bigquery.createTable(rig.audit, tableSchemaFor(audit));
    return rig;
  }

  /** A second subscription on the source topic with the shortest ack deadline, for kill tests. */
  async shortDeadlineSubscription(): Promise<string> {
    const [sub] = await this.h.topic.createSubscription(uniqueName('fast-sub'), { ackDeadlineSeconds: 10 });
    return sub.name;
  }

  /** A topic of its own with one subscription of the shortest ack deadline. */
  async shortDeadlineTopic(): Promise<{ topic: Topic; subscription: string }> {
    const [topic] = await this.h.pubsub.createTopic(uniqueName('kill-topic'));
    const [sub] = await topic.createSubscription(uniqueName('kill-sub'), { ackDeadlineSeconds: 10 });
    return { topic, subscription: sub.name };
  }

  async writeConfig(extra = '', overrides: { subscription?: string; registry?: string; maxRows?: number; maxUnsettledRows?: number } = {}): Promise<string> {
    const maxRows = overrides.maxRows ?? 200;
    const share = overrides.maxUnsettledRows === undefined ? '' : `, maxUnsettledRows: ${overrides.maxUnsettledRows}`;
    const path = join(this.dir, `tributary-${++this.seq}.yaml`);
    let yaml = this.h.configYaml(`
registry: ${overrides.registry ?? `{ kind: directory, directory: ${this.dir} }`}
log: { level: info }
routes:
  access: { match: [access], table: $DATASET.access, batch: { maxRows: ${maxRows}, maxDelayMs: 100 }, maxInFlightBatches: 2${share}, metadata: { messageId: _message_id, publishTime: _publish_time } }
  audit: { match: [audit], table: $DATASET.audit, batch: { maxRows: ${maxRows}, maxDelayMs: 100 }, maxInFlightBatches: 2${share}, metadata: { messageId: _message_id, publishTime: _publish_time } }
${extra}`);
    if (overrides.subscription) yaml = yaml.replace(`subscription: ${this.h.subscription.name}`, `subscription: ${overrides.subscription}`);
    await writeFile(path, yaml);
    return path;
  }

  async spawnWorker(configPath: string): Promise<WorkerProcess> {
    const cli = startCli(['run', '--config', configPath]);
    const { child, lines, stderr } = cli;
    const exit = cli.exited;
    const port = Number((await cli.waitForLine((l) => l.message === 'tributary started.', 60_000)).port);
    const base = `http://127.0.0.1:${port}`;
    const worker: WorkerProcess = {
      child,
      port,
      exit,
      lines,
      stderr,
      async metric(name, labels = {}) {
        return metricValue(parseMetrics(await (await fetch(`${base}/metrics`)).text()), name, labels) ?? 0;
      },
      async ready() {
        const res = await fetch(`${base}/readyz`);
        return { status: res.status, body: (await res.json()) as { routes?: Array<Record<string, unknown>> } };
      },
    };
    this.workers.push(worker);
    return worker;
  }

  /** Confluent-framed access and audit messages, one in `poisonEvery` undecodable. */
  messages(n: number, poisonEvery = 0): Array<{ data: Buffer; attributes: Record<string, string> }> {
    return Array.from({ length: n }, (_, k) => {
      const i = this.seq * 1_000_000 + k + Math.floor(Math.random() * 1000) * 1000;
      const g = this.generated++;
      if (poisonEvery > 0 && g % poisonEvery === poisonEvery - 1) return { data: Buffer.from([0, 0, 0, 0, 1, 0xff, 0xff]), attributes: { log_type: 'access' } };
      return k % 3 === 2
        ? { data: Buffer.concat([encodeConfluentHeader(2), encode(audit, auditRecord(i))]), attributes: { log_type: 'audit' } }
        : { data: Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(i))]), attributes: { log_type: 'access' } };
    });
  }

  async publish(n: number, poisonEvery = 0, topic: Topic = this.h.topic): Promise<string[]> {
    const ids: string[] = [];
    const all = this.messages(n, poisonEvery);
    for (let i = 0; i < all.length; i += 500) ids.push(...(await this.h.publish(all.slice(i, i + 500), topic)));
    return ids;
  }

  /** Publishes `total` messages in chunks spread over `durationMs` (a steady load). */
  async publishSteady(total: number, durationMs: number, poisonEvery = 0, topic: Topic = this.h.topic): Promise<string[]> {
    const chunks = Math.max(1, Math.round(durationMs / 100));
    const per = Math.ceil(total / chunks);
    const ids: string[] = [];
    const started = Date.now();
    for (let c = 0; c < chunks && ids.length < total; c++) {
      ids.push(...(await this.publish(Math.min(per, total - ids.length), poisonEvery, topic)));
      const due = started + ((c + 1) * durationMs) / chunks;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait)); // pacing of the load generator
    }
    return ids;
  }

  insertedIds(): string[] {
    return this.h.insertedIds([this.access, this.audit]);
  }

  /** Rows BigQuery saw more than once: deduplicated by insertId, or stored twice. */
  duplicates(tables: TableRef[] = [this.access, this.audit]): number {
    const inserted = this.h.insertedIds(tables);
    const storedTwice = inserted.length - new Set(inserted).size;
    const keys = new Set(tables.map((t) => `${t.datasetId}.${t.tableId}`));
    return (
      storedTwice + this.h.bigquery.requests.filter((r) => keys.has(`${r.table.datasetId}.${r.table.tableId}`)).reduce((n, r) => n + r.duplicateRowCount, 0)
    );
  }

  /**
   * Waits until every published id is inserted or dead-lettered and checks conservation; a row
   * stored twice fails it on insertAll (insertIds) and is counted on Storage Write (at least once).
   */
  expectConservation(published: string[], timeoutMs = 30_000, insertedElsewhere: string[] = []): Promise<{ storedTwice: number }> {
    return this.h.expectConservation(published, [this.access, this.audit], timeoutMs, insertedElsewhere, {
      duplicates: this.api === 'storage-write' ? 'count' : 'refuse',
    });
  }

  /** A BigQuery outage (503 backendError / UNAVAILABLE) on, or off. */
  outage(on: boolean): void {
    this.h.outage(on);
  }

  /** A quota: beyond this many write requests per second BigQuery answers rateLimitExceeded / RESOURCE_EXHAUSTED. */
  throttle(requestsPerSecond: number | null): void {
    this.h.throttle(requestsPerSecond);
  }

  /** Every write request takes this long. */
  latency(ms: number): void {
    this.h.writeLatency(ms);
  }

  /** BigQuery refuses the row of this message (one pre-validation passes), whatever the write API. */
  rejectRow(messageId: string | null): void {
    this.h.rejectRows(messageId === null ? null : (row) => (row._message_id === messageId ? 'Invalid value' : null));
  }

  /** The write requests of the API under test, as its test server recorded them. */
  writeRequests(): WriteRequest[] {
    if (this.api === 'insert-all') {
      return this.h.bigquery.requests.map((r) => ({
        ok: r.status === 200 && r.insertErrorCount === 0,
        injected: r.injected,
        throttled: r.throttled,
        timestamp: r.timestamp,
        rowCount: r.rowCount,
        storedRowCount: r.storedRowCount,
        rowErrorCount: r.insertErrorCount,
      }));
    }
    return this.h.storage.requests.map((r) => ({
      ok: r.code === 0,
      injected: r.injected,
      throttled: r.throttled,
      timestamp: r.timestamp,
      rowCount: r.rowCount,
      storedRowCount: r.storedRowCount,
      rowErrorCount: r.rowErrors.length,
    }));
  }

  waitForWrites(count: number, timeoutMs: number): Promise<void> {
    return this.h.waitForWrites(count, timeoutMs);
  }

  /** One line per scenario, naming the write API. */
  report(scenario: string, c: Conservation, extra: Record<string, string | number> = {}): void {
    report(scenario, c, { writeApi: this.api, ...extra });
  }

  /**
   * Runs a clean worker until every published id is inserted or dead-lettered (or `timeoutMs`),
   * stops it, and accounts for every message: inserted, dead-lettered, still in the subscription.
   */
  async settle(published: string[], options: { timeoutMs?: number; subscription?: string; expectAll?: boolean } = {}): Promise<Conservation> {
    const config = await this.writeConfig('', options.subscription ? { subscription: options.subscription } : {});
    const worker = await this.spawnWorker(config);
    const wanted = new Set(published);
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    for (;;) {
      await this.h.pullDeadLetters(200);
      const done = new Set([...this.insertedIds(), ...this.deadLetterIds()]);
      if ([...wanted].every((id) => done.has(id)) || Date.now() > deadline) break;
    }
    worker.child.kill('SIGTERM');
    await worker.exit;
    return this.account(published, options.subscription);
  }

  deadLetterIds(): string[] {
    return this.h.deadLetters.map((m: PulledMessage) => m.attributes.tributary_source_message_id ?? '');
  }

  /** `tables`: where the rows of `published` go (default the rig's access and audit tables). */
  async account(published: string[], subscription?: string, tables: TableRef[] = [this.access, this.audit]): Promise<Conservation> {
    await this.h.pullDeadLetters(300);
    const sub = subscription ? this.h.pubsub.subscription(subscription) : this.h.subscription;
    const remaining = (await pullAll(sub, { timeoutMs: 500, settle: 'leave' })).map((m) => m.messageId);
    const inserted = this.h.insertedIds(tables);
    const dead = this.deadLetterIds();
    const accounted = new Set([...inserted, ...dead, ...remaining]);
    const deadSet = new Set(dead);
    const ofThese = new Set(published);
    const count = (ids: string[]): number => new Set(ids.filter((id) => ofThese.has(id))).size;
    return {
      published: published.length,
      inserted: count(inserted),
      deadLettered: count(dead),
      remaining: count(remaining),
      lost: published.filter((id) => !accounted.has(id)),
      both: [...new Set(inserted)].filter((id) => deadSet.has(id)),
      duplicates: this.duplicates(tables),
    };
  }

  /** A fresh dead-letter topic and subscription (after the old topic was deleted). */
  async recreateDeadLetterTopic(): Promise<void> {
    const name = this.h.deadLetterTopic.name.split('/').pop() as string;
    const { subscription } = await createTopicAndSubscription(this.h.pubsub, { topicName: name });
    this.h.deadLetterSubscription = subscription;
  }

  async close(): Promise<void> {
    for (const w of this.workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all(this.workers.map((w) => w.exit));
    await this.h.close();
  }
}

/** One line per scenario: the figures docs/guarantees.md tells the reader how to produce. */
export function report(scenario: string, c: Conservation, extra: Record<string, string | number> = {}): void {
  const { writeApi, ...rest } = extra;
  const fields = {
    ...(writeApi === undefined ? {} : { writeApi }),
    published: c.published,
    inserted: c.inserted,
    deadLettered: c.deadLettered,
    remaining: c.remaining,
    lost: c.lost.length,
    both: c.both.length,
    duplicates: c.duplicates,
    ...rest,
  };
  process.stdout.write(
    `FAULT ${scenario} ${Object.entries(fields)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}\n`,
  );
}
