import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfluentSchemaRegistry, MAX_REFERENCE_DEPTH } from '../../src/adapters/schema-registries.js';
import { confluentSubjectSource } from '../../src/adapters/fingerprint-sources.js';
import { compileSchema } from '../../src/core/schema-cache.js';
import { startConfluentRegistryServer, type ConfluentRegistryServer } from '../support/confluent-registry-server.js';

let server: ConfluentRegistryServer;
let registry: ConfluentSchemaRegistry;

beforeAll(async () => {
  server = await startConfluentRegistryServer();
});
afterAll(() => server.close());
beforeEach(() => {
  server.reset();
  registry = new ConfluentSchemaRegistry({ url: server.url, timeoutMs: 2000 });
});

const address = {
  type: 'record',
  name: 'Address',
  namespace: 'com.acme.common',
  fields: [
    { name: 'city', type: 'string' },
    { name: 'zone', type: 'Zone' },
  ],
};
const zone = { type: 'enum', name: 'Zone', namespace: 'com.acme.common', symbols: ['EU', 'US'] };

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return (err as { code: string }).code;
  }
}

describe('Confluent schema references', () => {
  it('resolves references recursively into one self-contained schema', async () => {
    server.register(1, zone, { subject: 'zone-value' });
    server.register(2, address, { subject: 'address-value', references: [{ name: 'com.acme.common.Zone', subject: 'zone-value', version: 1 }] });
    server.register(
      10,
      {
        type: 'record',
        name: 'Order',
        namespace: 'com.acme.shop',
        fields: [
          { name: 'id', type: 'long' },
          { name: 'ship_to', type: 'com.acme.common.Address' },
          { name: 'bill_to', type: ['null', 'com.acme.common.Address'], default: null },
          { name: 'origin', type: 'com.acme.common.Zone' },
        ],
      },
      { references: [{ name: 'com.acme.common.Address', subject: 'address-value', version: 1 }] },
    );

    const text = await registry.fetch({ kind: 'confluent', id: 10 });
    const schema = JSON.parse(text) as { fields: Array<{ name: string; type: unknown }> };
    // inlined where first used, by full name afterwards
    expect(schema.fields[1]?.type).toMatchObject({
      type: 'record',
      name: 'Address',
      fields: [{ name: 'city' }, { name: 'zone', type: { type: 'enum', name: 'Zone' } }],
    });
    expect(schema.fields[2]?.type).toEqual(['null', 'com.acme.common.Address']);
    expect(schema.fields[3]?.type).toBe('com.acme.common.Zone');
    const compiled = compileSchema('confluent:10', text);
    const value = { id: 1, ship_to: { city: 'Lyon', zone: 'EU' }, bill_to: null, origin: 'US' };
    expect(compiled.type.fromBuffer(compiled.type.toBuffer(value))).toEqual(value);
  });

  it('fetches each referenced subject version once', async () => {
    server.register(1, zone, { subject: 'zone-value' });
    const refs = [{ name: 'com.acme.common.Zone', subject: 'zone-value', version: 1 }];
    server.register(10, { type: 'record', name: 'A', fields: [{ name: 'z', type: 'com.acme.common.Zone' }] }, { references: refs });
    server.register(11, { type: 'record', name: 'B', fields: [{ name: 'z', type: 'com.acme.common.Zone' }] }, { references: refs });
    await registry.fetch({ kind: 'confluent', id: 10 });
    await registry.fetch({ kind: 'confluent', id: 11 });
    expect(server.requests.filter((r) => r.path === '/subjects/zone-value/versions/1')).toHaveLength(1);
  });

  it('refuses a reference cycle and a chain deeper than the limit with SCHEMA_INVALID', async () => {
    server.register(
      1,
      { type: 'record', name: 'A', fields: [{ name: 'b', type: ['null', 'B'] }] },
      { subject: 'a', references: [{ name: 'B', subject: 'b', version: 1 }] },
    );
    server.register(
      2,
      { type: 'record', name: 'B', fields: [{ name: 'a', type: ['null', 'A'] }] },
      { subject: 'b', references: [{ name: 'A', subject: 'a', version: 1 }] },
    );
    await expect(registry.fetch({ kind: 'confluent', id: 1 })).rejects.toThrow(/reference cycle: b\/1 -> a\/1 -> b\/1/);

    for (let i = 0; i <= MAX_REFERENCE_DEPTH + 1; i++) {
      const references = i === 0 ? [] : [{ name: `T${i - 1}`, subject: `s${i - 1}`, version: 1 }];
      server.register(100 + i, { type: 'record', name: `T${i}`, fields: i === 0 ? [] : [{ name: 'x', type: `T${i - 1}` }] }, { subject: `s${i}`, references });
    }
    expect(await codeOf(registry.fetch({ kind: 'confluent', id: 100 + MAX_REFERENCE_DEPTH }))).toBe('ok');
    await expect(registry.fetch({ kind: 'confluent', id: 100 + MAX_REFERENCE_DEPTH + 1 })).rejects.toThrow(/more than 16 levels deep/);
  });

  it('a missing referenced version is SCHEMA_NOT_FOUND; an unavailable registry stays retryable and is not cached', async () => {
    server.register(
      10,
      { type: 'record', name: 'A', fields: [{ name: 'z', type: 'com.acme.common.Zone' }] },
      { references: [{ name: 'com.acme.common.Zone', subject: 'zone-value', version: 1 }] },
    );
    expect(await codeOf(registry.fetch({ kind: 'confluent', id: 10 }))).toBe('SCHEMA_NOT_FOUND');
    server.register(1, zone, { subject: 'zone-value' });
    server.failNext(1, 503);
    expect(await codeOf(registry.fetch({ kind: 'confluent', id: 10 }))).toBe('REGISTRY_UNAVAILABLE');
    expect(await codeOf(registry.fetch({ kind: 'confluent', id: 10 }))).toBe('ok');
  });

  it('lists every version of a subject for the fingerprint index, references resolved', async () => {
    server.register(1, zone, { subject: 'zone-value' });
    server.register(2, address, { subject: 'address-value', references: [{ name: 'com.acme.common.Zone', subject: 'zone-value', version: 1 }] });
    server.register(
      3,
      { ...address, fields: [...address.fields, { name: 'street', type: ['null', 'string'], default: null }] },
      { subject: 'address-value', references: [{ name: 'com.acme.common.Zone', subject: 'zone-value', version: 1 }] },
    );
    const listed = await confluentSubjectSource(registry, ['address-value']).list();
    expect(listed.map((s) => s.source)).toEqual(['confluent:address-value/1', 'confluent:address-value/2']);
    for (const s of listed) expect(() => compileSchema(s.source, s.definition)).not.toThrow();
    // A subject that does not exist (yet) holds no schema; it does not make the index unavailable.
    expect(await confluentSubjectSource(registry, ['nope', 'address-value']).list()).toHaveLength(2);
    server.failNext(1, 503);
    expect(await codeOf(confluentSubjectSource(registry, ['zone-value']).list())).toBe('REGISTRY_UNAVAILABLE');
  });
});

describe('Confluent registry answers: whose fault it is', () => {
  it('an unknown id (404) is SCHEMA_NOT_FOUND: the message is dead-lettered', async () => {
    expect(await codeOf(registry.fetch({ kind: 'confluent', id: 404 }))).toBe('SCHEMA_NOT_FOUND');
  });

  it('401 and 403 refuse the worker, not the message: REGISTRY_ACCESS_DENIED, nacked with readiness failing, never dead-lettered', async () => {
    server.register(1, zone);
    server.setAuth({ bearer: 'not-the-worker' });
    const refused = await registry.fetch({ kind: 'confluent', id: 1 }).catch((err: unknown) => err as { code: string; message: string });
    expect(refused).toMatchObject({ code: 'REGISTRY_ACCESS_DENIED' });
    expect((refused as { message: string }).message).toContain('401');
    server.setAuth(null);
    server.failNext(1, 403);
    expect(await codeOf(registry.fetch({ kind: 'confluent', id: 1 }))).toBe('REGISTRY_ACCESS_DENIED');
    expect(await codeOf(registry.fetch({ kind: 'confluent', id: 1 }))).toBe('ok');
  });
});
