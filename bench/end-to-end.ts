import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PubSub, Topic } from '@google-cloud/pubsub';
import type { TableRef } from '../src/core/table-schema.js';
import { startBigQueryTestServer, type BigQueryTestServer } from '../test/support/bigquery-test-server.js';
import { tableSchemaFor } from '../test/support/log-schemas.js';
import { startPubSubEmulator, type PubSubEmulator } from '../test/support/pubsub-emulator.js';
import { closePubSub, createPubSub, uniqueName } from '../test/support/pubsub-fixtures.js';
import { KINDS, confluentFramed, type LogKind, type LogType } from './fixtures.js';
import { CpuWindow, readMemory, startChild, stopChild, type Child } from './lib/processes.js';
import { atLeast, atMost, type Results } from './lib/report.js';
import { median, sleep, slope } from './lib/stats.js';

const PROJECT = 'test-project';
const CLI = fileURLToPath(new URL('../../bin/tributary.js', import.meta.url));
const BARE = fileURLToPath(new URL('./bare-subscriber.js', import.meta.url));
const MiB = 1024 * 1024;
/**
 * The flow-control window of the worker and of the bare subscriber alike. Throughput is at most
 * window / time a message spends in the process; the worker holds each message while its batch
 * fills and is inserted, so at a backlog it needs a wider window than the default 2,000.
 */
const FLOW_CONTROL_MESSAGES = Number(process.env.BENCH_FLOW_CONTROL_MESSAGES ?? 10_000);
/** Distinct payloads per log type; a backlog cycles through them. */
const POOL = 1_024;
/** Traffic mix of every backlog: 8 access logs, 1 audit event, 1 metric in 10 messages. */
const MIX: readonly LogType[] = ['access', 'access', 'access', 'audit', 'access', 'access', 'metric', 'access', 'access', 'access'];

export interface EndToEndOptions {
  sections: ReadonlySet<number>;
  e2eMessages: number;
  e2eRounds: number;
  memoryMessages: number;
  soakMinutes: number;
  soakRate: number;
  scaleMessages: number;
}

/** Everything sections 4-7 share: one emulator, one BigQuery test server, the schemas on disk. */
class Environment {
  private runs = 0;
  private readonly counted = new Map<string, { stored: number; duplicates: number }>();
  private seenRequests = 0;

  private constructor(
    readonly emulator: PubSubEmulator,
    readonly pubsub: PubSub,
    readonly bigquery: BigQueryTestServer,
    readonly directory: string,
    readonly deadLetterTopic: Topic,
    private readonly payloads: ReadonlyMap<LogType, Buffer[]>,
  ) {}

  static async start(): Promise<Environment> {
    process.env.METADATA_SERVER_DETECTION = 'none';
    const emulator = await startPubSubEmulator();
    const pubsub = createPubSub(emulator.host, PROJECT);
    const bigquery = await startBigQueryTestServer();
    const directory = await mkdtemp(join(tmpdir(), 'tributary-bench-'));
    for (const kind of Object.values(KINDS)) await writeFile(join(directory, `${kind.schemaId}.avsc`), JSON.stringify(kind.schema));
    const [deadLetterTopic] = await pubsub.createTopic(uniqueName('bench-dead-letter'));
    await deadLetterTopic.createSubscription(uniqueName('bench-dead-letter-sub'));
    const payloads = new Map<LogType, Buffer[]>();
    for (const kind of Object.values(KINDS))
      payloads.set(
        kind.logType,
        Array.from({ length: POOL }, (_, i) => confluentFramed(kind, i)),
      );
    return new Environment(emulator, pubsub, bigquery, directory, deadLetterTopic, payloads);
  }

  /** A topic with `count` subscriptions created before anything is published to it. */
  async topic(prefix: string, count: number): Promise<{ topic: Topic; subscriptions: string[] }> {
    const [topic] = await this.pubsub.createTopic(uniqueName(prefix), {});
    const subscriptions: string[] = [];
    for (let i = 0; i < count; i++) {
      const [subscription] = await topic.createSubscription(uniqueName(`${prefix}-sub`), { ackDeadlineSeconds: 60 });
      subscriptions.push(subscription.name);
    }
    return { topic, subscriptions };
  }

