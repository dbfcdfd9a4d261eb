import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import avro from 'avsc';
import { createPipeline, type Pipeline } from '../src/app.js';
import { parseConfig } from '../src/config.js';
import type { DeadLetterPublisher, Envelope, Logger } from '../src/core/ports.js';
import type { PreparedRow, Sink, WriteOutcome } from '../src/core/sink.js';
import type { Row, TableRef, TableSchema } from '../src/core/table-schema.js';
import { CONFLUENT_HEADER_BYTES } from '../src/core/schema-reference.js';
import { Metrics } from '../src/ops/metrics.js';
import { insertAllBody } from '../src/adapters/insert-all-body.js';
import { BigQuerySink } from '../src/adapters/bigquery-sink.js';
import { createStorageWriteSink } from '../src/adapters/bigquery-storage-write-sink.js';
import { createStorageRowEncoder, type StorageRowEncoder } from '../src/adapters/storage-row-encoder.js';
import { tableSchemaFor } from '../test/support/log-schemas.js';
import { KINDS, confluentFramed, type LogKind, type LogType } from './fixtures.js';
import { atLeast, atMost, type Results } from './lib/report.js';
import { collectGarbage, median, nowNs } from './lib/stats.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Distinct payloads per log type; messages cycle through them. */
const POOL = 1_024;
/** Messages handed over before the loop yields, as a subscription's flow control would. */
const FLOW_CONTROL = 2_000;

/**
 * The destination of section 3: does what the BigQuery sink does with a batch before the network
 * (build the insertAll body) and answers at once.
 */
class SerializingSink implements Sink {
  readonly name = 'insert-all';
  bytes = 0;
  requests = 0;
  private readonly insertAll: BigQuerySink;
  readonly limits: Sink['limits'];
  constructor(private readonly schemas: ReadonlyMap<string, TableSchema>) {
    this.insertAll = new BigQuerySink({ projectId: 'bench', timeoutMs: 60_000 });
    this.limits = this.insertAll.limits;
  }

  prepare(id: string, row: Row): PreparedRow {
    return this.insertAll.prepare(id, row);
  }

  write(_table: TableRef, rows: readonly PreparedRow[]): Promise<WriteOutcome> {
    const body = insertAllBody(rows);
    this.bytes += body.length;
    this.requests++;
    return Promise.resolve({ failures: [], billedBytes: 0 });
  }

  getTableSchema(table: TableRef): Promise<TableSchema> {
    const schema = this.schemas.get(table.tableId);
    return schema ? Promise.resolve(schema) : Promise.reject(new Error(`no table ${table.tableId}`));
  }
}

/**
 * The Storage Write path of section 3: prepares rows as the Storage Write sink does (a size bound,
 * no encoding) and encodes every row of a batch to protobuf with the table's writer schema, as the
 * sink does before an append, then answers at once.
 */
class EncodingSink implements Sink {
  readonly name = 'storage-write';
  readonly limits: Sink['limits'];
  bytes = 0;
  requests = 0;
  private readonly encoders = new Map<string, StorageRowEncoder>();
  private readonly storage: Sink;
  constructor(private readonly schemas: ReadonlyMap<string, TableSchema>) {
    this.storage = createStorageWriteSink({ projectId: 'bench', timeoutMs: 60_000, storageApiEndpoint: '127.0.0.1:1' });
    this.limits = this.storage.limits;
  }

  prepare(id: string, row: Row): PreparedRow {
    return this.storage.prepare(id, row);
  }

  write(table: TableRef, rows: readonly PreparedRow[]): Promise<WriteOutcome> {
    let encoder = this.encoders.get(table.tableId);
    if (encoder === undefined) {
      encoder = createStorageRowEncoder(this.schemas.get(table.tableId) as TableSchema);
      this.encoders.set(table.tableId, encoder);
    }
    let billed = 0;
    for (const row of rows) billed += encoder.encode(row.row).length;
    this.bytes += billed;
    this.requests++;
    return Promise.resolve({ failures: [], billedBytes: billed });
  }

  getTableSchema(table: TableRef): Promise<TableSchema> {
    const schema = this.schemas.get(table.tableId);
    return schema ? Promise.resolve(schema) : Promise.reject(new Error(`no table ${table.tableId}`));
  }
}

const noDeadLetters: DeadLetterPublisher = {
  publish: () => Promise.reject(new Error('the benchmark traffic has no dead letters')),
};

interface Counters {
  acked: number;
  nacked: number;
}

