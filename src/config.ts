import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { overlayEnvironment } from './config-environment.js';
import { settingTree } from './config-settings.js';
import { ConfigError } from './errors.js';

/** Pub/Sub and BigQuery limits the config is checked against. */
export const LIMITS = {
  /** insertAll accepts 10 MB per request; the JSON envelope and insertIds need headroom. */
  maxBatchBytes: 9 * 1024 * 1024,
  maxBatchRows: 50_000,
} as const;

const routeNamePattern = /^[a-z][a-z0-9_]*$/;
const tablePattern = /^(?:([a-z][a-z0-9-:.]{4,61}[a-z0-9])\.)?([A-Za-z0-9_]{1,1024})\.([\p{L}\p{M}\p{N}\p{Pc}\p{Pd}\p{Zs}]{1,1024})$/u;

const batchSchema = z
  .object({
    maxRows: z
      .number()
      .int()
      .min(1)
      .max(LIMITS.maxBatchRows)
      .default(500)
      .describe("Flush the route's batch at this many rows (BigQuery allows at most 50,000 per request)."),
    maxBytes: z
      .number()
      .int()
      .min(1024)
      .max(LIMITS.maxBatchBytes)
      .default(5_000_000)
      .describe('Flush before the rows of a batch exceed this many bytes as the sink measures them (at most 9 MiB, under the 10 MB request limit).'),
    maxDelayMs: z.number().int().min(0).max(600_000).default(1000).describe('Flush a batch this long after its first row.'),
  })
  .strict()
  .describe('When a batch is sent: whichever limit is reached first.');

const metadataSchema = z
  .object({
    messageId: z.string().optional().describe('Column that receives the Pub/Sub message id (deduplicate on it downstream).'),
    publishTime: z.string().optional().describe('Column that receives the publish time (TIMESTAMP).'),
    subscription: z.string().optional().describe('Column that receives the subscription path.'),
    attributes: z.string().optional().describe('Column that receives the message attributes as a JSON string.'),
    recordIndex: z
      .string()
      .optional()
      .describe('Column for the position of the record in its message (0, or 0..n-1 in an Avro container file holding several).'),
  })
  .strict()
  .describe('Optional columns filled from the Pub/Sub message rather than from the record.');

const createTableSchema = z
  .object({
    partitioning: z
      .object({
        type: z.enum(['DAY', 'HOUR', 'MONTH', 'YEAR']).describe('Partition granularity.'),
        field: z.string().min(1).optional().describe('A TIMESTAMP, DATE or DATETIME column; omit to partition by ingestion time.'),
      })
      .strict()
      .optional()
      .describe('Time partitioning of the created table.'),
    clustering: z
      .array(z.string().min(1))
      .max(4, 'BigQuery clusters on at most 4 columns')
      .refine((columns) => new Set(columns).size === columns.length, 'a clustering column is named twice')
      .default([])
      .describe('Up to 4 top-level columns to cluster on, in order.'),
    expirationDays: z.number().positive().optional().describe('Partition expiration in days (needs partitioning).'),
    description: z.string().max(16_384).optional().describe('Table description.'),
  })
  .strict()
  .refine((t) => t.expirationDays === undefined || t.partitioning !== undefined, { message: 'expirationDays needs partitioning', path: ['expirationDays'] });

const writeApiSchema = z.enum(['storage-write', 'insert-all']);

const routeSchema = z
  .object({
    match: z.array(z.string().min(1)).min(1).describe('Log types this route takes; a log type belongs to one route.'),
    table: z
      .string()
      .regex(tablePattern, 'must be [project.]dataset.table')
      .describe('Destination table, `[project.]dataset.table`; without a project, `bigquery.projectId`.'),
    subscription: z
      .string()
      .min(1)
      .optional()
      .describe("A subscription of the route's own (short name or full path), filtered on the log type, so that its flow control is its own."),
    batch: batchSchema.default({}),
    maxInFlightBatches: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(4)
      .describe('Insert requests open at once for this route (fewer while the destination throttles).'),
    maxUnsettledRows: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        "The route's share of its subscription's flow-control window: rows held, queued and in flight together. Beyond it the route's messages are handed back to Pub/Sub for later, so a paused or slow route cannot starve the others; a running, quick route may borrow what the others leave unused. Default: half of flowControl.maxMessages when routes share a subscription, all of it otherwise; it must stay below flowControl.maxMessages on a shared subscription.",
      ),
    unknownFields: z
      .enum(['dead-letter', 'drop'])
      .default('dead-letter')
      .describe('A field the table lacks: dead-letter the message (`UNKNOWN_FIELD`) or drop the field (counted in `tributary_unknown_fields_dropped_total`).'),
    metadata: metadataSchema.default({}),
    schemaEvolution: z
      .enum(['off', 'add-columns'])
      .default('off')
      .describe(
        'add-columns: add the columns a new schema revision brings (NULLABLE or REPEATED) and relax REQUIRED columns that became nullable; incompatible changes are refused.',
      ),
    createTable: createTableSchema
      .optional()
      .describe('Create the table when it is missing, from the schema of the message that found it missing; without it a missing table pauses the route.'),
    writeApi: writeApiSchema.optional().describe('The BigQuery write API of this route; unset: bigquery.writeApi.'),
  })
  .strict();