  /** Publishes `count` messages of the traffic mix, keeping a bounded number unconfirmed. */
  async publish(topic: Topic, count: number, label: string, offset = 0): Promise<void> {
    const publisher = this.pubsub.topic(topic.name, { batching: { maxMessages: 1_000, maxMilliseconds: 10 } });
    const started = performance.now();
    let pending: Array<Promise<string>> = [];
    let lastReport = started;
    for (let i = 0; i < count; i++) {
      pending.push(this.publishOne(publisher, offset + i));
      if (pending.length >= 10_000) {
        await Promise.all(pending);
        pending = [];
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          process.stdout.write(`  ${label}: published ${i + 1} of ${count}\n`);
        }
      }
    }
    await Promise.all(pending);
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(`  ${label}: published ${count} messages in ${seconds.toFixed(1)} s\n`);
  }

  publishOne(publisher: Topic, i: number): Promise<string> {
    const logType = MIX[i % MIX.length] as LogType;
    const data = (this.payloads.get(logType) as Buffer[])[i % POOL] as Buffer;
    return publisher.publishMessage({ data, attributes: { log_type: logType } });
  }

  /** Tables of a run of its own: message ids repeat across subscriptions of one topic, so must tables. */
  tables(): { dataset: string; refs: TableRef[] } {
    const dataset = `bench_${++this.runs}`;
    const refs = Object.values(KINDS).map((kind) => {
      const ref = { projectId: PROJECT, datasetId: dataset, tableId: kind.logType };
      this.bigquery.createTable(ref, tableSchemaFor(kind.schema));
      return ref;
    });
    return { dataset, refs };
  }

  dropTables(refs: readonly TableRef[]): void {
    for (const ref of refs) if (this.bigquery.hasTable(ref)) this.bigquery.deleteTable(ref);
  }

  /** Rows stored so far in a dataset; reads only the requests recorded since the last call. */
  stored(dataset: string): { stored: number; duplicates: number } {
    const requests = this.bigquery.requests;
    for (let i = this.seenRequests; i < requests.length; i++) {
      const request = requests[i];
      if (request === undefined) continue;
      const entry = this.counted.get(request.table.datasetId) ?? { stored: 0, duplicates: 0 };
      entry.stored += request.storedRowCount;
      entry.duplicates += request.duplicateRowCount;
      this.counted.set(request.table.datasetId, entry);
    }
    this.seenRequests = requests.length;
    // The server keeps every request for tests; a benchmark only needs the running totals.
    if (this.seenRequests > 5_000) {
      this.bigquery.clearRequests();
      this.seenRequests = 0;
    }
    return this.counted.get(dataset) ?? { stored: 0, duplicates: 0 };
  }

  /** Insert requests the server is still working on (for instance waiting out injected latency). */
  insertsInFlight(): number {
    let n = 0;
    for (const entry of this.bigquery.httpLog) if (entry.status === null && entry.path.endsWith('/insertAll')) n++;
    return n;
  }

  async waitForRows(dataset: string, count: number, timeoutMs: number, onTick?: () => void): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.stored(dataset).stored >= count) return performance.now();
      if (Date.now() > deadline) throw new Error(`only ${this.stored(dataset).stored} of ${count} rows stored in ${dataset} after ${timeoutMs} ms`);
      onTick?.();
      await sleep(10);
    }
  }

  async workerConfig(subscription: string, dataset: string, extra = ''): Promise<string> {
    const routes = Object.values(KINDS)
      .map(
        (k: LogKind) =>
          `  ${k.logType}: { match: [${k.logType}], table: ${dataset}.${k.logType}, metadata: { messageId: _message_id, publishTime: _publish_time } }`,
      )
      .join('\n');
    const path = join(this.directory, `worker-${dataset}-${Math.random().toString(36).slice(2, 8)}.yaml`);
    await writeFile(
      path,
      `projectId: ${PROJECT}
subscription: ${subscription}
deadLetter: { topic: ${this.deadLetterTopic.name} }
registry: { kind: directory, directory: ${JSON.stringify(this.directory)} }
# Only the REST test server runs here: these end-to-end figures are insertAll's.
bigquery: { apiEndpoint: ${this.bigquery.url}, writeApi: insert-all }
server: { port: 0, host: 127.0.0.1 }
flowControl: { maxMessages: ${FLOW_CONTROL_MESSAGES} }
${extra}
routes:
${routes}
`,
    );
    return path;
  }

  startWorker(configPath: string): Child {
    // BENCH_WORKER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=prof", profiles the worker processes.
    const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    return startChild([...nodeArgs, CLI, 'run', '--config', configPath], { PUBSUB_EMULATOR_HOST: this.emulator.host, METADATA_SERVER_DETECTION: 'none' });
  }

  startBare(subscription: string, count: number): Child {
    return startChild([BARE, subscription, String(count)], {
      PUBSUB_EMULATOR_HOST: this.emulator.host,
      METADATA_SERVER_DETECTION: 'none',
      BENCH_PROJECT_ID: PROJECT,
      BENCH_FLOW_CONTROL_MESSAGES: String(FLOW_CONTROL_MESSAGES),
    });
  }

  async close(): Promise<void> {
    await closePubSub(this.pubsub).catch(() => undefined);
    await this.bigquery.close();
    await this.emulator.stop();
    await rm(this.directory, { recursive: true, force: true });
  }
}

