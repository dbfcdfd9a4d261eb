import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SCHEMA_REGISTRY_CONTENT_TYPE, startConfluentRegistryServer, type ConfluentRegistryServer } from '../support/confluent-registry-server.js';

const ACCESS_LOG = {
  type: 'record',
  name: 'AccessLog',
  namespace: 'com.example.logs',
  fields: [{ name: 'path', type: 'string' }],
};

let registry: ConfluentRegistryServer;

beforeAll(async () => {
  registry = await startConfluentRegistryServer();
});

beforeEach(() => {
  registry.reset();
});

afterAll(async () => {
  await registry.close();
});

async function getJson(path: string, init?: RequestInit): Promise<{ status: number; contentType: string | null; body: unknown }> {
  const response = await fetch(`${registry.url}${path}`, init);
  return { status: response.status, contentType: response.headers.get('content-type'), body: JSON.parse(await response.text()) as unknown };
}

describe('Confluent-compatible schema registry test server', () => {
  it('answers GET /schemas/ids/{id} with the schema as a JSON string, Confluent style', async () => {
    registry.register(42, ACCESS_LOG);
    registry.register(43, '{"type":"object"}', { schemaType: 'JSON' });

    const avro = await getJson('/schemas/ids/42');
    expect(avro.status).toBe(200);
    expect(avro.contentType).toBe(SCHEMA_REGISTRY_CONTENT_TYPE);
    // No schemaType for AVRO, exactly like Confluent.
    expect(avro.body).toEqual({ schema: JSON.stringify(ACCESS_LOG) });

    expect((await getJson('/schemas/ids/43')).body).toEqual({ schema: '{"type":"object"}', schemaType: 'JSON' });
    expect((await getJson('/schemas/ids/42?fetchMaxId=false')).status).toBe(200);
    expect(registry.requests.map((r) => r.path)).toEqual(['/schemas/ids/42', '/schemas/ids/43', '/schemas/ids/42']);
    expect(registry.requests[2]?.query).toBe('?fetchMaxId=false');
  });

  it('answers 404 with error_code 40403 for an unknown id', async () => {
    const missing = await getJson('/schemas/ids/7');
    expect(missing).toEqual({ status: 404, contentType: SCHEMA_REGISTRY_CONTENT_TYPE, body: { error_code: 40403, message: 'Schema 7 not found' } });
  });

  it('serves subjects and versions, and references in both endpoints', async () => {
    const common = { type: 'record', name: 'Common', namespace: 'com.example', fields: [{ name: 'host', type: 'string' }] };
    registry.register(1, common, { subject: 'common-value' });
    registry.register(2, { ...common, fields: [...common.fields, { name: 'zone', type: ['null', 'string'], default: null }] }, { subject: 'common-value' });
    const references = [{ name: 'com.example.Common', subject: 'common-value', version: 1 }];
    registry.register(3, { type: 'record', name: 'Event', fields: [{ name: 'common', type: 'com.example.Common' }] }, { references });

    expect((await getJson('/schemas/ids/3')).body).toMatchObject({ references });
    expect((await getJson('/subjects/common-value/versions/1')).body).toEqual({ subject: 'common-value', version: 1, id: 1, schema: JSON.stringify(common) });
    expect((await getJson('/subjects/common-value/versions/latest')).body).toMatchObject({ version: 2, id: 2 });
    expect((await getJson('/subjects/common-value/versions/9')).body).toEqual({ error_code: 40402, message: 'Version 9 not found.' });
    expect((await getJson('/subjects/nope/versions/1')).body).toEqual({ error_code: 40401, message: "Subject 'nope' not found." });
    expect((await getJson('/subjects/common-value/versions/0')).status).toBe(422);
  });

  it('checks basic and bearer authorization when asked to, and records what was sent', async () => {
    registry.register(42, ACCESS_LOG);
    registry.setAuth({ username: 'alice', password: 's3cret' });
    expect(await getJson('/schemas/ids/42')).toMatchObject({ status: 401, body: { error_code: 401, message: 'Unauthorized' } });
    const wrong = `Basic ${Buffer.from('alice:nope').toString('base64')}`;
    expect((await getJson('/schemas/ids/42', { headers: { authorization: wrong } })).status).toBe(401);
    const right = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
    expect((await getJson('/schemas/ids/42', { headers: { authorization: right } })).status).toBe(200);

    registry.setAuth({ bearer: 'token-1' });
    expect((await getJson('/schemas/ids/42', { headers: { authorization: 'Bearer token-2' } })).status).toBe(401);
    expect((await getJson('/schemas/ids/42', { headers: { authorization: 'Bearer token-1' } })).status).toBe(200);
    registry.setAuth(null);
    expect((await getJson('/schemas/ids/42')).status).toBe(200);

    expect(registry.requests.map((r) => r.authorization)).toEqual([undefined, wrong, right, 'Bearer token-2', 'Bearer token-1', undefined]);
  });

  it('fails the next n requests, then recovers; can also drop the connection', async () => {
    registry.register(42, ACCESS_LOG);
    registry.failNext(2, 503);
    registry.failNext(1, 'reset');
    expect((await getJson('/schemas/ids/42')).status).toBe(503);
    expect((await getJson('/schemas/ids/42')).body).toEqual({ error_code: 50003, message: 'Error while forwarding the request to the primary' });
    await expect(fetch(`${registry.url}/schemas/ids/42`)).rejects.toThrow();
    expect((await getJson('/schemas/ids/42')).status).toBe(200);
    registry.failNext(1);
    expect((await getJson('/schemas/ids/42')).body).toEqual({ error_code: 50001, message: 'Error in the backend data store' });
  });

  it('answers 200 with garbage when told to', async () => {
    registry.register(42, ACCESS_LOG);
    registry.setGarbage(true);
    const response = await fetch(`${registry.url}/schemas/ids/42`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(() => JSON.parse(text) as unknown).toThrow();

    registry.setGarbage('wrong-shape');
    const wrongShape = await getJson('/schemas/ids/42');
    expect(wrongShape.status).toBe(200);
    expect(wrongShape.body).not.toHaveProperty('schema');

    registry.setGarbage('bad-schema');
    expect((await getJson('/schemas/ids/42')).body).toEqual({ schema: '{not json' });

    registry.setGarbage(false);
    expect((await getJson('/schemas/ids/42')).body).toEqual({ schema: JSON.stringify(ACCESS_LOG) });
  });

  it('delays answers by the configured latency', async () => {
    registry.register(42, ACCESS_LOG);
    registry.setLatency(150);
    const started = performance.now();
    expect((await getJson('/schemas/ids/42')).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);

    // A client that gives up early sees a timeout, not an answer.
    await expect(fetch(`${registry.url}/schemas/ids/42`, { signal: AbortSignal.timeout(30) })).rejects.toThrow();
  });
});
