import { readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { PubSub, type Message } from '@google-cloud/pubsub';
import { createDuckDbSink, DuckDbUnavailableError, type DuckDbSink } from '../adapters/duckdb-sink.js';
import { startWorker, type Worker } from '../app.js';
import { loadConfig, type Config } from '../config.js';
import type { AvroSchema } from '../core/avro-type.js';
import { renderSchemaDiff } from '../core/schema-diff.js';
import type { PreparedRow, Sink } from '../core/sink.js';
import type { TableEvolution, TableEvolver } from '../core/table-evolver.js';
import type { TableLayout } from '../core/table-layout.js';
import { formatTableRef, type TableField, type TableRef } from '../core/table-schema.js';
import { startPubSubEmulator } from '../dev/pubsub-emulator.js';
import { ConfigError, type ErrorCode } from '../errors.js';
import { createLogger } from '../ops/logger.js';
import { formatDeadLetters, formatRows, formatRouteSummary, newTally, type DeadLetterSeen, type RouteTally } from './demo-report.js';
import { provision } from './demo-provisioning.js';
import { demoStream, type DemoMessage } from './demo-stream.js';
import { ProgressBar } from './progress-bar.js';

const USAGE = `Usage: npm run demo -- [options]

Runs tributary end to end on this machine: the Pub/Sub emulator (started on a free port unless
PUBSUB_EMULATOR_HOST is set), a mixed stream of Avro log events, the worker, and a DuckDB file.

Options:
  --keep             leave the worker running (with /metrics) after the summary, until Ctrl-C
  --messages N       good messages to publish (default 6000); six poison ones come on top. A tenth
                     of them, access events of a later schema revision that adds a field, come
                     after the rest has settled: the worker adds the column
  --config FILE      default examples/demo/tributary.yaml (next to it: pubsub.json)
  -h, --help         this help
`;

/** Names the stream generator needs; they are also in examples/demo/pubsub.json. */
const SCHEMA_TOPIC = 'demo-access';
const FRAMED_TOPIC = 'demo-logs';
const ACCESS_SCHEMA = 'demo-access';
/** The route whose table evolves: its config says schemaEvolution: add-columns. */
const EVOLVING_ROUTE = 'access';
const CONFLUENT_IDS = { audit: 1, metricV1: 2, metricV2: 3 };
const WATCH_SUBSCRIPTION = 'demo-dead-letter-watch';
/** Messages dead-lettered before a route took them: undecodable, unknown schema, unrouted. */
const NO_ROUTE = '(before routing)';
/** Far above what the stream needs on 2 cores; a run that takes longer is broken, not slow. */
const SETTLE_TIMEOUT_MS = 90_000;
const PUBLISH_CHUNK = 500;

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function shortName(path: string): string {
  return path.split('/').pop() ?? path;
}

export async function runDemo(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        keep: { type: 'boolean', default: false },
        messages: { type: 'string', default: '6000' },
        config: { type: 'string', default: 'examples/demo/tributary.yaml' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 64;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const messageCount = Number(args.messages);
  if (!Number.isInteger(messageCount) || messageCount < 10) {
    process.stderr.write('--messages must be an integer of at least 10\n');
    return 64;
  }

  // Clean-ups run last-in first-out on every way out: success, error, Ctrl-C.
  const cleanups: Array<() => Promise<unknown>> = [];
  let cleaning: Promise<void> | undefined;
  const cleanUp = (): Promise<void> =>
    (cleaning ??= (async () => {
      for (let c = cleanups.pop(); c !== undefined; c = cleanups.pop()) {
        await c().catch((err: unknown) => process.stderr.write(`clean-up: ${(err as Error).message}\n`));
      }
    })());
  let interrupted = false;
  let keepWaiting: (() => void) | undefined;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (keepWaiting) {
      keepWaiting();
      return;
    }
    if (signals > 1) process.exit(130);
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping the worker and the emulator.\n`);
    void cleanUp().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const code = await demo(args.config, messageCount, args.keep, cleanups, (wake) => {
      keepWaiting = wake;
    });
    return interrupted ? 130 : code;
  } catch (err) {
    // Closing everything under the running demo makes it fail; that is the interruption, not an error.
    if (interrupted) return 130;
    if (err instanceof ConfigError) process.stderr.write(`${args.config}: ${err.problems.join('; ')}\n`);
    else if (err instanceof DuckDbUnavailableError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`The demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await cleanUp();
  }
}

async function demo(
  configPath: string,
  messageCount: number,
  keep: boolean,
  cleanups: Array<() => Promise<unknown>>,
  onKeep: (wake: () => void) => void,
): Promise<number> {
  const startedAt = Date.now();
  say('tributary demo: Pub/Sub emulator -> Avro by schema id -> routes -> DuckDB');
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  const config: Config = await loadConfig(configPath, process.env);
  if (config.sink !== 'duckdb') throw new ConfigError([`sink: the demo needs sink: duckdb, the config says ${config.sink}`]);

  let host = process.env.PUBSUB_EMULATOR_HOST;
  if (host === undefined || host === '') {
    const emulator = await startPubSubEmulator({ killOnSignals: false });
    cleanups.push(() => emulator.stop());
    host = emulator.host;
    process.env.PUBSUB_EMULATOR_HOST = host;
    say(`  Pub/Sub emulator   ${host} (started for this run, pid ${emulator.pid ?? '?'}; stopped at the end)`);
  } else {
    say(`  Pub/Sub emulator   ${host} (from PUBSUB_EMULATOR_HOST)`);
  }

  const pubsub = new PubSub({ projectId: config.projectId });
  cleanups.push(() => pubsub.close());
  const manifestPath = join(dirname(configPath), 'pubsub.json');
  const provisioned = await provision(pubsub, manifestPath, config.projectId, [{ topic: shortName(config.deadLetter.topic), name: WATCH_SUBSCRIPTION }]);
  const accessRevisions = provisioned.definitions.get(ACCESS_SCHEMA) ?? [];
  if (accessRevisions.length !== 3) throw new Error(`${manifestPath}: the schema ${ACCESS_SCHEMA} needs three revisions`);
  const evolving = config.routes.find((r) => r.name === EVOLVING_ROUTE);
  if (evolving?.schemaEvolution !== 'add-columns') throw new ConfigError([`routes.${EVOLVING_ROUTE}.schemaEvolution: the demo needs add-columns`]);
  say(
    `  provisioned        schema ${ACCESS_SCHEMA} (revisions ${(provisioned.revisions.get(ACCESS_SCHEMA) ?? []).join(', ')}), topics and subscriptions of ${manifestPath}`,
  );

  // Every run starts with an empty file, so the counts below are this run's.
  const dbPath = resolve(config.duckdb.path);
  await rm(config.duckdb.path, { force: true });
  await rm(`${config.duckdb.path}.wal`, { force: true });
  const sink = await createDuckDbSink(config);
  cleanups.push(() => sink.close());
  say(`  DuckDB             ${config.duckdb.path} (tables ${config.routes.map((r) => `${r.table.datasetId}.${r.table.tableId}`).join(', ')})`);

  // --- what the demo observes: rows the sink accepted, dead letters on a subscription of its own
  const tallies = new Map<string, RouteTally>(config.routes.map((r) => [r.name, newTally(r.name)]));
  tallies.set(NO_ROUTE, newTally(NO_ROUTE));
  const routeOfTable = new Map(config.routes.map((r) => [formatTableRef(r.table), r]));
  const settled = new Set<string>();
  let remaining: Set<string> | undefined;
  let progress: ProgressBar | undefined;
  let published = 0;
  let wakeSettled: (() => void) | undefined;
  const settle = (id: string, tally: RouteTally, at: number): boolean => {
    if (settled.has(id)) return false;
    settled.add(id);
    tally.lastSettleAt = at;
    if (remaining) {
      remaining.delete(id);
      progress?.update(published - remaining.size);
      if (remaining.size === 0) wakeSettled?.();
    }
    return true;
  };
  const evolutions: Array<{ table: string; schemaId: string; evolution: TableEvolution }> = [];
  const observed: Sink & TableEvolver = {
    name: sink.name,
    limits: sink.limits,
    prepare: (id, row) => sink.prepare(id, row),
    async write(table: TableRef, rows: readonly PreparedRow[]) {
      const outcome = await sink.write(table, rows);
      const failed = new Set(outcome.failures.map((f) => f.index));
      const at = Date.now();
      const route = routeOfTable.get(formatTableRef(table));
      const tally = tallies.get(route?.name ?? NO_ROUTE) ?? newTally(NO_ROUTE);
      const publishColumn = route?.metadata.publishTime;
      rows.forEach((row, i) => {
        if (failed.has(i) || !settle(row.id, tally, at)) return;
        tally.inserted++;
        const publishTime = publishColumn ? row.row[publishColumn] : undefined;
        if (typeof publishTime === 'string') tally.ages.push(at - Date.parse(publishTime));
      });
      return outcome;
    },
    getTableSchema: (table: TableRef) => sink.getTableSchema(table),
    async evolve(table: TableRef, schemaId: string, desired: readonly TableField[]) {
      const evolution = await sink.evolve(table, schemaId, desired);
      if (evolution.changed) evolutions.push({ table: `${table.datasetId}.${table.tableId}`, schemaId, evolution });
      return evolution;
    },
    createTable: (table: TableRef, fields: readonly TableField[], layout?: TableLayout) => sink.createTable(table, fields, layout),
  };
  const deadLetters: DeadLetterSeen[] = [];
  const watch = pubsub.subscription(WATCH_SUBSCRIPTION);
  watch.on('message', (message: Message) => {
    const a = message.attributes;
    message.ack();
    const sourceId = a.tributary_source_message_id ?? message.id;
    const tally = tallies.get(a.tributary_route ?? NO_ROUTE) ?? (tallies.get(NO_ROUTE) as RouteTally);
    const failedAt = Date.parse(a.tributary_failed_at ?? '');
    if (!settle(sourceId, tally, failedAt)) return;
    const code = a.tributary_error_code ?? 'UNKNOWN';
    tally.deadLettered.set(code, (tally.deadLettered.get(code) ?? 0) + 1);
    const ageMs = failedAt - Date.parse(a.tributary_source_publish_time ?? '');
    tally.ages.push(ageMs);
    deadLetters.push({ sourceId, code, route: a.tributary_route, message: a.tributary_error_message ?? '', ageMs });
  });
  watch.on('error', (err: Error) => process.stderr.write(`dead-letter watch: ${err.message}\n`));
  cleanups.push(() => watch.close());

  const logger = createLogger(config.log.level, process.stderr);
  const worker: Worker = await startWorker(config, { logger, sink: observed });
  let workerStopped = false;
  cleanups.push(async () => {
    if (!workerStopped) await worker.stop();
  });
  say(`  worker             routes ${config.routes.map((r) => r.name).join(', ')}; metrics on http://127.0.0.1:${worker.port}/metrics`);
  say('');

  // --- publish, in two parts: the mixed stream, then (once it has settled) the later revision
  const registryDir = config.registry.directory ?? join(dirname(configPath), 'registry');
  const readRegistered = async (id: number): Promise<AvroSchema> => JSON.parse(await readFile(join(registryDir, `${id}.avsc`), 'utf8')) as AvroSchema;
  const [rev1, rev2, rev3] = accessRevisions.map((text) => JSON.parse(text) as AvroSchema) as [AvroSchema, AvroSchema, AvroSchema];
  const stream = demoStream(
    {
      accessRevisions: [rev1, rev2, rev3],
      audit: await readRegistered(CONFLUENT_IDS.audit),
      metricV1: await readRegistered(CONFLUENT_IDS.metricV1),
      metricV2: await readRegistered(CONFLUENT_IDS.metricV2),
    },
    { messages: messageCount, schemaTopic: SCHEMA_TOPIC, framedTopic: FRAMED_TOPIC, confluentIds: CONFLUENT_IDS },
  );
  const topics = new Map([SCHEMA_TOPIC, FRAMED_TOPIC].map((name) => [name, pubsub.topic(name, { batching: { maxMessages: 250, maxMilliseconds: 5 } })]));
  const expectedDead = new Map<string, ErrorCode>();
  const ids: string[] = [];
  const routeOfLogType = new Map(config.routes.flatMap((r) => r.match.map((m) => [m, r.name] as const)));
  const publish = async (messages: DemoMessage[], label: string): Promise<string[]> => {
    const partIds: string[] = [];
    const bar = new ProgressBar(label, messages.length);
    for (let i = 0; i < messages.length; i += PUBLISH_CHUNK) {
      const chunk = messages.slice(i, i + PUBLISH_CHUNK);
      const chunkIds = await Promise.all(
        chunk.map((m: DemoMessage) => (topics.get(m.topic) as ReturnType<PubSub['topic']>).publishMessage({ data: m.data, attributes: m.attributes })),
      );
      const now = Date.now();
      chunk.forEach((m, k) => {
        const id = chunkIds[k] as string;
        partIds.push(id);
        if (m.poison) expectedDead.set(id, m.poison);
        const tally = tallies.get(routeOfLogType.get(m.logType) ?? NO_ROUTE);
        if (tally && tally.firstPublishAt === undefined) tally.firstPublishAt = now;
      });
      bar.update(partIds.length);
    }
    ids.push(...partIds);
    published = ids.length;
    const poisoned = partIds.filter((id) => expectedDead.has(id)).length;
    bar.done(poisoned > 0 ? `(${poisoned} of them poison)` : '');
    return partIds;
  };
  // Waits until every message of the part is inserted or dead-lettered.
  const settleAll = async (partIds: string[]): Promise<void> => {
    progress = new ProgressBar('settled', published);
    remaining = new Set(partIds.filter((id) => !settled.has(id)));
    progress.update(published - remaining.size);
    if (remaining.size > 0) {
      await new Promise<void>((resolveSettled, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(`${remaining?.size ?? '?'} of ${published} messages were neither inserted nor dead-lettered within ${SETTLE_TIMEOUT_MS / 1000} s`),
            ),
          SETTLE_TIMEOUT_MS,
        );
        wakeSettled = () => {
          clearTimeout(timer);
          resolveSettled();
        };
      });
    }
    progress.done('(inserted or dead-lettered)');
  };

  await settleAll(await publish(stream.first, 'published'));
  const columnsBefore = (await sink.getTableSchema(evolving.table)).fields.map((f) => f.name);
  const laterIds = await publish(stream.later, 'revision 3');
  await settleAll(laterIds);
  const settledAt = Date.now();

  // --- report
  const inserted = [...tallies.values()].reduce((n, t) => n + t.inserted, 0);
  const dead = deadLetters.length;
  say('');
  say('Per route');
  say(formatRouteSummary([...tallies.values()].filter((t) => t.route !== NO_ROUTE || t.deadLettered.size > 0)));
  say('');
  say(`Dead letters (${dead}; topic ${shortName(config.deadLetter.topic)}, reason in tributary_error_code / tributary_error_message)`);
  say(formatDeadLetters(deadLetters, expectedDead));
  const wrong =
    deadLetters.filter((d) => expectedDead.get(d.sourceId) !== d.code).length +
    [...expectedDead.keys()].filter((id) => !deadLetters.some((d) => d.sourceId === id)).length;
  const conserved = inserted + dead === published && wrong === 0;
  say('');
  say(
    `Conservation: published ${published} = inserted ${inserted} + dead-lettered ${dead}${conserved ? '; every poison message dead-lettered with its reason' : ' -- MISMATCH'}`,
  );
  say(
    `Wall time: ${((settledAt - startedAt) / 1000).toFixed(1)} s to settle everything (${Math.round((published * 1000) / Math.max(1, settledAt - startedAt))} messages/s including start-up)`,
  );
  say('');
  const deadIds = new Set(deadLetters.map((d) => d.sourceId));
  const laterDead = laterIds.filter((id) => deadIds.has(id)).length;
  const evolved = await printEvolution(sink, evolving.table, columnsBefore, evolutions, { published: laterIds.length, deadLettered: laterDead });
  say('');
  await printTables(sink, config, dbPath);
  printHowTo(config, configPath, host);

  if (keep) {
    say('');
    say(`The worker keeps running: http://127.0.0.1:${worker.port}/metrics  /readyz  /status`);
    say(`  publish more with PUBSUB_EMULATOR_HOST=${host}; Ctrl-C stops the worker (and the emulator, if the demo started it).`);
    await new Promise<void>((wake) => onKeep(wake));
    say('Stopping.');
  }
  workerStopped = true;
  const { drained } = await worker.stop();
  return conserved && evolved && drained ? 0 : 1;
}