interface Drain {
  msgsPerSecond: number;
  seconds: number;
  /** CPU the measured process(es) used, in cores, while draining. */
  childCores: number;
  driverCores: number;
  machineBusyCores: number;
  /** CPU microseconds per message in the measured process(es). */
  cpuMicrosPerMessage: number;
}

function drainOf(count: number, window: CpuWindow, startedAt: number, doneAt: number): Drain {
  const cpu = window.finish();
  const seconds = (doneAt - startedAt) / 1000;
  return {
    msgsPerSecond: count / seconds,
    seconds,
    childCores: cpu.childCores,
    driverCores: cpu.driverCores,
    machineBusyCores: cpu.machineBusyCores,
    cpuMicrosPerMessage: (cpu.childCpuSeconds / count) * 1e6,
  };
}

async function drainBare(env: Environment, subscription: string, count: number): Promise<Drain> {
  const child = env.startBare(subscription, count);
  try {
    const started = await child.waitForMessage(/^started$/, 60_000);
    const window = new CpuWindow([child.pid]);
    const done = await child.waitForMessage(/^done$/, 600_000);
    return drainOf(count, window, started.at, done.at);
  } finally {
    await stopChild(child);
  }
}

/** Starts `workers` worker processes on one subscription and times the drain of `count` messages into fresh tables. */
async function drainWorkers(
  env: Environment,
  subscription: string,
  count: number,
  workers = 1,
  extra = '',
): Promise<Drain & { duplicates: number; exitCodes: Array<number | null> }> {
  const { dataset, refs } = env.tables();
  const config = await env.workerConfig(subscription, dataset, extra);
  const children = Array.from({ length: workers }, () => env.startWorker(config));
  try {
    const started = await Promise.all(children.map((c) => c.waitForMessage(/^tributary started\.$/, 60_000)));
    const startedAt = Math.max(...started.map((s) => s.at));
    const window = new CpuWindow(children.map((c) => c.pid));
    const doneAt = await env.waitForRows(dataset, count, 900_000);
    const drain = drainOf(count, window, startedAt, doneAt);
    const exitCodes = await Promise.all(children.map((c) => stopChild(c)));
    const { stored, duplicates } = env.stored(dataset);
    if (stored !== count) throw new Error(`conservation: ${stored} rows stored for ${count} messages`);
    return { ...drain, duplicates, exitCodes };
  } finally {
    await Promise.all(children.map((c) => stopChild(c)));
    env.dropTables(refs);
  }
}