const baseConfigSchema = z
  .object({
    projectId: z
      .string()
      .min(1)
      .optional()
      .describe('Project of the subscriptions and topics, and of tables that name no project. Default: the `GOOGLE_CLOUD_PROJECT` variable.'),
    subscription: z
      .string()
      .min(1)
      .optional()
      .describe('Default subscription (short name or `projects/…/subscriptions/…`). Required unless every route has its own.'),
    registry: z
      .object({
        kind: z
          .enum(['auto', 'pubsub', 'confluent', 'directory'])
          .default('auto')
          .describe(
            '`auto` picks per message: Pub/Sub schema attributes → the Pub/Sub schema service; a Confluent header → `registry.confluent`, else `registry.directory`. `pubsub`, `confluent`, `directory` use only that one.',
          ),
        confluent: z
          .object({
            url: z.string().url().describe('Base URL of a Confluent-compatible registry (Confluent, Apicurio, Karapace, Redpanda).'),
            username: z.string().optional().describe('HTTP basic auth user; goes with `password`.'),
            password: z.string().optional().describe('HTTP basic auth password; goes with `username`.'),
            bearerToken: z.string().optional().describe('Bearer auth, instead of basic auth.'),
            timeoutMs: z.number().int().min(100).max(120_000).default(5000).describe('Per-request timeout; a timeout is a retryable `REGISTRY_UNAVAILABLE`.'),
          })
          .strict()
          .optional()
          .describe('A Confluent-compatible schema registry, for Confluent-framed messages (`0x00` + 4-byte schema id).'),
        directory: z
          .string()
          .min(1)
          .optional()
          .describe(
            'Folder of `<id>.avsc` files: `42.avsc` for Confluent id 42, `<schema>@<revision>.avsc` for a Pub/Sub schema revision (short schema name). For development and tests.',
          ),
        cacheMaxEntries: z
          .number()
          .int()
          .min(1)
          .default(10_000)
          .describe('Compiled schemas kept in memory (a guard against a runaway producer; schema ids are few).'),
        fingerprints: z
          .object({
            pubsubSchemas: z.array(z.string().min(1)).default([]),
            confluentSubjects: z.array(z.string().min(1)).default([]),
            minRefreshIntervalMs: z.number().int().min(1000).default(60_000),
          })
          .strict()
          .default({})
          .describe(
            'Schemas that Avro single-object messages (0xC3 0x01 + CRC-64-AVRO fingerprint) are matched against, besides every schema of registry.directory: all revisions of these Pub/Sub schemas and all versions of these Confluent subjects. Indexed at start; an unknown fingerprint re-reads them at most once per minRefreshIntervalMs.',
          ),
      })
      .strict()
      .default({})
      .describe('Where the schema a message names is fetched from (cached per id).'),
    routing: z
      .object({
        from: z
          .enum(['attribute', 'record-name', 'field'])
          .default('attribute')
          .describe("Where the log type comes from: a message attribute, the Avro record's full name, or a field of the record."),
        key: z.string().min(1).default('log_type').describe('The attribute name, or the dotted field path when `from` is `field`.'),
        unrouted: z
          .string()
          .min(1)
          .default('dead-letter')
          .describe('Log types no route matches: `dead-letter` them (`UNROUTED`), or the name of a route that takes them.'),
      })
      .strict()
      .default({})
      .describe('How a message finds its route.'),
    routes: z
      .record(z.string().regex(routeNamePattern, 'route names are lower_snake_case').describe('name'), routeSchema)
      .describe('Route name (`lower_snake_case`) → route: the log types it takes and the table they go to. At least one.'),
    retry: z
      .object({
        maxAttempts: z.number().int().min(1).max(100).default(6).describe('Attempts per batch (and per registry fetch) before the messages are nacked.'),
        initialDelayMs: z
          .number()
          .int()
          .min(1)
          .default(250)
          .describe('Backoff before the second attempt; exponential with full jitter: attempt n waits uniformly in [0, min(maxDelayMs, initialDelayMs·2ⁿ⁻¹)].'),
        maxDelayMs: z.number().int().min(1).default(30_000).describe('Longest backoff between two attempts.'),
      })
      .strict()
      .default({})
      .describe('Bounded retries of transient failures.'),
    deadLetter: z
      .object({ topic: z.string().min(1).describe('Topic for messages that can never succeed. It needs a subscription, or Pub/Sub drops what it receives.') })
      .strict()
      .describe('Where messages that can never succeed go, with the reason.'),
    sink: z.enum(['bigquery', 'duckdb']).default('bigquery').describe('Where rows go: BigQuery, or an embedded DuckDB file for development.'),
    duckdb: z
      .object({
        path: z
          .string()
          .min(1)
          .default('tributary.duckdb')
          .describe('The database file (relative to the working directory); created with its directory if missing.'),
        tables: z
          .record(
            z.string().describe('route'),
            z
              .string()
              .min(1)
              .describe(
                "The file the route's table is created from when the database lacks it: an Avro record schema (`.avsc`) or a BigQuery schema (`.json`).",
              ),
          )
          .default({})
          .describe('Route name → table definition file; the sink creates missing tables from it.'),
      })
      .strict()
      .default({})
      .describe('The DuckDB sink (`sink: duckdb`).'),
    flowControl: z
      .object({
        maxMessages: z.number().int().min(1).default(2000).describe('Messages held at once per subscription, received and not yet acked or nacked.'),
        maxBytes: z
          .number()
          .int()
          .min(1024)
          .default(100 * 1024 * 1024)
          .describe('Payload bytes held at once per subscription. With `allowExcessMessages: false`, both limits bound what is received.'),
        maxDecodedBytes: z
          .number()
          .int()
          .min(1024 * 1024)
          .optional()
          .describe(
            'Bytes of decoded rows (as the sink measures them) the process holds at once, all subscriptions together; beyond it new messages wait undecoded, which stops pulling. A decoded row takes several times its size in heap. Default: a sixteenth of the V8 heap limit.',
          ),
      })
      .strict()
      .default({})
      .describe('Pub/Sub flow control, per subscription.'),
    bigquery: z
      .object({
        apiEndpoint: z.string().url().optional().describe('Another endpoint (emulators, tests); skips authentication.'),
        projectId: z.string().min(1).optional().describe('Project of tables that name none. Default: `projectId`.'),
        timeoutMs: z.number().int().min(1000).default(60_000).describe('Per-request deadline; a timed-out insert is retried with the same insertIds.'),
        probeIntervalMs: z.number().int().min(100).default(30_000).describe("Longest wait between probes of a paused route's table."),
        writeApi: writeApiSchema
          .default('storage-write')
          .describe(
            'How rows are written: storage-write (the Storage Write API default stream: at least once, billed per actual byte) or insert-all (tabledata.insertAll: best-effort insertId deduplication, each row billed as at least 1 KB).',
          ),
        storageApiEndpoint: z
          .string()
          .regex(/^(?:\[[0-9a-fA-F:]+\]|[^\s:/]+):\d{1,5}$/, 'must be host:port')
          .optional()
          .describe("host:port of a Storage Write API endpoint reached in plaintext without authentication (local test servers); unset: Google's."),
      })
      .strict()
      .default({})
      .describe('The BigQuery sink.'),
    server: z
      .object({
        port: z.number().int().min(0).max(65535).default(9464).describe('Port of `/metrics`, `/healthz`, `/readyz` and `/status` (0: any free port).'),
        host: z
          .string()
          .default('0.0.0.0')
          .describe('Address the ops server listens on. It has no authentication; `127.0.0.1` keeps it to the pod or machine.'),
      })
      .strict()
      .default({})
      .describe('The ops HTTP server.'),
    shutdown: z
      .object({
        drainTimeoutMs: z.number().int().min(0).default(25_000).describe('On SIGTERM: time to flush and settle what is in flight; what is left is nacked.'),
        reopenWindowMs: z
          .number()
          .int()
          .min(0)
          .max(300_000)
          .default(45_000)
          .describe(
            'A subscription stream that closed for good (subscription deleted, consume permission revoked) is reopened with backoff this long; then /healthz fails, the worker drains and exits with 69.',
          ),
      })
      .strict()
      .default({})
      .describe('Graceful shutdown.'),
    log: z
      .object({
        level: z
          .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
          .default('info')
          .describe("pino level; logs are one JSON object per line with Cloud Logging's `severity`."),
      })
      .strict()
      .default({})
      .describe('Logging.'),
  })
  .strict();

