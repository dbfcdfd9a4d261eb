import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
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
    maxRows: z.number().int().min(1).max(LIMITS.maxBatchRows).default(500),
    maxBytes: z.number().int().min(1024).max(LIMITS.maxBatchBytes).default(5_000_000),
    maxDelayMs: z.number().int().min(0).max(600_000).default(1000),
  })
  .strict();

const metadataSchema = z
  .object({
    messageId: z.string().optional(),
    publishTime: z.string().optional(),
    subscription: z.string().optional(),
    attributes: z.string().optional(),
  })
  .strict();

const writeApiSchema = z.enum(['storage-write', 'insert-all']);

const routeSchema = z
  .object({
    match: z.array(z.string().min(1)).min(1),
    table: z.string().regex(tablePattern, 'must be [project.]dataset.table'),
    subscription: z.string().min(1).optional(),
    batch: batchSchema.default({}),
    maxInFlightBatches: z.number().int().min(1).max(64).default(4),
    unknownFields: z.enum(['dead-letter', 'drop']).default('dead-letter'),
    metadata: metadataSchema.default({}),
    writeApi: writeApiSchema.optional().describe('The BigQuery write API of this route; unset: bigquery.writeApi.'),
  })
  .strict();

const configSchema = z
  .object({
    projectId: z.string().min(1).optional(),
    subscription: z.string().min(1).optional(),
    registry: z
      .object({
        kind: z.enum(['auto', 'pubsub', 'confluent', 'directory']).default('auto'),
        confluent: z
          .object({
            url: z.string().url(),
            username: z.string().optional(),
            password: z.string().optional(),
            bearerToken: z.string().optional(),
            timeoutMs: z.number().int().min(100).max(120_000).default(5000),
          })
          .strict()
          .optional(),
        directory: z.string().min(1).optional(),
        /** Compiled schemas kept in memory; schema ids are few, this only guards a runaway producer. */
        cacheMaxEntries: z.number().int().min(1).default(10_000),
      })
      .strict()
      .default({}),
    routing: z
      .object({
        from: z.enum(['attribute', 'record-name', 'field']).default('attribute'),
        key: z.string().min(1).default('log_type'),
        unrouted: z.string().min(1).default('dead-letter'),
      })
      .strict()
      .default({}),
    routes: z.record(z.string().regex(routeNamePattern, 'route names are lower_snake_case'), routeSchema),
    retry: z
      .object({
        maxAttempts: z.number().int().min(1).max(100).default(6),
        initialDelayMs: z.number().int().min(1).default(250),
        maxDelayMs: z.number().int().min(1).default(30_000),
      })
      .strict()
      .default({}),
    deadLetter: z.object({ topic: z.string().min(1) }).strict(),
    /** Where rows go: BigQuery in production, an embedded DuckDB file for development. */
    sink: z.enum(['bigquery', 'duckdb']).default('bigquery'),
    duckdb: z
      .object({
        path: z.string().min(1).default('tributary.duckdb'),
        /** Route name -> table definition file (`.avsc` or a BigQuery schema `.json`); the sink creates missing tables from it. */
        tables: z.record(z.string().min(1)).default({}),
      })
      .strict()
      .default({}),
    flowControl: z
      .object({
        maxMessages: z.number().int().min(1).default(2000),
        maxBytes: z.number().int().min(1024).default(100 * 1024 * 1024),
      })
      .strict()
      .default({}),
    bigquery: z
      .object({
        apiEndpoint: z.string().url().optional(),
        projectId: z.string().min(1).optional(),
        timeoutMs: z.number().int().min(1000).default(60_000),
        /** How often a paused route checks whether its table is back. */
        probeIntervalMs: z.number().int().min(100).default(30_000),
        writeApi: writeApiSchema
          .default('insert-all')
          .describe(
            'How rows are written: storage-write (the Storage Write API default stream: at least once, billed per actual byte) or insert-all (tabledata.insertAll: best-effort insertId deduplication, each row billed as at least 1 KB).',
          ),
        storageApiEndpoint: z
          .string()
          .regex(/^(?:\[[0-9a-fA-F:]+\]|[^\s:/]+):\d{1,5}$/, 'must be host:port')
          .optional()
          .describe('host:port of a Storage Write API endpoint reached in plaintext without authentication (local test servers); unset: Google\'s.'),
      })
      .strict()
      .default({}),
    server: z
      .object({
        port: z.number().int().min(0).max(65535).default(9464),
        host: z.string().default('0.0.0.0'),
      })
      .strict()
      .default({}),
    shutdown: z.object({ drainTimeoutMs: z.number().int().min(0).default(25_000) }).strict().default({}),
    log: z
      .object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
      .strict()
      .default({}),
  })
  .strict();

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