/** Section 4: the worker against a bare ack-only subscriber, same backlog, same emulator, same run. */
async function runThroughput(env: Environment, results: Results, options: EndToEndOptions): Promise<Drain[]> {
  const section = '4 end to end';
  const n = options.e2eMessages;
  const bare: Drain[] = [];
  const worker: Drain[] = [];
  const slow: Drain[] = [];
  for (let round = 0; round < options.e2eRounds; round++) {
    const { topic, subscriptions } = await env.topic('bench-e2e', 3);
    const [bareSub, workerSub, slowSub] = subscriptions as [string, string, string];
    await env.publish(topic, n, `section 4 round ${round + 1}`);
    // Alternate which side drains first, so neither always meets the fuller emulator.
    const order = round % 2 === 0 ? ['bare', 'worker'] : ['worker', 'bare'];
    for (const side of order) {
      if (side === 'bare') bare.push(await drainBare(env, bareSub, n));
      else worker.push(await drainWorkers(env, workerSub, n));
      process.stdout.write(`  section 4 round ${round + 1}: ${side} ${Math.round((side === 'bare' ? bare : worker).at(-1)?.msgsPerSecond ?? 0)} msgs/s\n`);
    }
    env.bigquery.setLatency(100);
    try {
      slow.push(await drainWorkers(env, slowSub, n));
    } finally {
      env.bigquery.setLatency(0);
    }
    process.stdout.write(`  section 4 round ${round + 1}: worker, 100 ms inserts ${Math.round(slow.at(-1)?.msgsPerSecond ?? 0)} msgs/s\n`);
    await topic.delete().catch(() => undefined);
  }
  const ratio = median(worker.map((w, i) => w.msgsPerSecond / (bare[i] as Drain).msgsPerSecond));
  const slowRatio = median(slow.map((w, i) => w.msgsPerSecond / (bare[i] as Drain).msgsPerSecond));
  const rate = (d: Drain[]): number => median(d.map((x) => x.msgsPerSecond));
  results.add({ section, name: 'e2e_bare_subscriber_msgs_per_s', label: `bare ack-only subscriber, ${n} backlog`, value: rate(bare), unit: 'msgs/s' });
  results.add({ section, name: 'e2e_worker_msgs_per_s', label: `worker, ${n} backlog into the BigQuery test server`, value: rate(worker), unit: 'msgs/s' });
  results.add({ section, name: 'e2e_worker_vs_bare_ratio', label: 'worker / bare subscriber', value: ratio, unit: 'x', target: atLeast(ratio, 0.8) });
  results.add({ section, name: 'e2e_worker_latency100_msgs_per_s', label: 'worker, 100 ms per insert request', value: rate(slow), unit: 'msgs/s' });
  results.add({
    section,
    name: 'e2e_worker_latency100_vs_bare_ratio',
    label: 'worker at 100 ms inserts / bare subscriber',
    value: slowRatio,
    unit: 'x',
    target: atLeast(slowRatio, 0.8),
  });
  results.add({
    section,
    name: 'e2e_worker_cpu_us_per_msg',
    label: 'worker process CPU per message',
    value: median(worker.map((w) => w.cpuMicrosPerMessage)),
    unit: 'us/msg',
  });
  results.add({
    section,
    name: 'e2e_bare_cpu_us_per_msg',
    label: 'bare subscriber process CPU per message',
    value: median(bare.map((w) => w.cpuMicrosPerMessage)),
    unit: 'us/msg',
  });
  results.add({
    section,
    name: 'e2e_machine_busy_cores',
    label: 'whole machine CPU busy while the worker drained',
    value: median(worker.map((w) => w.machineBusyCores)),
    unit: 'cores',
  });
  results.detail('endToEnd', { messages: n, rounds: options.e2eRounds, bare, worker, workerLatency100: slow });
  return bare;
}