type CheckedConfig = z.output<typeof baseConfigSchema>;

/** Route names, for messages that list the choices. */
function namesOf(config: CheckedConfig): string {
  return Object.keys(config.routes).join(', ') || 'none defined';
}

/**
 * Rules that span several settings, run by the schema once every setting is valid on its own.
 * Each problem names the setting to change.
 */
function checkAcrossSettings(config: CheckedConfig, ctx: z.RefinementCtx): void {
  const problem = (path: Array<string | number>, message: string): void => ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
  if (!config.projectId) problem(['projectId'], 'required (or set GOOGLE_CLOUD_PROJECT)');
  const projectId = config.projectId ?? 'unset';
  const routeNames = Object.keys(config.routes);
  if (routeNames.length === 0) problem(['routes'], 'at least one route is required');
  const seen = new Map<string, string>();
  for (const [name, route] of Object.entries(config.routes)) {
    for (const value of route.match) {
      const other = seen.get(value);
      if (other) problem(['routes', name, 'match'], `"${value}" is already matched by route "${other}"`);
      else seen.set(value, name);
    }
  }
  const { unrouted } = config.routing;
  if (unrouted !== 'dead-letter' && !routeNames.includes(unrouted)) {
    problem(['routing', 'unrouted'], `must be "dead-letter" or a route name (${namesOf(config)}), got "${unrouted}"`);
  }
  const without = routeNames.filter((name) => !config.routes[name]?.subscription);
  if (!config.subscription && without.length > 0) {
    problem(['subscription'], `required because route(s) ${without.join(', ')} have no subscription of their own`);
  }
  const defaultSub = config.subscription ? subscriptionPath(projectId, config.subscription) : undefined;
  const subs = new Map<string, string>();
  for (const [name, route] of Object.entries(config.routes)) {
    if (!route.subscription) continue;
    const sub = subscriptionPath(projectId, route.subscription);
    if (sub === defaultSub) problem(['routes', name, 'subscription'], 'must differ from the default subscription');
    const other = subs.get(sub);
    if (other) problem(['routes', name, 'subscription'], `already used by route "${other}"`);
    subs.set(sub, name);
  }
  const reg = config.registry;
  if (reg.kind === 'confluent' && !reg.confluent) problem(['registry', 'confluent', 'url'], 'required when registry.kind is confluent');
  if (reg.kind === 'directory' && !reg.directory) problem(['registry', 'directory'], 'required when registry.kind is directory');
  if (reg.fingerprints.confluentSubjects.length > 0 && !reg.confluent) problem(['registry', 'fingerprints', 'confluentSubjects'], 'needs registry.confluent');
  if (reg.confluent?.bearerToken && (reg.confluent.username || reg.confluent.password)) {
    problem(['registry', 'confluent'], 'give either username/password or bearerToken, not both');
  }
  if (reg.confluent && Boolean(reg.confluent.username) !== Boolean(reg.confluent.password)) {
    problem(['registry', 'confluent'], 'username and password go together');
  }
  if (config.retry.initialDelayMs > config.retry.maxDelayMs) problem(['retry', 'initialDelayMs'], 'must not exceed retry.maxDelayMs');
  for (const name of Object.keys(config.duckdb.tables)) {
    if (!routeNames.includes(name)) problem(['duckdb', 'tables', name], `no route "${name}" (routes: ${namesOf(config)})`);
  }
  const window = config.flowControl.maxMessages;
  for (const [name, route] of Object.entries(config.routes)) {
    if (route.subscription || without.length < 2 || route.maxUnsettledRows === undefined || route.maxUnsettledRows < window) continue;
    problem(
      ['routes', name, 'maxUnsettledRows'],
      `${route.maxUnsettledRows} would let this route hold the whole flow-control window (flowControl.maxMessages ${window}) of the subscription it shares with ${without.filter((n) => n !== name).join(', ')}: a paused or slow route would starve them; keep it below ${window}, or give the route a subscription of its own`,
    );
  }
  for (const [name, route] of Object.entries(config.routes)) {
    const cols = Object.values(route.metadata).filter((c): c is string => typeof c === 'string');
    if (new Set(cols).size !== cols.length) problem(['routes', name, 'metadata'], 'two metadata values use the same column');
  }
}

