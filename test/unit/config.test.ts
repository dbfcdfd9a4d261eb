import { describe, expect, it } from 'vitest';
import { envVarFor } from '../../src/config-environment.js';
import type { SettingNode } from '../../src/config-settings.js';
import { applyEnvironment, configSchema, configSettings, parseConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const base = `
projectId: my-project
subscription: logs-worker
routing: { from: attribute, key: log_type, unrouted: dead-letter }
routes:
  access:
    match: [access, access_v2]
    table: logs.access
    batch: { maxRows: 200 }
  audit:
    match: [audit]
    table: other-project.logs.audit
    subscription: logs-audit
deadLetter: { topic: logs-dead-letter }
`;

function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('parseConfig', () => {
  it('resolves names, defaults and table references', () => {
    const config = parseConfig(base, {});
    expect(config.subscription).toBe('projects/my-project/subscriptions/logs-worker');
    expect(config.deadLetter.topic).toBe('projects/my-project/topics/logs-dead-letter');
    const [access, audit] = config.routes;
    expect(access?.table).toEqual({ projectId: 'my-project', datasetId: 'logs', tableId: 'access' });
    expect(access?.batch).toEqual({ maxRows: 200, maxBytes: 5_000_000, maxDelayMs: 1000 });
    expect(access?.maxInFlightBatches).toBe(4);
    expect(access?.unknownFields).toBe('dead-letter');
    expect(audit?.table.projectId).toBe('other-project');
    expect(audit?.subscription).toBe('projects/my-project/subscriptions/logs-audit');
    expect(config.retry).toEqual({ maxAttempts: 6, initialDelayMs: 250, maxDelayMs: 30_000 });
  });

  it('takes the project from GOOGLE_CLOUD_PROJECT', () => {
    const config = parseConfig(base.replace('projectId: my-project', ''), { GOOGLE_CLOUD_PROJECT: 'env-project' });
    expect(config.projectId).toBe('env-project');
  });

  it('reports every problem at once', () => {
    const problems = problemsOf(`
subscription: s
routing: { from: sideways, unrouted: nowhere }
routes:
  access: { match: [a], table: not-a-table, batch: { maxRows: 100000 } }
  Bad-Name: { match: [a], table: d.t }
deadLetter: {}
retry: { maxAttempts: 0 }
`);
    expect(problems.length).toBeGreaterThanOrEqual(5);
    const text = problems.join('\n');
    expect(text).toContain('routing.from');
    expect(text).toContain('routes.access.table');
    expect(text).toContain('routes.access.batch.maxRows');
    expect(text).toContain('Bad-Name');
    expect(text).toContain('deadLetter.topic');
    expect(text).toContain('retry.maxAttempts');
  });

  it('checks cross-field rules', () => {
    const problems = problemsOf(`
projectId: p-1234
routing: { unrouted: missing }
routes:
  a: { match: [x], table: d.a }
  b: { match: [x], table: d.b, subscription: s1 }
  c: { match: [y], table: d.c, subscription: s1 }
registry: { kind: confluent }
deadLetter: { topic: dl }
`);
    const text = problems.join('\n');
    expect(text).toContain('"x" is already matched by route "a"');
    expect(text).toContain('routing.unrouted');
    expect(text).toContain('subscription: required because route(s) a');
    expect(text).toContain('already used by route "b"');
    expect(text).toContain('registry.confluent.url');
  });

  it('rejects unknown keys (typos) instead of ignoring them', () => {
    expect(problemsOf(`${base}\nretyr: { maxAttempts: 3 }\n`).join()).toMatch(/retyr/);
  });

  it('rejects a batch above the insertAll request limit', () => {
    expect(problemsOf(base.replace('batch: { maxRows: 200 }', 'batch: { maxBytes: 20000000 }')).join()).toMatch(/maxBytes/);
  });

  it('runs the cross-field rules as part of the schema, each naming the setting to change', () => {
    const result = configSchema.safeParse({
      projectId: 'p-1234',
      subscription: 's',
      routes: { a: { match: ['x'], table: 'd.a' } },
      deadLetter: { topic: 'dl' },
      retry: { initialDelayMs: 5000, maxDelayMs: 1000 },
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['retry.initialDelayMs', 'must not exceed retry.maxDelayMs']]);
  });

  it('rejects YAML that does not parse, with one clear problem', () => {
    expect(problemsOf('routes: [unclosed')).toEqual([expect.stringMatching(/not valid YAML/)]);
  });
});

describe('environment overrides', () => {
  it('maps every config path to a TRIBUTARY_ variable', () => {
    expect(envVarFor(['routes', 'access', 'batch', 'maxRows'])).toBe('TRIBUTARY_ROUTES_ACCESS_BATCH_MAX_ROWS');
    expect(envVarFor(['registry', 'confluent', 'bearerToken'])).toBe('TRIBUTARY_REGISTRY_CONFLUENT_BEARER_TOKEN');
  });

  it('overrides file values, typed by YAML', () => {
    const config = parseConfig(base, {
      TRIBUTARY_ROUTES_ACCESS_BATCH_MAX_ROWS: '50',
      TRIBUTARY_ROUTES_ACCESS_MATCH: '[x, y]',
      TRIBUTARY_RETRY_MAX_DELAY_MS: '1000',
      TRIBUTARY_RETRY_INITIAL_DELAY_MS: '100',
      TRIBUTARY_REGISTRY_KIND: 'confluent',
      TRIBUTARY_REGISTRY_CONFLUENT_URL: 'http://registry:8081',
      TRIBUTARY_REGISTRY_CONFLUENT_USERNAME: 'u',
      TRIBUTARY_REGISTRY_CONFLUENT_PASSWORD: '12345',
      TRIBUTARY_BIGQUERY_API_ENDPOINT: 'http://127.0.0.1:9050',
      TRIBUTARY_SERVER_PORT: '0',
    });
    const access = config.routes.find((r) => r.name === 'access');
    expect(access?.batch.maxRows).toBe(50);
    expect(access?.match).toEqual(['x', 'y']);
    expect(config.retry.maxDelayMs).toBe(1000);
    expect(config.registry.confluent?.password).toBe('12345');
    expect(config.bigquery.apiEndpoint).toBe('http://127.0.0.1:9050');
    expect(config.server.port).toBe(0);
  });

  it('can define a whole route from the environment', () => {
    const config = parseConfig(base, {
      TRIBUTARY_ROUTES_METRICS_TABLE: 'logs.metrics',
      TRIBUTARY_ROUTES_METRICS_MATCH: '[metric]',
    });
    expect(config.routes.find((r) => r.name === 'metrics')?.table.tableId).toBe('metrics');
  });

  it('reports unknown variables', () => {
    const raw: Record<string, unknown> = {};
    expect(applyEnvironment(raw, { TRIBUTARY_RETRY_MAX_ATEMPTS: '3' })).toEqual(['TRIBUTARY_RETRY_MAX_ATEMPTS: no such setting']);
  });

  /** Every path to a value setting; the names of user-chosen keys (routes) are `access`. */
  function valuePaths(node: SettingNode, path: string[] = []): string[][] {
    if (node.kind === 'value') return [path];
    if (node.kind === 'map') return valuePaths(node.value, [...path, 'access']);
    return Object.entries(node.fields).flatMap(([key, child]) => valuePaths(child, [...path, key]));
  }

  it('derives a variable for every setting of the schema', () => {
    const paths = valuePaths(configSettings);
    expect(paths.map((p) => p.join('.'))).toEqual(
      expect.arrayContaining(['routes.access.batch.maxDelayMs', 'registry.confluent.bearerToken', 'duckdb.tables.access', 'log.level']),
    );
    for (const path of paths) {
      const raw: Record<string, unknown> = {};
      expect(applyEnvironment(raw, { [envVarFor(path)]: '7' }), envVarFor(path)).toEqual([]);
      const set = path.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], raw);
      expect(set === 7 || set === '7', `${envVarFor(path)} sets ${path.join('.')}`).toBe(true);
    }
  });

  it('gives string settings the text as written, and reads other settings as YAML', () => {
    const raw: Record<string, unknown> = {};
    applyEnvironment(raw, {
      TRIBUTARY_PROJECT_ID: '0123',
      TRIBUTARY_REGISTRY_CONFLUENT_PASSWORD: 'p#ss word',
      TRIBUTARY_ROUTES_ACCESS_METADATA_MESSAGE_ID: 'null',
      TRIBUTARY_ROUTES_ACCESS_MAX_IN_FLIGHT_BATCHES: '8',
      TRIBUTARY_ROUTES_ACCESS_MATCH: '[a, b]',
    });
    expect(raw).toEqual({
      projectId: '0123',
      registry: { confluent: { password: 'p#ss word' } },
      routes: { access: { metadata: { messageId: 'null' }, maxInFlightBatches: 8, match: ['a', 'b'] } },
    });
  });

  it('takes a whole object from one variable', () => {
    const config = parseConfig(base, { TRIBUTARY_ROUTES_ACCESS_BATCH: '{maxRows: 7, maxDelayMs: 20}' });
    expect(config.routes.find((r) => r.name === 'access')?.batch).toEqual({ maxRows: 7, maxBytes: 5_000_000, maxDelayMs: 20 });
  });
});