async function printTables(sink: DuckDbSink, config: Config, dbPath: string): Promise<void> {
  const width = Math.max(80, process.stdout.columns ?? 160);
  say(`Rows in ${dbPath}`);
  for (const route of config.routes) {
    const name = `${route.table.datasetId}.${route.table.tableId}`;
    const quoted = `"${route.table.datasetId}"."${route.table.tableId}"`;
    const [count] = await sink.query(`SELECT count(*)::INTEGER AS n FROM ${quoted}`);
    say(`  ${name}: ${String(count?.n ?? 0)} rows; a few of them:`);
    say(formatRows(await sink.query(`SELECT * FROM ${quoted} LIMIT 3`), width));
  }
}

/**
 * What the later revision did to the table: the change the worker made, the columns, the rows
 * carrying the new ones. True when a column was added and every later row carries a value in it.
 */
async function printEvolution(
  sink: DuckDbSink,
  table: TableRef,
  columnsBefore: string[],
  evolutions: Array<{ table: string; schemaId: string; evolution: TableEvolution }>,
  later: { published: number; deadLettered: number },
): Promise<boolean> {
  const name = `${table.datasetId}.${table.tableId}`;
  const columnsAfter = (await sink.getTableSchema(table)).fields.map((f) => f.name);
  const added = columnsAfter.filter((c) => !columnsBefore.includes(c));
  say(`Schema evolution (route ${EVOLVING_ROUTE}, schemaEvolution: add-columns)`);
  say(
    `  ${later.published} access events of revision 3 of ${ACCESS_SCHEMA}, published after the rest had settled: ${later.published - later.deadLettered} inserted, ${later.deadLettered} dead-lettered`,
  );
  const changes = evolutions.filter((e) => e.table === name);
  if (changes.length === 0) say(`  ${name} was not changed`);
  for (const { schemaId, evolution } of changes) {
    say(`  ${name} changed by the worker for schema ${schemaId}:`);
    for (const line of renderSchemaDiff(evolution.diff)) say(`    ${line}`);
  }
  say(`  columns before: ${columnsBefore.length} (${columnsBefore.join(', ')})`);
  say(`  columns after:  ${columnsAfter.length}${added.length > 0 ? ` (added: ${added.join(', ')})` : ' (none added)'}`);
  const quoted = `"${table.datasetId}"."${table.tableId}"`;
  let everyLaterRow = added.length > 0;
  for (const column of added) {
    const [count] = await sink.query(`SELECT count(${JSON.stringify(column)})::INTEGER AS carrying, count(*)::INTEGER AS total FROM ${quoted}`);
    const carrying = Number(count?.carrying ?? 0);
    if (carrying !== later.published) everyLaterRow = false;
    say(
      `  rows with a value in ${column}: ${carrying} of ${String(count?.total ?? 0)} (the older rows have NULL)${carrying === later.published ? '' : ` -- expected ${later.published}`}`,
    );
  }
  if (added.length > 0) {
    const shown = ['path', 'status', ...added].map((c) => JSON.stringify(c)).join(', ');
    const carrying = added.map((c) => `${JSON.stringify(c)} IS NOT NULL`).join(' OR ');
    say(formatRows(await sink.query(`SELECT ${shown} FROM ${quoted} WHERE ${carrying} LIMIT 2`), Math.max(80, process.stdout.columns ?? 160)));
  }
  return everyLaterRow;
}

function printHowTo(config: Config, configPath: string, host: string): void {
  const db = config.duckdb.path;
  const dl = shortName(config.deadLetter.topic);
  say('');
  say('Query the file (once the demo has exited: a DuckDB file has one writer process at a time):');
  say(`  duckdb ${db} "SELECT status, count(*) AS n FROM logs.access GROUP BY ALL ORDER BY n DESC"`);
  say(
    `  node -e "import('@duckdb/node-api').then(async ({ DuckDBInstance }) => { const c = await (await DuckDBInstance.create('${db}')).connect(); console.table((await c.runAndReadAll('SELECT action, count(*)::INTEGER AS n FROM logs.audit GROUP BY ALL')).getRowObjectsJS()); })"`,
  );
  say(`Replay the dead letters (they wait in the subscription ${dl} while the emulator runs: use --keep, then in another terminal):`);
  say(`  PUBSUB_EMULATOR_HOST=${host} npx tributary replay ${dl} --config ${configPath} --dry-run`);
  say(`  PUBSUB_EMULATOR_HOST=${host} npx tributary replay ${dl} --config ${configPath} --to-topic ${FRAMED_TOPIC} --filter code=ROW_INVALID`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  runDemo(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`The demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