/** Section 5: RSS of the worker process while it drains a large backlog, then over a steady run. */
async function runMemory(env: Environment, results: Results, options: EndToEndOptions): Promise<void> {
  const section = '5 memory';
  const n = options.memoryMessages;
  const { topic, subscriptions } = await env.topic('bench-memory', 1);
  const subscription = subscriptions[0] as string;
  await env.publish(topic, n, 'section 5');
  const { dataset, refs } = env.tables();
  const child = env.startWorker(await env.workerConfig(subscription, dataset));
  try {
    await child.waitForMessage(/^tributary started\.$/, 60_000);
    const drainSamples: Array<{ at: number; stored: number; rss: number }> = [];
    let peak = 0;
    let lastSample = 0;
    const sample = (): void => {
      if (performance.now() - lastSample < 250) return;
      lastSample = performance.now();
      const memory = readMemory(child.pid);
      if (memory === undefined) return;
      peak = Math.max(peak, memory.peakRssBytes);
      drainSamples.push({ at: lastSample, stored: env.stored(dataset).stored, rss: memory.rssBytes });
    };
    const t0 = performance.now();
    await env.waitForRows(dataset, n, 1_800_000, sample);
    const drainSeconds = (performance.now() - t0) / 1000;
    // Steady: the middle of the drain, once the first 20 % is through and before the tail.
    const middle = drainSamples.filter((s) => s.stored >= 0.2 * n && s.stored <= 0.9 * n).map((s) => s.rss);
    const steady = median(middle.length > 0 ? middle : drainSamples.map((s) => s.rss));
    const memory = readMemory(child.pid);
    if (memory) peak = Math.max(peak, memory.peakRssBytes);
    results.add({ section, name: 'memory_backlog_messages', label: 'backlog drained', value: n, unit: 'messages' });
    results.add({ section, name: 'memory_drain_msgs_per_s', label: 'drain rate', value: n / drainSeconds, unit: 'msgs/s' });
    results.add({
      section,
      name: 'memory_peak_rss_mb',
      label: 'peak RSS of the worker (VmHWM)',
      value: peak / MiB,
      unit: 'MB',
      target: atMost(peak / MiB, 300),
    });
    results.add({ section, name: 'memory_steady_rss_mb', label: 'median RSS, 20-90 % of the drain', value: steady / MiB, unit: 'MB' });

    // Steady run: a publisher at a constant rate, the same worker keeping up with it.
    const soakMs = options.soakMinutes * 60_000;
    results.note(
      options.soakMinutes >= 10
        ? `steady run: ${options.soakMinutes} minutes at ${options.soakRate} msgs/s`
        : `steady run: ${options.soakMinutes} minute(s) at ${options.soakRate} msgs/s, shorter than the 10-minute test; run with BENCH_SOAK_MINUTES=10 for it`,
    );
    const publisher = env.pubsub.topic(topic.name, { batching: { maxMessages: 1_000, maxMilliseconds: 10 } });
    const soakSamples: Array<{ at: number; rss: number }> = [];
    const soakStart = performance.now();
    let published = 0;
    let confirmed = 0;
    let failed = 0;
    let nextSample = soakStart;
    while (performance.now() - soakStart < soakMs) {
      const due = Math.floor(((performance.now() - soakStart) / 1000) * options.soakRate);
      for (; published < due; published++) {
        env.publishOne(publisher, n + published).then(
          () => confirmed++,
          () => failed++,
        );
      }
      if (performance.now() >= nextSample) {
        nextSample += 1_000;
        const m = readMemory(child.pid);
        if (m) {
          soakSamples.push({ at: performance.now() - soakStart, rss: m.rssBytes });
          peak = Math.max(peak, m.peakRssBytes);
        }
        env.stored(dataset);
      }
      await sleep(20);
    }
    while (confirmed + failed < published) await sleep(20);
    const lagAtEnd = n + confirmed - env.stored(dataset).stored;
    await env.waitForRows(dataset, n + confirmed, 120_000);
    const tenth = Math.max(1, Math.floor(soakSamples.length / 10));
    const first = median(soakSamples.slice(0, tenth).map((s) => s.rss));
    const last = median(soakSamples.slice(-tenth).map((s) => s.rss));
    const growth = (last - first) / MiB;
    results.add({ section, name: 'memory_soak_minutes', label: 'steady run length', value: options.soakMinutes, unit: 'min' });
    results.add({ section, name: 'memory_soak_rss_start_mb', label: 'steady run: median RSS, first tenth', value: first / MiB, unit: 'MB' });
    results.add({ section, name: 'memory_soak_rss_growth_mb', label: 'steady run: RSS growth, last tenth minus first tenth', value: growth, unit: 'MB' });
    // The garbage collector's sawtooth hides a trend from two medians: a fitted line through every
    // sample says more, and its second half says whether growth goes on once the heap has settled.
    const perMinute = (samples: typeof soakSamples): number => slope(samples.map((s) => ({ x: s.at / 60_000, y: s.rss / MiB })));
    results.add({
      section,
      name: 'memory_soak_rss_trend_mb_per_min',
      label: 'steady run: RSS trend, least squares over all samples',
      value: perMinute(soakSamples),
      unit: 'MB/min',
    });
    results.add({
      section,
      name: 'memory_soak_rss_trend_second_half_mb_per_min',
      label: 'steady run: RSS trend, least squares over the second half',
      value: perMinute(soakSamples.slice(Math.floor(soakSamples.length / 2))),
      unit: 'MB/min',
    });
    results.add({
      section,
      name: 'memory_soak_backlog_at_end',
      label: 'steady run: messages not yet inserted when publishing stopped',
      value: lagAtEnd,
      unit: 'messages',
    });
    results.add({
      section,
      name: 'memory_peak_rss_overall_mb',
      label: 'peak RSS over drain and steady run',
      value: peak / MiB,
      unit: 'MB',
      target: atMost(peak / MiB, 300),
    });
    if (failed > 0) results.note(`steady run: ${failed} publishes failed`);
    results.detail('memory', {
      backlog: n,
      drainSeconds,
      drainSamples: drainSamples.map((s) => ({ t: Math.round(s.at - t0), stored: s.stored, rssMB: Math.round(s.rss / MiB) })),
      soakSamples: soakSamples.map((s) => ({ t: Math.round(s.at), rssMB: Math.round(s.rss / MiB) })),
      soakPublished: confirmed,
    });
  } finally {
    await stopChild(child);
    env.dropTables(refs);
    await topic.delete().catch(() => undefined);
  }
}

