import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PubSub } from '@google-cloud/pubsub';
import { BigQuerySink } from './adapters/bigquery-sink.js';
import { BigQueryTables } from './adapters/bigquery-tables.js';
import { PubSubDeadLetterPublisher } from './adapters/pubsub-dead-letter.js';
import { PubSubSource, type SourceLost } from './adapters/pubsub-source.js';
import { AutoSchemaRegistry, ConfluentSchemaRegistry, DirectorySchemaRegistry, PubSubSchemaRegistry } from './adapters/schema-registries.js';
import { routeShare, type Config } from './config.js';
import { Dispatcher, type MetadataColumns } from './core/dispatcher.js';
import { systemClock, type Clock, type DeadLetterPublisher, type Logger } from './core/ports.js';
import { RoutePipeline } from './core/route/route-pipeline.js';
import type { Sink } from './core/sink.js';
import { createRouter } from './core/router.js';
import { SchemaCache, type SchemaRegistry } from './core/schema-cache.js';
import { Settler } from './core/settler.js';
import type { TableEvolver } from './core/table-evolver.js';
import { TableValidators } from './core/table-validators.js';
import { Metrics } from './ops/metrics.js';
import { startHttpServer } from './ops/http-server.js';
import { packageVersion } from './package-version.js';

/** Table schemas are re-read this often even without a reason to. */
const TABLE_SCHEMA_TTL_MS = 5 * 60_000;

export interface Worker {
  readonly metrics: Metrics;
  readonly port: number;
  /** Stops pulling, settles what is in flight within the drain timeout, closes everything. */
  stop(): Promise<{ drained: boolean }>;
  /** Resolves when a subscription's stream closed for good and could not be reopened: the worker must exit. */
  readonly lost: Promise<SourceLost>;
}

export class StartupError extends Error {}

export function createRegistry(config: Config, pubsub: PubSub): SchemaRegistry {
  const reg = config.registry;
  const confluent = reg.confluent ? new ConfluentSchemaRegistry(reg.confluent) : undefined;
  const directory = reg.directory ? new DirectorySchemaRegistry(reg.directory) : undefined;
  switch (reg.kind) {
    case 'pubsub':
      return new PubSubSchemaRegistry(pubsub);
    case 'confluent':
      return confluent as ConfluentSchemaRegistry;
    case 'directory':
      return directory as DirectorySchemaRegistry;
    case 'auto':
      return new AutoSchemaRegistry({ pubsub: new PubSubSchemaRegistry(pubsub), ...(confluent ? { confluent } : {}), ...(directory ? { directory } : {}) });
  }
}

/** The destination named by `sink`; DuckDB is loaded only when asked for (optional dependency). */
export async function createSink(config: Config): Promise<Sink> {
  if (config.sink === 'duckdb') {
    const { createDuckDbSink, DuckDbUnavailableError } = await import('./adapters/duckdb-sink.js');
    try {
      return await createDuckDbSink(config);
    } catch (err) {
      if (err instanceof DuckDbUnavailableError) throw new StartupError(err.message);
      throw err;
    }
  }
  return new BigQuerySink({ projectId: config.bigquery.projectId ?? config.projectId, apiEndpoint: config.bigquery.apiEndpoint, timeoutMs: config.bigquery.timeoutMs });
}

function isTableEvolver(sink: Sink): sink is Sink & TableEvolver {
  const candidate = sink as Partial<TableEvolver>;
  return typeof candidate.evolve === 'function' && typeof candidate.createTable === 'function';
}

/**
 * What adds columns and creates tables for routes that ask for it: the sink itself when it manages
 * its tables (DuckDB), the BigQuery table manager for insertAll. Undefined when no route asks.
 */
