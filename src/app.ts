import { getHeapStatistics } from 'node:v8';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PubSub } from '@google-cloud/pubsub';
import { BigQuerySink } from './adapters/bigquery-sink.js';
import { createStorageWriteSink } from './adapters/bigquery-storage-write-sink.js';
import { BigQueryTables } from './adapters/bigquery-tables.js';
import { PubSubDeadLetterPublisher } from './adapters/pubsub-dead-letter.js';
import { PubSubSource, type SourceLost } from './adapters/pubsub-source.js';
import { withFingerprintIndex } from './adapters/fingerprint-sources.js';
import { AutoSchemaRegistry, ConfluentSchemaRegistry, DirectorySchemaRegistry, PubSubSchemaRegistry } from './adapters/schema-registries.js';
import { routeShare, type Config, type ResolvedRoute } from './config.js';
import { Dispatcher } from './core/dispatcher.js';
import type { MetadataColumns } from './core/row-metadata.js';
import { systemClock, type Clock, type DeadLetterPublisher, type Logger } from './core/ports.js';
import { RoutePipeline } from './core/route/route-pipeline.js';
import { WindowShare } from './core/route/window-share.js';
import type { Sink } from './core/sink.js';
import { formatTableRef } from './core/table-schema.js';
import { createRouter } from './core/router.js';
import { SchemaCache, type SchemaRegistry } from './core/schema-cache.js';
import { Settler } from './core/settler.js';
import { countedTableEvolver } from './core/counted-table-evolver.js';
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

export function createRegistry(config: Config, pubsub: PubSub, now: () => number = () => Date.now(), logger?: Logger): SchemaRegistry {
  const confluent = config.registry.confluent ? new ConfluentSchemaRegistry(config.registry.confluent) : undefined;
  const { registry } = withFingerprintIndex(
    createIdRegistry(config, pubsub, confluent),
    { projectId: config.projectId, directory: config.registry.directory, ...config.registry.fingerprints },
    { pubsub, confluent, now, ...(logger ? { logger } : {}) },
  );
  return registry;
}