/** Plain envelopes, built outside the timed region; ack/nack only count. */
function envelopes(kinds: readonly LogKind[], count: number, counters: Counters, round: number): Envelope[] {
  const payloads = new Map<LogType, Buffer[]>();
  for (const kind of kinds)
    payloads.set(
      kind.logType,
      Array.from({ length: POOL }, (_, i) => confluentFramed(kind, i)),
    );
  const attributes = new Map<LogType, Readonly<Record<string, string>>>(kinds.map((k) => [k.logType, Object.freeze({ log_type: k.logType })]));
  const now = Date.now();
  const ack = (): void => {
    counters.acked++;
  };
  const nack = (): void => {
    counters.nacked++;
  };
  const out: Envelope[] = new Array<Envelope>(count);
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % kinds.length] as LogKind;
    out[i] = {
      id: `${round}-${i}`,
      data: (payloads.get(kind.logType) as Buffer[])[i % POOL] as Buffer,
      attributes: attributes.get(kind.logType) as Readonly<Record<string, string>>,
      // Messages of one publish request share a publish time; requests of 100 are typical.
      publishTimeMs: now + Math.floor(i / 100),
      subscription: 'projects/bench/subscriptions/logs',
      topic: 'projects/bench/topics/logs',
      deliveryAttempt: 1,
      receivedAtMs: now,
      ack,
      nack,
    };
  }
  return out;
}

async function buildPipeline(writeApi: 'insert-all' | 'storage-write'): Promise<{ pipeline: Pipeline; sink: Sink }> {
  const directory = await mkdtemp(join(tmpdir(), 'tributary-bench-schemas-'));
  const tables = new Map<string, TableSchema>();
  for (const kind of Object.values(KINDS)) {
    await writeFile(join(directory, `${kind.schemaId}.avsc`), JSON.stringify(kind.schema));
    tables.set(kind.logType, tableSchemaFor(kind.schema));
  }
  const config = parseConfig(
    `
projectId: bench-project
subscription: logs
deadLetter: { topic: dead-letters }
registry: { kind: directory, directory: ${JSON.stringify(directory)} }
# The driver hands messages over in chunks without Pub/Sub's flow control; a window this wide keeps
# the routes' shares of it out of what this section measures (CPU per message).
flowControl: { maxMessages: 1000000 }
routes:
  access: { match: [access], table: logs.access, metadata: { messageId: _message_id, publishTime: _publish_time } }
  audit: { match: [audit], table: logs.audit, metadata: { messageId: _message_id, publishTime: _publish_time } }
  metric: { match: [metric], table: logs.metric, metadata: { messageId: _message_id, publishTime: _publish_time } }
`,
    {},
  );
  const sink = writeApi === 'insert-all' ? new SerializingSink(tables) : new EncodingSink(tables);
  // The Pub/Sub client is only handed over for the schema service, which a directory registry never calls.
  const pipeline = createPipeline(config, {
    logger: silent,
    sinks: sink,
    deadLetters: noDeadLetters,
    pubsub: new PubSub({ projectId: 'bench-project' }),
    metrics: new Metrics(),
  });
  return { pipeline, sink };
}

function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** True when no route has a batch queued or in flight (a partial batch may still be filling). */
function settledButFilling(pipeline: Pipeline): boolean {
  for (const route of pipeline.routes.values()) {
    const status = route.pipeline.status();
    if (status.queuedBatches > 0 || status.inFlightBatches > 0) return false;
  }
  return true;
}

/**
 * Feeds `batch` through the dispatcher in flow-control-sized chunks, then waits until every full
 * batch is inserted and settled. A partial batch still filling carries over into the next round,
 * as it would in a stream, so no round pays for waiting on the age timer.
 */
async function drive(pipeline: Pipeline, batch: Envelope[]): Promise<number> {
  const t0 = nowNs();
  for (let i = 0; i < batch.length; ) {
    const end = Math.min(batch.length, i + FLOW_CONTROL);
    for (; i < end; i++) pipeline.dispatcher.handle(batch[i] as Envelope);
    await yieldToLoop();
  }
  while (!settledButFilling(pipeline)) await yieldToLoop();
  return nowNs() - t0;
}

/**
 * The floor: what any worker must do per message (decode the Avro body) and per batch (serialize
 * the insertAll body), with nothing else: no schema lookup, no routing, no conversion, no
 * validation, no metrics, no settling.
 */
function floorWorkload(kinds: readonly LogKind[]): (count: number) => number {
  // avsc's defaults (longs as numbers, unwrapped unions) so that JSON.stringify takes the value as is.
  const types = new Map(kinds.map((k) => [k.logType, avro.Type.forSchema(k.schema as avro.Schema)]));
  const payloads = kinds.map((k) => Array.from({ length: POOL }, (_, i) => confluentFramed(k, i).subarray(CONFLUENT_HEADER_BYTES)));
  const typeList = kinds.map((k) => types.get(k.logType) as avro.Type);
  return (count) => {
    let bytes = 0;
    let rows: Array<{ insertId: string; json: unknown }> = [];
    for (let i = 0; i < count; i++) {
      const k = i % kinds.length;
      rows.push({ insertId: String(i), json: (typeList[k] as avro.Type).fromBuffer((payloads[k] as Buffer[])[i % POOL] as Buffer) });
      if (rows.length === 500) {
        bytes += JSON.stringify({ rows }).length;
        rows = [];
      }
    }
    if (rows.length > 0) bytes += JSON.stringify({ rows }).length;
    return bytes;
  };
}

