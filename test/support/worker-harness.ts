import * as grpc from '@grpc/grpc-js';
import type { PubSub, Subscription, Topic } from '@google-cloud/pubsub';
import { inject } from 'vitest';
import { startWorker, type Worker } from '../../src/app.js';
import { parseConfig, type WriteApi } from '../../src/config.js';
import type { Logger } from '../../src/core/ports.js';
import type { TableRef } from '../../src/core/table-schema.js';
import { startBigQueryTestServer, type BigQueryTestServer } from './bigquery-test-server.js';
import { startStorageWriteTestServer, type StorageWriteTestServer } from './storage-write-test-server.js';
import { startConfluentRegistryServer, type ConfluentRegistryServer, type StartConfluentRegistryServerOptions } from './confluent-registry-server.js';
import { closePubSub, createPubSub, createTopicAndSubscription, pullAll, uniqueName, type PulledMessage } from './pubsub-fixtures.js';

export const PROJECT = 'test-project';

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface HarnessOptions {
  /** The write API the generated config names; unset: the project's default (none is written). */
  writeApi?: WriteApi;
}

export interface ConservationOptions {
  /**
   * `refuse` (default): a row stored twice fails the check. `count`: at least once, as the Storage
   * Write API's default stream is after an ambiguous failure; the rows stored twice are returned.
   */
  duplicates?: 'refuse' | 'count';
}

/**
 * Everything an integration test needs: emulator topics, the BigQuery REST test server and the
 * Storage Write test server on the same tables (rows written by either API are read back with
 * `bigquery.rows(ref)`), a worker.
 */
export class Harness {
  readonly deadLetters: PulledMessage[] = [];
  private workers: Worker[] = [];
  private registries: ConfluentRegistryServer[] = [];
  private resolvedWriteApi: WriteApi | undefined;

  private constructor(
    readonly pubsub: PubSub,
    readonly bigquery: BigQueryTestServer,
    readonly storage: StorageWriteTestServer,
    /** What the generated config names, if anything. */
    readonly writeApiOption: WriteApi | undefined,
    readonly topic: Topic,
    readonly subscription: Subscription,
    readonly deadLetterTopic: Topic,
    public deadLetterSubscription: Subscription,
    readonly dataset: string,
  ) {}

  static async create(options: HarnessOptions = {}): Promise<Harness> {
    const host = inject('pubsubEmulatorHost');
    process.env.PUBSUB_EMULATOR_HOST = host;
    process.env.METADATA_SERVER_DETECTION = 'none';
    const pubsub = createPubSub(host, PROJECT);
    const bigquery = await startBigQueryTestServer();
    const storage = await startStorageWriteTestServer({ tables: bigquery });
    const { topic, subscription } = await createTopicAndSubscription(pubsub, { ackDeadlineSeconds: 30 });
    const dl = await createTopicAndSubscription(pubsub, { topicName: uniqueName('dead-letter') });
    return new Harness(
      pubsub,
      bigquery,
      storage,
      options.writeApi,
      topic,
      subscription,
      dl.topic,
      dl.subscription,
      uniqueName('ds').replace(/[^A-Za-z0-9_]/g, '_'),
    );
  }

  /** The write API the worker uses: the one asked for, else the project's default. */
  get writeApi(): WriteApi {
    this.resolvedWriteApi ??= this.writeApiOption ?? parseConfig(this.configYaml('routes: { r: { match: [r], table: d.t } }'), {}).bigquery.writeApi;
    return this.resolvedWriteApi;
  }

  // Faults that reach the test server of the write API the worker uses: insertAll's answers
  // (REST) or the Storage Write API's (gRPC), with the reasons and codes BigQuery gives for each.

  /** BigQuery refuses the rows `reason` names (a string: the refusal's message), as it does for values only it can judge. */
  rejectRows(reason: ((row: Record<string, unknown>, table: TableRef) => string | null) | null): void {
    if (this.writeApi === 'storage-write') {
      this.storage.rejectRow(reason);
      return;
    }
    this.bigquery.rejectRow(
      reason === null
        ? null
        : (row, table) => {
            const message = reason(row.json, table);
            return message === null ? null : { location: '', message };
          },
    );
  }

  /** The next `n` write requests (of one table, if given) fail with 503 backendError / UNAVAILABLE. */
  failNextWrites(n: number, table?: TableRef): void {
    if (this.writeApi === 'insert-all') this.bigquery.failNext(n, { status: 503, reason: 'backendError' }, table ? { table } : {});
    else this.storage.failNext(n, { code: grpc.status.UNAVAILABLE, message: 'The service is currently unavailable.', ...(table ? { table } : {}) });
  }

  /** Every write request takes this long. */
  writeLatency(ms: number): void {
    if (this.writeApi === 'insert-all') this.bigquery.setLatency(ms);
    else this.storage.setLatency(ms);
  }

  /** Writes to this table are refused as a permission error (null: allowed again). */
  denyWrites(table: TableRef, denied = true): void {
    if (this.writeApi === 'insert-all') {
      if (denied) this.bigquery.denyTable(table);
      else this.bigquery.allowTable(table);
    } else {
      this.storage.setOutage(denied ? { code: grpc.status.PERMISSION_DENIED, message: "Permission 'TABLES_UPDATE_DATA' denied on resource", table } : null);
    }
  }