function createIdRegistry(config: Config, pubsub: PubSub, confluent: ConfluentSchemaRegistry | undefined): SchemaRegistry {
  const reg = config.registry;
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

/** The sinks of the configured destination: one per write API in use, shared by the routes that use it. */
export interface SinkSet {
  forRoute(route: Pick<ResolvedRoute, 'writeApi'>): Sink;
  close(): Promise<void>;
}

/** A sink given from outside (tests, the replay's caller): every route writes through it; it is not closed here. */
export function oneSink(sink: Sink): SinkSet {
  return { forRoute: () => sink, close: () => Promise.resolve() };
}

/**
 * The destination named by `sink`: BigQuery through the write API each route asks for (the Storage
 * Write API by default), or DuckDB, loaded only when asked for (optional dependency).
 */
export async function createSinks(config: Config, logger?: Logger): Promise<SinkSet> {
  if (config.sink === 'duckdb') {
    const { createDuckDbSink, DuckDbUnavailableError } = await import('./adapters/duckdb-sink.js');
    let sink: Sink;
    try {
      sink = await createDuckDbSink(config);
    } catch (err) {
      if (err instanceof DuckDbUnavailableError) throw new StartupError(err.message);
      throw err;
    }
    return { forRoute: () => sink, close: () => sink.close?.() ?? Promise.resolve() };
  }
  const projectId = config.bigquery.projectId ?? config.projectId;
  const made = new Map<string, Sink>();
  const make = (api: 'insert-all' | 'storage-write'): Sink => {
    let sink = made.get(api);
    if (sink === undefined) {
      sink =
        api === 'insert-all'
          ? new BigQuerySink({ projectId, apiEndpoint: config.bigquery.apiEndpoint, timeoutMs: config.bigquery.timeoutMs })
          : createStorageWriteSink({
              projectId,
              apiEndpoint: config.bigquery.apiEndpoint,
              storageApiEndpoint: config.bigquery.storageApiEndpoint,
              timeoutMs: config.bigquery.timeoutMs,
              onConnectionFailure: (table, err) =>
                logger?.warn({ table: formatTableRef(table), err: err.message }, 'Storage Write stream failed; reconnecting on the next write.'),
            });
      made.set(api, sink);
    }
    return sink;
  };
  return {
    forRoute: (route) => make(route.writeApi ?? config.bigquery.writeApi),
    close: async () => {
      await Promise.allSettled([...made.values()].map((s) => s.close?.()));
    },
  };
}

function isTableEvolver(sink: Sink): sink is Sink & TableEvolver {
  const candidate = sink as Partial<TableEvolver>;
  return typeof candidate.evolve === 'function' && typeof candidate.createTable === 'function';
}

/**
 * What adds columns and creates tables for routes that ask for it: the sink itself when it manages
 * its tables (DuckDB), the BigQuery table manager for insertAll. Undefined when no route asks.
 */
/**
 * What changes tables for routes that evolve or create them: the sink itself when it can (DuckDB),
 * else one BigQuery table manager per process, whichever write API the routes use, so that one
 * table has at most one change in flight.
 */
export function createTableEvolvers(config: Config, metrics: Metrics, logger: Logger): (sink: Sink) => TableEvolver | undefined {
  const evolving = config.routes.filter((r) => r.schemaEvolution === 'add-columns' || r.createTable !== undefined);
  let tables: BigQueryTables | undefined;
  const counted = new Map<Sink, TableEvolver>();
  let warned = false;
  return (sink) => {
    if (evolving.length === 0) return undefined;
    if (isTableEvolver(sink)) {
      let evolver = counted.get(sink);
      if (evolver === undefined) {
        evolver = countedTableEvolver(sink, metrics);
        counted.set(sink, evolver);
      }
      return evolver;
    }
    if (sink.name === 'insert-all' || sink.name === 'storage-write') {
      // Routes log each change once with its diff; the manager only counts its attempts.
      tables ??= new BigQueryTables({
        projectId: config.bigquery.projectId ?? config.projectId,
        apiEndpoint: config.bigquery.apiEndpoint,
        timeoutMs: config.bigquery.timeoutMs,
        observer: metrics,
      });
      return tables;
    }
    if (!warned) logger.warn({ routes: evolving.map((r) => r.name) }, 'The sink cannot change tables: schemaEvolution and createTable are ignored.');
    warned = true;
    return undefined;
  };
}

export interface WorkerDeps {
  logger: Logger;
  /** For tests: a sink other than BigQuery, for every route. */
  sink?: Sink;
}

/** What the worker and the dead-letter replay share: decode → route → batch → insert → settle. */
export interface Pipeline {
  readonly dispatcher: Dispatcher;
  readonly routes: ReadonlyMap<string, { pipeline: RoutePipeline; metadata: MetadataColumns }>;
  readonly settler: Settler;
  /** Schemas by reference; also whether the registry lets the worker read them (readiness). */
  readonly schemas: SchemaCache;
}

export interface PipelineDeps {
  logger: Logger;
  /** Where each route writes: the configured sinks, or one sink for every route (tests). */
  sinks: SinkSet | Sink;
  deadLetters: DeadLetterPublisher;
  /** The Pub/Sub schema service is reached through it. */
  pubsub: PubSub;
  metrics: Metrics;
  clock?: Clock;
}

export function createPipeline(config: Config, deps: PipelineDeps): Pipeline {
  const { logger, metrics } = deps;
  const sinks = 'forRoute' in deps.sinks ? deps.sinks : oneSink(deps.sinks);
  const clock = deps.clock ?? systemClock;
  const settler = new Settler(deps.deadLetters, metrics, clock, logger);
  // Table schemas are read through the sink that writes the table, one cache per sink.
  const validatorsOf = new Map<Sink, TableValidators>();
  const validatorsFor = (sink: Sink): TableValidators => {
    let validators = validatorsOf.get(sink);
    if (validators === undefined) {
      validators = new TableValidators(sink, TABLE_SCHEMA_TTL_MS, clock.now);
      validatorsOf.set(sink, validators);
    }
    return validators;
  };
  const schemas = new SchemaCache(createRegistry(config, deps.pubsub, clock.now, logger), config.registry.cacheMaxEntries, {
    hit: () => metrics.schemaCacheHit(),
    miss: () => metrics.schemaCacheMisses.inc(),
    fetched: (registry, seconds, ok) => metrics.schemaFetchDuration.observe({ registry, outcome: ok ? 'ok' : 'error' }, seconds),
    registryFault: (error) =>
      logger.error(
        { code: error.code, err: error.message },
        'The schema registry refuses the worker: messages are nacked, not dead-lettered, and readiness fails until a schema read succeeds.',
      ),
    registryRecovered: () => logger.info({}, 'The schema registry answers the worker again.'),
  });
  metrics.watchSchemaCache(() => schemas.size);
  const evolverFor = createTableEvolvers(config, metrics, logger);
  const routes = new Map<string, { pipeline: RoutePipeline; metadata: MetadataColumns }>();
  // Routes without a subscription of their own share the default one's flow-control window.
  const sharedWindow = config.routes.filter((r) => !r.subscription).length > 1 ? new WindowShare(config.flowControl.maxMessages) : undefined;
  for (const route of config.routes) {
    const sink = sinks.forRoute(route);
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
        window: route.subscription ? undefined : sharedWindow,
        schemaEvolution: route.schemaEvolution,
        createTable: route.createTable,
      },
      { sink, validators: validatorsFor(sink), settler, observer: metrics, clock, logger, evolver: evolverFor(sink) },
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
    maxDecodedBytes: config.flowControl.maxDecodedBytes ?? Math.floor(getHeapStatistics().heap_size_limit / 16),
  });
  return { dispatcher, routes, settler, schemas };
}