/** The worker's configuration: every setting, its default and its description, and the rules across them. */
export const configSchema = baseConfigSchema.superRefine(checkAcrossSettings);

/** The schema as a tree of settings, for the environment overlay and the reference. */
export const configSettings = settingTree(configSchema);

export type RawConfig = z.input<typeof configSchema>;
type ParsedConfig = z.output<typeof configSchema>;
export type RouteConfig = ParsedConfig['routes'][string];
export type BatchConfig = RouteConfig['batch'];
export type RetryConfig = ParsedConfig['retry'];

export interface TableConfig {
  projectId: string;
  datasetId: string;
  tableId: string;
}

export type WriteApi = z.output<typeof writeApiSchema>;

export interface ResolvedRoute extends Omit<RouteConfig, 'table' | 'subscription' | 'writeApi'> {
  name: string;
  /** The route's own write API, else `bigquery.writeApi`. */
  writeApi: WriteApi;
  table: TableConfig;
  /** Full subscription path, when the route has a subscription of its own. */
  subscription?: string;
}

export interface Config extends Omit<ParsedConfig, 'routes' | 'projectId' | 'subscription' | 'deadLetter'> {
  projectId: string;
  /** Full path of the default subscription, absent when every route has its own. */
  subscription?: string;
  routes: ResolvedRoute[];
  deadLetter: { topic: string };
}