  /** A BigQuery outage (503 backendError / UNAVAILABLE) on, or off. */
  outage(on: boolean): void {
    if (this.writeApi === 'insert-all') this.bigquery.setOutage(on ? { status: 503, reason: 'backendError' } : null);
    else this.storage.setOutage(on ? { code: grpc.status.UNAVAILABLE, message: 'The service is currently unavailable.' } : null);
  }

  /** A quota: beyond this many write requests per second BigQuery answers rateLimitExceeded / RESOURCE_EXHAUSTED. */
  throttle(requestsPerSecond: number | null): void {
    if (this.writeApi === 'insert-all') this.bigquery.throttle(requestsPerSecond === null ? null : { requestsPerSecond });
    else this.storage.throttle(requestsPerSecond === null ? null : { requestsPerSecond });
  }

  /** Write requests of the API in use, so far. */
  writeRequestCount(): number {
    return this.writeApi === 'insert-all' ? this.bigquery.requests.length : this.storage.requests.length;
  }

  waitForWrites(count: number, timeoutMs: number): Promise<void> {
    return this.writeApi === 'insert-all' ? this.bigquery.waitForRequests(count, timeoutMs) : this.storage.waitForRequests(count, timeoutMs);
  }

  table(tableId: string): TableRef {
    return { projectId: PROJECT, datasetId: this.dataset, tableId };
  }

  /** The YAML config a user would write, pointed at this harness. */
  configYaml(body: string): string {
    return `
projectId: ${PROJECT}
subscription: ${this.subscription.name}
deadLetter: { topic: ${this.deadLetterTopic.name} }
bigquery: { apiEndpoint: ${this.bigquery.url}, storageApiEndpoint: "${this.storage.endpoint}", probeIntervalMs: 200${this.writeApiOption ? `, writeApi: ${this.writeApiOption}` : ''} }
server: { port: 0, host: 127.0.0.1 }
retry: { maxAttempts: 5, initialDelayMs: 20, maxDelayMs: 200 }
shutdown: { drainTimeoutMs: 10000 }
${body.replaceAll('$DATASET', this.dataset)}
`;
  }

  async startWorker(body: string, logger: Logger = silentLogger): Promise<Worker> {
    const worker = await startWorker(parseConfig(this.configYaml(body), {}), { logger });
    this.workers.push(worker);
    return worker;
  }

  async publish(messages: Array<{ data: Buffer; attributes?: Record<string, string> }>, topic: Topic = this.topic): Promise<string[]> {
    return Promise.all(messages.map((m) => topic.publishMessage({ data: m.data, attributes: m.attributes ?? {} })));
  }

  /** Pulls what reached the dead-letter subscription so far (and keeps it in `deadLetters`). */
  async pullDeadLetters(timeoutMs = 200): Promise<PulledMessage[]> {
    const pulled = await pullAll(this.deadLetterSubscription, { timeoutMs });
    this.deadLetters.push(...pulled);
    return this.deadLetters;
  }

  insertedIds(tables: TableRef[]): string[] {
    return tables.flatMap((t) => this.bigquery.rows(t).map((r) => String(r.json._message_id ?? r.insertId)));
  }

  /**
   * Waits until every published id is inserted or dead-lettered, then checks conservation:
   * nothing lost, nothing both inserted and dead-lettered, no row inserted twice.
   */
  /** `insertedElsewhere`: ids inserted into a table that is gone since (a deleted table's rows). */
  async expectConservation(
    published: string[],
    tables: TableRef[],
    timeoutMs = 30_000,
    insertedElsewhere: string[] = [],
    options: ConservationOptions = {},
  ): Promise<{ inserted: string[]; deadLettered: PulledMessage[]; storedTwice: number }> {
    const deadline = Date.now() + timeoutMs;
    const wanted = new Set(published);
    for (;;) {
      await this.pullDeadLetters(100);
      const done = new Set([...this.insertedIds(tables), ...insertedElsewhere, ...this.deadLetters.map((m) => m.attributes.tributary_source_message_id ?? '')]);
      const missing = [...wanted].filter((id) => !done.has(id));
      if (missing.length === 0) break;
      if (Date.now() > deadline) {
        throw new Error(
          `conservation: ${missing.length} of ${published.length} messages neither inserted nor dead-lettered (e.g. ${missing.slice(0, 3).join(', ')})`,
        );
      }
    }
    const inserted = [...this.insertedIds(tables), ...insertedElsewhere];
    const deadIds = this.deadLetters.map((m) => m.attributes.tributary_source_message_id ?? '');
    const both = inserted.filter((id) => deadIds.includes(id));
    if (both.length > 0) throw new Error(`conservation: ${both.length} messages both inserted and dead-lettered`);
    const storedTwice = inserted.length - new Set(inserted).size;
    if (storedTwice > 0 && options.duplicates !== 'count') throw new Error(`conservation: ${storedTwice} rows were stored twice`);
    const unknown = [...inserted, ...deadIds].filter((id) => !wanted.has(id));
    if (unknown.length > 0) throw new Error(`conservation: ${unknown.length} unexpected messages`);
    return { inserted, deadLettered: this.deadLetters, storedTwice };
  }

  /** A Confluent-compatible registry test server, closed with the harness. */
  async confluentRegistry(options?: StartConfluentRegistryServerOptions): Promise<ConfluentRegistryServer> {
    const registry = await startConfluentRegistryServer(options);
    this.registries.push(registry);
    return registry;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
    this.workers = [];
    await Promise.all(this.registries.map((r) => r.close()));
    this.registries = [];
    await this.storage.close();
    await this.bigquery.close();
    await closePubSub(this.pubsub);
  }
}