export function createTableEvolver(config: Config, sink: Sink, metrics: Metrics, logger: Logger): TableEvolver | undefined {
  if (!config.routes.some((r) => r.schemaEvolution === 'add-columns' || r.createTable !== undefined)) return undefined;
  if (isTableEvolver(sink)) return sink;
  if (sink instanceof BigQuerySink) {
    // Routes log each change once with its diff; the manager only counts its attempts.
    return new BigQueryTables({ projectId: config.bigquery.projectId ?? config.projectId, apiEndpoint: config.bigquery.apiEndpoint, timeoutMs: config.bigquery.timeoutMs, observer: metrics });
  }
  logger.warn({ routes: config.routes.filter((r) => r.schemaEvolution === 'add-columns' || r.createTable !== undefined).map((r) => r.name) }, 'The sink cannot change tables: schemaEvolution and createTable are ignored.');
  return undefined;
}

export interface WorkerDeps {
  logger: Logger;
  /** For tests: a sink other than BigQuery. */
  sink?: Sink;
}

/** What the worker and the dead-letter replay share: decode → route → batch → insert → settle. */
export interface Pipeline {
  readonly dispatcher: Dispatcher;
  readonly routes: ReadonlyMap<string, { pipeline: RoutePipeline; metadata: MetadataColumns }>;
  readonly settler: Settler;
}

export interface PipelineDeps {
  logger: Logger;
  sink: Sink;
  deadLetters: DeadLetterPublisher;
  /** The Pub/Sub schema service is reached through it. */
  pubsub: PubSub;
  metrics: Metrics;
  clock?: Clock;
}

export function createPipeline(config: Config, deps: PipelineDeps): Pipeline {
  const { logger, sink, metrics } = deps;
  const clock = deps.clock ?? systemClock;
  const settler = new Settler(deps.deadLetters, metrics, clock, logger);
  const validators = new TableValidators(sink, TABLE_SCHEMA_TTL_MS, clock.now);
  const schemas = new SchemaCache(createRegistry(config, deps.pubsub), config.registry.cacheMaxEntries, {
    hit: () => metrics.schemaCacheHit(),
    miss: () => metrics.schemaCacheMisses.inc(),
    fetched: (registry, seconds, ok) => metrics.schemaFetchDuration.observe({ registry, outcome: ok ? 'ok' : 'error' }, seconds),
  });
  metrics.watchSchemaCache(() => schemas.size);
  const evolver = createTableEvolver(config, sink, metrics, logger);
  const routes = new Map<string, { pipeline: RoutePipeline; metadata: MetadataColumns }>();
  for (const route of config.routes) {
    const pipeline = new RoutePipeline(
      {
        name: route.name,
        table: route.table,
        batch: route.batch,
        maxInFlightBatches: route.maxInFlightBatches,
        unknownFields: route.unknownFields,
        retry: config.retry,
        probeIntervalMs: config.bigquery.probeIntervalMs,
        maxUnsettledRows: routeShare(config, route),
        schemaEvolution: route.schemaEvolution,
        createTable: route.createTable,
      },
      { sink, validators, settler, observer: metrics, clock, logger, evolver },
    );
    routes.set(route.name, { pipeline, metadata: route.metadata });
  }
  const dispatcher = new Dispatcher({
    schemas,
    router: createRouter(config.routing, config.routes),
    routes,
    settler,
    observer: metrics,
    clock,
    logger,
    retry: config.retry,
    flushAtUnsettled: config.flowControl.maxMessages,
  });
  return { dispatcher, routes, settler };
}