/**
 * Overlays TRIBUTARY_* variables on the file's values; returns unknown variables as problems.
 * The variable names follow the schema: `routes.access.batch.maxRows` is
 * `TRIBUTARY_ROUTES_ACCESS_BATCH_MAX_ROWS`.
 */
export function applyEnvironment(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): string[] {
  return overlayEnvironment(raw, env, configSettings);
}

/**
 * How many unsettled rows a route may have: its share of the flow-control window of the
 * subscription it reads. Routes that share a subscription get half the window each by default, so
 * one paused or slow route leaves at least half of it to the others.
 */
export function routeShare(config: Pick<Config, 'routes' | 'flowControl'>, route: Pick<ResolvedRoute, 'subscription' | 'maxUnsettledRows'>): number {
  const window = config.flowControl.maxMessages;
  const shared = !route.subscription && config.routes.filter((r) => !r.subscription).length > 1;
  return route.maxUnsettledRows ?? (shared ? Math.max(1, Math.floor(window / 2)) : window);
}

export function subscriptionPath(projectId: string, name: string): string {
  return name.startsWith('projects/') ? name : `projects/${projectId}/subscriptions/${name}`;
}

export function topicPath(projectId: string, name: string): string {
  return name.startsWith('projects/') ? name : `projects/${projectId}/topics/${name}`;
}

function formatIssuePath(path: Array<string | number>): string {
  return path.length === 0 ? '(root)' : path.map(String).join('.');
}

/** Parses and checks a config document. Collects every problem before failing. */
export function parseConfig(text: string, env: NodeJS.ProcessEnv, source = 'config'): Config {
  const problems: string[] = [];
  let doc: unknown;
  try {
    doc = text.trim() === '' ? {} : parseYaml(text);
  } catch (err) {
    throw new ConfigError([`${source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError([`${source}: the top level must be a mapping of settings`]);
  }
  const raw = doc as Record<string, unknown>;
  problems.push(...applyEnvironment(raw, env));
  if (raw.projectId === undefined && env.GOOGLE_CLOUD_PROJECT) raw.projectId = env.GOOGLE_CLOUD_PROJECT;

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(`${formatIssuePath(issue.path)}: ${issue.message}`);
  }
  if (!result.success || problems.length > 0) throw new ConfigError(problems);
  const parsed = result.data;
  const projectId = parsed.projectId ?? 'unset';
  const routes: ResolvedRoute[] = [];
  for (const [name, route] of Object.entries(parsed.routes)) {
    const m = tablePattern.exec(route.table);
    const table: TableConfig = {
      projectId: m?.[1] ?? parsed.bigquery.projectId ?? projectId,
      datasetId: m?.[2] ?? '',
      tableId: m?.[3] ?? '',
    };
    const resolved: ResolvedRoute = { ...route, name, table, subscription: undefined, writeApi: route.writeApi ?? parsed.bigquery.writeApi };
    if (route.subscription) resolved.subscription = subscriptionPath(projectId, route.subscription);
    routes.push(resolved);
  }
  const defaultSub = parsed.subscription ? subscriptionPath(projectId, parsed.subscription) : undefined;

  const { routes: _routes, projectId: _p, subscription: _s, ...rest } = parsed;
  return { ...rest, projectId, subscription: defaultSub, routes, deadLetter: { topic: topicPath(projectId, parsed.deadLetter.topic) } };
}

export async function loadConfig(path: string, env: NodeJS.ProcessEnv): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError([`${path}: cannot read the config file (${code ?? (err as Error).message})`]);
  }
  return parseConfig(text, env, path);
}