// Key tree used to map TRIBUTARY_* environment variables onto config paths. `*` marks a map
// whose keys are names chosen by the user (routes).
type KeyTree = { [key: string]: KeyTree | null };
const ROUTE_TREE: KeyTree = {
  match: null,
  table: null,
  subscription: null,
  batch: { maxRows: null, maxBytes: null, maxDelayMs: null },
  maxInFlightBatches: null,
  unknownFields: null,
  metadata: { messageId: null, publishTime: null, subscription: null, attributes: null },
  writeApi: null,
};
const KEY_TREE: KeyTree = {
  projectId: null,
  subscription: null,
  registry: {
    kind: null,
    confluent: { url: null, username: null, password: null, bearerToken: null, timeoutMs: null },
    directory: null,
    cacheMaxEntries: null,
  },
  routing: { from: null, key: null, unrouted: null },
  routes: { '*': ROUTE_TREE },
  retry: { maxAttempts: null, initialDelayMs: null, maxDelayMs: null },
  deadLetter: { topic: null },
  sink: null,
  duckdb: { path: null, tables: { '*': null } },
  flowControl: { maxMessages: null, maxBytes: null },
  bigquery: { apiEndpoint: null, projectId: null, timeoutMs: null, probeIntervalMs: null, writeApi: null, storageApiEndpoint: null },
  server: { port: null, host: null },
  shutdown: { drainTimeoutMs: null },
  log: { level: null },
};

const ENV_PREFIX = 'TRIBUTARY_';

export function toEnvSegment(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/-/g, '_').toUpperCase();
}

/** The environment variable that sets a config path, e.g. `routes.access.batch.maxRows`. */
export function envVarFor(path: string[]): string {
  return ENV_PREFIX + path.map(toEnvSegment).join('_');
}

function resolveEnvPath(tokens: string[], tree: KeyTree, node: unknown): string[] | undefined {
  if (tokens.length === 0) return undefined;
  const candidates: Array<[string, KeyTree | null]> = [];
  const wildcard = tree['*'];
  if (wildcard !== undefined) {
    // Prefer names already in the file; otherwise the first token names a new entry.
    const existing = node && typeof node === 'object' ? Object.keys(node) : [];
    for (const name of existing) candidates.push([name, wildcard]);
    const first = tokens[0];
    if (first !== undefined && !existing.some((n) => toEnvSegment(n) === first)) candidates.push([first.toLowerCase(), wildcard]);
  } else {
    for (const [key, sub] of Object.entries(tree)) candidates.push([key, sub]);
  }
  // Longest key first so `MAX_DELAY_MS` is not read as `MAX` + `DELAY_MS`.
  candidates.sort((a, b) => toEnvSegment(b[0]).length - toEnvSegment(a[0]).length);
  for (const [key, sub] of candidates) {
    const segs = toEnvSegment(key).split('_');
    if (segs.length > tokens.length || !segs.every((s, i) => s === tokens[i])) continue;
    const rest = tokens.slice(segs.length);
    if (sub === null) {
      if (rest.length === 0) return [key];
      continue;
    }
    if (rest.length === 0) return [key]; // a whole object given as YAML/JSON
    const child = node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined;
    const deeper = resolveEnvPath(rest, sub, child);
    if (deeper) return [key, ...deeper];
  }
  return undefined;
}

/**
 * Overlays TRIBUTARY_* variables on the file's values. Each value is read as YAML, so numbers,
 * booleans and flow lists (`[a, b]`) work. Returns unknown variables as problems: a typo in a Helm
 * value must not be silently ignored.
 */
