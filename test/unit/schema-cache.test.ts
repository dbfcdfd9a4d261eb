import { describe, expect, it } from 'vitest';
import { SchemaCache, type SchemaRegistry } from '../../src/core/schema-cache.js';
import type { SchemaReference } from '../../src/core/schema-reference.js';
import { TributaryError } from '../../src/errors.js';

const schema = JSON.stringify({ type: 'record', name: 'com.acme.Access', fields: [{ name: 'path', type: 'string' }] });
const events = { hit() {}, miss() {}, fetched() {} };

class CountingRegistry implements SchemaRegistry {
  readonly name = 'test';
  fetches = 0;
  fail: TributaryError | undefined;
  definition = schema;
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => {};

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open();
  }

  async fetch(_ref: SchemaReference): Promise<string> {
    this.fetches++;
    await this.gate;
    if (this.fail) throw this.fail;
    return this.definition;
  }
}

const ref: SchemaReference = { kind: 'confluent', id: 7 };

describe('SchemaCache', () => {
  it('concurrent misses share one fetch', async () => {
    const registry = new CountingRegistry();
    const cache = new SchemaCache(registry, 100, events);
    registry.hold();
    const all = Promise.all(Array.from({ length: 50 }, () => cache.get(ref)));
    registry.release();
    const results = await all;
    expect(registry.fetches).toBe(1);
    expect(new Set(results).size).toBe(1);
    expect(results[0]?.recordName).toBe('com.acme.Access');
    expect(cache.getCached('confluent:7')).toBe(results[0]);
    await cache.get(ref);
    expect(registry.fetches).toBe(1);
  });

  it('does not cache a failed fetch', async () => {
    const registry = new CountingRegistry();
    const cache = new SchemaCache(registry, 100, events);
    registry.fail = new TributaryError('REGISTRY_UNAVAILABLE', 'down');
    await expect(cache.get(ref)).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
    registry.fail = undefined;
    await expect(cache.get(ref)).resolves.toMatchObject({ key: 'confluent:7' });
    expect(registry.fetches).toBe(2);
  });

  it('remembers a schema that does not compile, as SCHEMA_INVALID', async () => {
    const registry = new CountingRegistry();
    registry.definition = '{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nosuchtype"}]}';
    const cache = new SchemaCache(registry, 100, events);
    await expect(cache.get(ref)).rejects.toMatchObject({ code: 'SCHEMA_INVALID' });
    expect(() => cache.getCached('confluent:7')).toThrow(/nosuchtype/);
    await expect(cache.get(ref)).rejects.toMatchObject({ code: 'SCHEMA_INVALID' });
    expect(registry.fetches).toBe(1);
  });

  it('rejects garbage and non-record schemas as SCHEMA_INVALID', async () => {
    for (const definition of ['not json', '"string"', '{"type": "array", "items": "int"}']) {
      const registry = new CountingRegistry();
      registry.definition = definition;
      await expect(new SchemaCache(registry, 10, events).get(ref)).rejects.toMatchObject({ code: 'SCHEMA_INVALID' });
    }
  });

  it('is bounded', async () => {
    const registry = new CountingRegistry();
    const cache = new SchemaCache(registry, 3, events);
    for (let id = 0; id < 10; id++) await cache.get({ kind: 'confluent', id });
    expect(cache.size).toBe(3);
  });
});
