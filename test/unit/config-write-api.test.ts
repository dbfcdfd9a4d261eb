import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const base = `
projectId: my-project
subscription: logs-worker
routes:
  access:
    match: [access]
    table: logs.access
  audit:
    match: [audit]
    table: logs.audit
    writeApi: storage-write
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

describe('bigquery.writeApi and routes.<name>.writeApi', () => {
  it('defaults to storage-write; a route may choose its own', () => {
    const config = parseConfig(base.replace('writeApi: storage-write', 'writeApi: insert-all'), {});
    expect(config.bigquery.writeApi).toBe('storage-write');
    expect(config.bigquery.storageApiEndpoint).toBeUndefined();
    expect(config.routes.map((r) => [r.name, r.writeApi])).toEqual([
      ['access', 'storage-write'],
      ['audit', 'insert-all'],
    ]);
  });

  it('routes without their own follow bigquery.writeApi', () => {
    const config = parseConfig(`${base}bigquery: { writeApi: insert-all, storageApiEndpoint: "127.0.0.1:9060" }\n`, {});
    expect(config.routes.map((r) => r.writeApi)).toEqual(['insert-all', 'storage-write']);
    expect(config.bigquery.storageApiEndpoint).toBe('127.0.0.1:9060');
  });

  it('is set from the environment too', () => {
    const config = parseConfig(base, {
      TRIBUTARY_BIGQUERY_WRITE_API: 'insert-all',
      TRIBUTARY_BIGQUERY_STORAGE_API_ENDPOINT: 'localhost:9060',
      TRIBUTARY_ROUTES_AUDIT_WRITE_API: 'insert-all',
    });
    expect(config.routes.map((r) => r.writeApi)).toEqual(['insert-all', 'insert-all']);
    expect(config.bigquery.storageApiEndpoint).toBe('localhost:9060');
  });

  it('refuses unknown write APIs and endpoints that are not host:port', () => {
    const problems = problemsOf(`${base}bigquery: { writeApi: streaming, storageApiEndpoint: "http://127.0.0.1:9060" }\n`);
    expect(problems.some((p) => p.includes('bigquery.writeApi'))).toBe(true);
    expect(problems.some((p) => p.includes('bigquery.storageApiEndpoint') && p.includes('host:port'))).toBe(true);
  });
});