describe('schema evolution and table creation settings', () => {
  const route = (extra: string): string => `
projectId: my-project
subscription: logs-worker
routes:
  access:
    match: [access]
    table: logs.access
${extra}
deadLetter: { topic: dl }
`;

  it('defaults to no evolution and no table creation', () => {
    const [access] = parseConfig(route(''), {}).routes;
    expect(access?.schemaEvolution).toBe('off');
    expect(access?.createTable).toBeUndefined();
  });

  it('reads add-columns and a full createTable block', () => {
    const [access] = parseConfig(
      route(`    schemaEvolution: add-columns
    createTable:
      partitioning: { type: DAY, field: ts }
      clustering: [service, status]
      expirationDays: 400
      description: Access logs`),
      {},
    ).routes;
    expect(access?.schemaEvolution).toBe('add-columns');
    expect(access?.createTable).toEqual({
      partitioning: { type: 'DAY', field: 'ts' },
      clustering: ['service', 'status'],
      expirationDays: 400,
      description: 'Access logs',
    });
  });

  it('refuses more than 4 clustering columns, a repeated one, an unknown partition type and expiration without partitioning', () => {
    expect(problemsOf(route('    createTable: { clustering: [a, b, c, d, e] }'))).toEqual([
      'routes.access.createTable.clustering: BigQuery clusters on at most 4 columns',
    ]);
    expect(problemsOf(route('    createTable: { clustering: [a, a] }'))).toEqual(['routes.access.createTable.clustering: a clustering column is named twice']);
    expect(problemsOf(route('    createTable: { partitioning: { type: WEEK } }'))[0]).toMatch(
      /^routes\.access\.createTable\.partitioning\.type: Invalid enum value/,
    );
    expect(problemsOf(route('    createTable: { expirationDays: 30 }'))).toEqual([
      'routes.access.createTable.expirationDays: expirationDays needs partitioning',
    ]);
    expect(problemsOf(route('    schemaEvolution: everything'))[0]).toMatch(/^routes\.access\.schemaEvolution: Invalid enum value/);
  });

  it('can be set from the environment', () => {
    const [access] = parseConfig(route(''), {
      TRIBUTARY_ROUTES_ACCESS_SCHEMA_EVOLUTION: 'add-columns',
      TRIBUTARY_ROUTES_ACCESS_CREATE_TABLE_PARTITIONING_TYPE: 'HOUR',
      TRIBUTARY_ROUTES_ACCESS_CREATE_TABLE_CLUSTERING: '[service]',
    }).routes;
    expect(access?.schemaEvolution).toBe('add-columns');
    expect(access?.createTable).toEqual({ partitioning: { type: 'HOUR' }, clustering: ['service'] });
  });
});