/** Section 6: SIGTERM with full batches waiting on slow inserts; how long until the process exits. */
async function runShutdown(env: Environment, results: Results): Promise<void> {
  const section = '6 shutdown';
  const rounds = 3;
  const latencyMs = 1_000;
  const { topic, subscriptions } = await env.topic('bench-shutdown', rounds);
  await env.publish(topic, 20_000, 'section 6');
  const measured: Array<{ exitMs: number; code: number | null; inFlight: number; insertedAfterSignal: number }> = [];
  env.bigquery.setLatency(latencyMs);
  try {
    for (const subscription of subscriptions) {
      const { dataset, refs } = env.tables();
      const child = env.startWorker(await env.workerConfig(subscription, dataset));
      try {
        await child.waitForMessage(/^tributary started\.$/, 60_000);
        // Wait for the first inserts to land, then for a full set of requests to be in flight again.
        await env.waitForRows(dataset, 1, 60_000);
        const deadline = Date.now() + 5_000;
        while (env.insertsInFlight() < 4 && Date.now() < deadline) await sleep(10);
        const inFlight = env.insertsInFlight();
        const before = env.stored(dataset).stored;
        const t0 = performance.now();
        child.process.kill('SIGTERM');
        const code = await child.exit;
        const exitMs = performance.now() - t0;
        measured.push({ exitMs, code, inFlight, insertedAfterSignal: env.stored(dataset).stored - before });
      } finally {
        await stopChild(child);
        env.dropTables(refs);
      }
    }
  } finally {
    env.bigquery.setLatency(0);
    await topic.delete().catch(() => undefined);
  }
  const exitMs = median(measured.map((m) => m.exitMs));
  results.add({ section, name: 'shutdown_exit_ms', label: `SIGTERM to exit, insert requests in flight at ${latencyMs} ms each`, value: exitMs, unit: 'ms' });
  results.add({
    section,
    name: 'shutdown_inserts_in_flight',
    label: 'insert requests in flight at SIGTERM',
    value: median(measured.map((m) => m.inFlight)),
    unit: 'requests',
  });
  results.add({
    section,
    name: 'shutdown_rows_inserted_after_signal',
    label: 'rows inserted between SIGTERM and exit',
    value: median(measured.map((m) => m.insertedAfterSignal)),
    unit: 'rows',
  });
  results.add({
    section,
    name: 'shutdown_clean_exits',
    label: 'exits with code 0 (everything settled)',
    value: measured.filter((m) => m.code === 0).length,
    unit: `of ${rounds}`,
  });
  results.detail('shutdown', { latencyMs, rounds: measured });
}