export function applyEnvironment(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): string[] {
  const problems: string[] = [];
  const names = Object.keys(env)
    .filter((k) => k.startsWith(ENV_PREFIX) && k !== 'TRIBUTARY_CONFIG')
    .sort();
  for (const name of names) {
    const value = env[name];
    if (value === undefined) continue;
    const path = resolveEnvPath(name.slice(ENV_PREFIX.length).split('_'), KEY_TREE, raw);
    if (!path) {
      problems.push(`${name}: no such setting`);
      continue;
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(value);
    } catch {
      parsed = value;
    }
    // Secrets and names are strings even when they look like numbers.
    const leaf = path[path.length - 1];
    if (leaf && ['password', 'username', 'bearerToken', 'projectId', 'subscription', 'topic', 'key', 'directory'].includes(leaf) && typeof parsed !== 'object') {
      parsed = value;
    }
    let target: Record<string, unknown> = raw;
    for (const key of path.slice(0, -1)) {
      const next = target[key];
      if (next === undefined || next === null || typeof next !== 'object') target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[path[path.length - 1] as string] = parsed;
  }
  return problems;
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
    throw new ConfigError(problems);
  }
  const parsed = result.data;
  if (!parsed.projectId) problems.push('projectId: required (or set GOOGLE_CLOUD_PROJECT)');
  const projectId = parsed.projectId ?? 'unset';

  const routeNames = Object.keys(parsed.routes);
  if (routeNames.length === 0) problems.push('routes: at least one route is required');
  const seen = new Map<string, string>();
  const routes: ResolvedRoute[] = [];
  for (const [name, route] of Object.entries(parsed.routes)) {
    for (const value of route.match) {
      const other = seen.get(value);
      if (other) problems.push(`routes.${name}.match: "${value}" is already matched by route "${other}"`);
      else seen.set(value, name);
    }
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
  const { unrouted } = parsed.routing;
  if (unrouted !== 'dead-letter' && !routeNames.includes(unrouted)) {
    problems.push(`routing.unrouted: must be "dead-letter" or a route name (${routeNames.join(', ') || 'none defined'}), got "${unrouted}"`);
  }
  if (!parsed.subscription && routes.some((r) => !r.subscription)) {
    const without = routes.filter((r) => !r.subscription).map((r) => r.name);
    problems.push(`subscription: required because route(s) ${without.join(', ')} have no subscription of their own`);
  }
  const defaultSub = parsed.subscription ? subscriptionPath(projectId, parsed.subscription) : undefined;
  const subs = new Map<string, string>();
  for (const r of routes) {
    if (!r.subscription) continue;
    if (r.subscription === defaultSub) problems.push(`routes.${r.name}.subscription: must differ from the default subscription`);
    const other = subs.get(r.subscription);
    if (other) problems.push(`routes.${r.name}.subscription: already used by route "${other}"`);
    subs.set(r.subscription, r.name);
  }
  const reg = parsed.registry;
  if (reg.kind === 'confluent' && !reg.confluent) problems.push('registry.confluent.url: required when registry.kind is confluent');
  if (reg.kind === 'directory' && !reg.directory) problems.push('registry.directory: required when registry.kind is directory');
  if (reg.confluent?.bearerToken && (reg.confluent.username || reg.confluent.password)) {
    problems.push('registry.confluent: give either username/password or bearerToken, not both');
  }
  if (reg.confluent && Boolean(reg.confluent.username) !== Boolean(reg.confluent.password)) {
    problems.push('registry.confluent: username and password go together');
  }
  if (parsed.retry.initialDelayMs > parsed.retry.maxDelayMs) problems.push('retry.initialDelayMs: must not exceed retry.maxDelayMs');
  for (const name of Object.keys(parsed.duckdb.tables)) {
    if (!routeNames.includes(name)) problems.push(`duckdb.tables.${name}: no route "${name}" (routes: ${routeNames.join(', ') || 'none defined'})`);
  }
  for (const r of routes) {
    const cols = Object.values(r.metadata).filter((c): c is string => typeof c === 'string');
    if (new Set(cols).size !== cols.length) problems.push(`routes.${r.name}.metadata: two metadata values use the same column`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

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