/**
 * Section 3: envelopes in, insertAll request bodies out, through the real Dispatcher and
 * RoutePipelines (schema cache, routing, conversion, pre-validation, batching, metrics, settling),
 * on one thread. Rounds alternate the pipeline and the floor so both see the same machine.
 */
export async function runPipelineThroughput(results: Results, options: { rounds: number; messages: number }): Promise<void> {
  const section = '3 in-process pipeline';
  const detail: Record<string, unknown> = {};
  const scenarios: Array<{ name: string; label: string; kinds: LogKind[]; writeApi: 'insert-all' | 'storage-write' }> = [
    { name: 'access', label: 'access logs only', kinds: [KINDS.access], writeApi: 'insert-all' },
    { name: 'mixed', label: 'access, audit, metric in turn (three routes)', kinds: [KINDS.access, KINDS.audit, KINDS.metric], writeApi: 'insert-all' },
    { name: 'access_storage_write', label: 'access logs only, Storage Write encoding', kinds: [KINDS.access], writeApi: 'storage-write' },
    { name: 'mixed_storage_write', label: 'three routes, Storage Write encoding', kinds: [KINDS.access, KINDS.audit, KINDS.metric], writeApi: 'storage-write' },
  ];
  for (const scenario of scenarios) {
    const { pipeline } = await buildPipeline(scenario.writeApi);
    const counters: Counters = { acked: 0, nacked: 0 };
    // Warm-up: the registry fetch, table schema reads and JIT happen here, not in a timed round.
    await drive(pipeline, envelopes(scenario.kinds, Math.min(options.messages, 20_000), counters, -1));
    const floor = floorWorkload(scenario.kinds);
    floor(20_000);
    const pipelineNs: number[] = [];
    const floorNs: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const batch = envelopes(scenario.kinds, options.messages, counters, round);
      collectGarbage();
      const runPipeline = async (): Promise<void> => {
        pipelineNs.push((await drive(pipeline, batch)) / batch.length);
      };
      const runFloor = (): void => {
        const t0 = nowNs();
        floor(options.messages);
        floorNs.push((nowNs() - t0) / options.messages);
      };
      if (round % 2 === 0) {
        await runPipeline();
        collectGarbage();
        runFloor();
      } else {
        runFloor();
        collectGarbage();
        await runPipeline();
      }
    }
    // What is left in partial batches leaves on the age timer; every message must end up acked.
    const total = Math.min(options.messages, 20_000) + options.rounds * options.messages;
    const deadline = Date.now() + 10_000;
    while (counters.acked + counters.nacked < total && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    if (counters.acked + counters.nacked < total) throw new Error(`section 3: ${total - counters.acked - counters.nacked} messages never settled`);
    if (counters.nacked > 0) throw new Error(`section 3: ${counters.nacked} messages were nacked; the benchmark traffic must all be inserted`);
    const ns = median(pipelineNs);
    const overhead = median(pipelineNs.map((v, i) => v / (floorNs[i] as number)));
    const perSecond = 1e9 / ns;
    const floorPerSecond = 1e9 / median(floorNs);
    results.add({
      section,
      name: `pipeline_${scenario.name}_msgs_per_s`,
      label: `${scenario.label}: envelopes in, ${scenario.writeApi === 'insert-all' ? 'insertAll bodies' : 'protobuf rows'} out`,
      value: perSecond,
      unit: 'msgs/s/core',
      ...(scenario.name.startsWith('access') ? { target: atLeast(perSecond, 50_000) } : {}),
    });
    results.add({
      section,
      name: `pipeline_${scenario.name}_floor_msgs_per_s`,
      label: `${scenario.label}: floor (decode + JSON.stringify)`,
      value: floorPerSecond,
      unit: 'msgs/s/core',
    });
    results.add({
      section,
      name: `pipeline_${scenario.name}_overhead_ratio`,
      label: `${scenario.label}: pipeline / floor, time per message`,
      value: overhead,
      unit: 'x',
      target: atMost(overhead, 2),
    });
    detail[scenario.name] = { messagesPerRound: options.messages, pipelineNsPerMsg: pipelineNs, floorNsPerMsg: floorNs };
  }
  results.detail('pipelineThroughput', detail);
}