/** Section 7: one worker process against two on the same subscription. */
async function runScaleOut(env: Environment, results: Results, options: EndToEndOptions, bare: Drain[]): Promise<void> {
  const section = '7 scale-out';
  const n = options.scaleMessages;
  const { topic, subscriptions } = await env.topic('bench-scale', 2);
  await env.publish(topic, n, 'section 7');
  const one = await drainWorkers(env, subscriptions[0] as string, n, 1);
  process.stdout.write(`  section 7: one worker ${Math.round(one.msgsPerSecond)} msgs/s\n`);
  const two = await drainWorkers(env, subscriptions[1] as string, n, 2);
  process.stdout.write(`  section 7: two workers ${Math.round(two.msgsPerSecond)} msgs/s\n`);
  await topic.delete().catch(() => undefined);
  results.add({ section, name: 'scale_one_worker_msgs_per_s', label: `one worker process, ${n} backlog`, value: one.msgsPerSecond, unit: 'msgs/s' });
  results.add({ section, name: 'scale_two_workers_msgs_per_s', label: 'two worker processes, same subscription', value: two.msgsPerSecond, unit: 'msgs/s' });
  results.add({ section, name: 'scale_two_vs_one_ratio', label: 'two workers / one worker', value: two.msgsPerSecond / one.msgsPerSecond, unit: 'x' });
  results.add({ section, name: 'scale_machine_busy_cores', label: 'whole machine CPU busy with two workers', value: two.machineBusyCores, unit: 'cores' });
  results.add({ section, name: 'scale_workers_cores', label: 'CPU of the two worker processes together', value: two.childCores, unit: 'cores' });
  const ceiling = bare.length > 0 ? median(bare.map((b) => b.msgsPerSecond)) : undefined;
  const gain = two.msgsPerSecond / one.msgsPerSecond;
  const busy = Math.round(two.machineBusyCores * 10) / 10;
  const bareText = ceiling === undefined ? '' : `; one bare ack-only subscriber drained ${Math.round(ceiling)} msgs/s in section 4`;
  results.note(
    gain >= 1.2
      ? `scale-out: two workers drained ${gain.toFixed(2)}x as fast as one, so one process's streaming pull, not the emulator, limited a single worker${bareText}; ` +
          `the machine was ${busy} of 2 cores busy with the emulator, the BigQuery test server and both workers on it, so more workers would soon be limited by the cores, not by tributary`
      : `scale-out: a second worker added ${Math.round((gain - 1) * 100)} %: the machine was ${busy} of 2 cores busy, shared by the emulator, the BigQuery test server and both workers${bareText}`,
  );
  results.detail('scaleOut', { messages: n, one, two });
}

export async function runEndToEnd(results: Results, options: EndToEndOptions): Promise<void> {
  process.stdout.write('Starting the Pub/Sub emulator and the BigQuery test server...\n');
  results.note(
    `sections 4-7: worker and bare subscriber both run with flowControl.maxMessages ${FLOW_CONTROL_MESSAGES}; ` +
      'the emulator (a JVM) and the BigQuery test server (in the benchmark process) share the same cores with them',
  );
  const env = await Environment.start();
  try {
    // The emulator is a JVM: its first drains run before the JIT has caught up. Neither side of a
    // ratio should pay for that, so one warm-up drain of each comes first and is not counted.
    const warmUp = await env.topic('bench-warm-up', 2);
    await env.publish(warmUp.topic, 20_000, 'warm-up');
    await drainBare(env, warmUp.subscriptions[0] as string, 20_000);
    await drainWorkers(env, warmUp.subscriptions[1] as string, 20_000);
    await warmUp.topic.delete().catch(() => undefined);
    let bare: Drain[] = [];
    if (options.sections.has(4)) bare = await runThroughput(env, results, options);
    if (options.sections.has(6)) await runShutdown(env, results);
    if (options.sections.has(7)) await runScaleOut(env, results, options, bare);
    // Last: the large backlog leaves the emulator's heap at its fullest.
    if (options.sections.has(5)) await runMemory(env, results, options);
  } finally {
    await env.close();
  }
}