export async function startWorker(config: Config, deps: WorkerDeps): Promise<Worker> {
  const { logger } = deps;
  const pubsub = new PubSub({ projectId: config.projectId });
  const metrics = new Metrics({ version: packageVersion() });
  const sink = deps.sink ?? (await createSink(config));
  const deadLetters = new PubSubDeadLetterPublisher(pubsub, config.deadLetter.topic);
  await checkDeadLetterTopic(deadLetters, config.deadLetter.topic, logger);
  const { dispatcher, routes } = createPipeline(config, { logger, sink, deadLetters, pubsub, metrics });

  const subscriptions = [...(config.subscription ? [config.subscription] : []), ...config.routes.flatMap((r) => (r.subscription ? [r.subscription] : []))];
  let reportLost: (lost: SourceLost) => void = () => undefined;
  const lost = new Promise<SourceLost>((resolve) => {
    reportLost = resolve;
  });
  const sources = subscriptions.map(
    (name) =>
      new PubSubSource(
        pubsub,
        { subscription: name, maxMessages: config.flowControl.maxMessages, maxBytes: config.flowControl.maxBytes, reopenWindowMs: config.shutdown.reopenWindowMs },
        (envelope) => dispatcher.handle(envelope),
        metrics,
        logger,
        reportLost,
      ),
  );
  for (const source of sources) metrics.watchInFlight(() => source.inFlightSnapshot());
  let draining = false;
  const server: Server = await startHttpServer(config.server, metrics.registry, {
    ready: () => {
      const routeStates = [...routes.values()].map((r) => r.pipeline.status());
      const subs = sources.map((s) => ({ subscription: s.name, open: s.isOpen, error: s.error }));
      const ready = !draining && sources.every((s) => s.isOpen);
      return { ready, body: { status: ready ? 'ready' : draining ? 'draining' : 'not ready', subscriptions: subs, routes: routeStates } };
    },
    status: () => ({ routes: [...routes.values()].map((r) => r.pipeline.status()), unsettled: dispatcher.unsettled }),
    live: () => {
      const closed = sources.filter((s) => !s.live).map((s) => ({ subscription: s.name, error: s.error }));
      return closed.length === 0 ? { live: true } : { live: false, reason: 'subscription stream closed', subscriptions: closed };
    },
  });
  try {
    for (const source of sources) {
      try {
        await source.start();
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 5) throw new StartupError(`subscription ${source.name} does not exist`);
        throw new StartupError(`cannot open subscription ${source.name}: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    await Promise.allSettled(sources.map((s) => s.close()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await pubsub.close();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  logger.info({ subscriptions, routes: config.routes.map((r) => r.name), port }, 'tributary started.');

  let stopping: Promise<{ drained: boolean }> | undefined;
  const stop = (): Promise<{ drained: boolean }> => {
    stopping ??= (async () => {
      draining = true;
      logger.info({ unsettled: dispatcher.unsettled, drainTimeoutMs: config.shutdown.drainTimeoutMs }, 'Draining: pulling stopped, settling what is in flight.');
      // Nothing new is processed from here on; the streams stay open until the drain is over so
      // that its acks are delivered, then close() nacks what is left.
      for (const source of sources) source.pause();
      const drained = await drainWithin(dispatcher, config.shutdown.drainTimeoutMs, () =>
        logger.warn({ unsettled: dispatcher.unsettled }, 'Drain timeout: what is left is nacked for redelivery.'),
      );
      await Promise.allSettled(sources.map((s) => s.close()));
      await deadLetters.close().catch(() => undefined);
      await pubsub.close().catch(() => undefined);
      // Only what the worker opened itself; a sink passed in belongs to the caller.
      if (deps.sink === undefined) await sink.close?.().catch((err: unknown) => logger.warn({ err: String(err) }, 'Closing the sink failed.'));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      logger.info({ drained }, 'tributary stopped.');
      return { drained };
    })();
    return stopping;
  };
  return { metrics, port, stop, lost };
}

/**
 * Settles everything in flight, or after `timeoutMs` calls `onTimeout` and aborts: retries stop
 * waiting and what is left is nacked. Resolves true when everything was settled in time.
 */
export async function drainWithin(dispatcher: Dispatcher, timeoutMs: number, onTimeout: () => void): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const result = await Promise.race([dispatcher.drain().then(() => 'drained' as const), deadline]);
  clearTimeout(timer);
  if (result === 'drained') return true;
  onTimeout();
  dispatcher.abort();
  return false;
}

export async function checkDeadLetterTopic(deadLetters: PubSubDeadLetterPublisher, topic: string, logger: Logger): Promise<void> {
  try {
    if (!(await deadLetters.exists())) throw new StartupError(`dead-letter topic ${topic} does not exist`);
  } catch (err) {
    if (err instanceof StartupError) throw err;
    // Least privilege grants publish, not get: an unreadable topic is not a reason to refuse to run.
    logger.warn({ topic, err: (err as Error).message }, 'Cannot check the dead-letter topic; continuing.');
  }
}