export async function startWorker(config: Config, deps: WorkerDeps): Promise<Worker> {
  const { logger } = deps;
  const pubsub = new PubSub({ projectId: config.projectId });
  const metrics = new Metrics({ version: packageVersion() });
  const sinks = deps.sink ? oneSink(deps.sink) : await createSinks(config, logger);
  const deadLetters = new PubSubDeadLetterPublisher(pubsub, config.deadLetter.topic);
  await checkDeadLetterTopic(deadLetters, config.deadLetter.topic, logger);
  const { dispatcher, routes, schemas } = createPipeline(config, { logger, sinks, deadLetters, pubsub, metrics });

  const subscriptions = [...(config.subscription ? [config.subscription] : []), ...config.routes.flatMap((r) => (r.subscription ? [r.subscription] : []))];
  let reportLost: (lost: SourceLost) => void = () => undefined;
  const lost = new Promise<SourceLost>((resolve) => {
    reportLost = resolve;
  });
  const sources = subscriptions.map(
    (name) =>
      new PubSubSource(
        pubsub,
        {
          subscription: name,
          maxMessages: config.flowControl.maxMessages,
          maxBytes: config.flowControl.maxBytes,
          reopenWindowMs: config.shutdown.reopenWindowMs,
        },
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
      const registry = schemas.registryHealth();
      const ready = !draining && sources.every((s) => s.isOpen) && registry.healthy;
      return { ready, body: { status: ready ? 'ready' : draining ? 'draining' : 'not ready', subscriptions: subs, registry, routes: routeStates } };
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
      logger.info(
        { unsettled: dispatcher.unsettled, drainTimeoutMs: config.shutdown.drainTimeoutMs },
        'Draining: pulling stopped, settling what is in flight.',
      );
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
      await sinks.close().catch((err: unknown) => logger.warn({ err: String(err) }, 'Closing the sink failed.'));
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
