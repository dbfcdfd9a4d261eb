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

describe('SchemaCache: registry health, what readiness consults', () => {
  const refOf = (id: number): SchemaReference => ({ kind: 'confluent', id });

  function setup(): { registry: CountingRegistry; cache: SchemaCache; clock: { ms: number }; faults: TributaryError[]; recoveries: number[] } {
    const registry = new CountingRegistry();
    const clock = { ms: 0 };
    const faults: TributaryError[] = [];
    const recoveries: number[] = [];
    const cache = new SchemaCache(
      registry,
      100,
      { ...events, registryFault: (e) => faults.push(e), registryRecovered: () => recoveries.push(clock.ms) },
      () => clock.ms,
    );
    return { registry, cache, clock, faults, recoveries };
  }

  it('a refusal of the worker makes the registry unhealthy, reported once per period however many messages fail', async () => {
    const { registry, cache, clock, faults } = setup();
    expect(cache.registryHealth()).toEqual({ healthy: true });
    registry.fail = new TributaryError('REGISTRY_ACCESS_DENIED', 'the worker may not read schemas');
    for (let i = 0; i < 50; i++) {
      clock.ms += 1000;
      await expect(cache.get(refOf(i))).rejects.toMatchObject({ code: 'REGISTRY_ACCESS_DENIED' });
    }
    // 50 s of failures: one loud report, not 50.
    expect(faults).toHaveLength(1);
    expect(cache.registryHealth()).toEqual({
      healthy: false,
      code: 'REGISTRY_ACCESS_DENIED',
      reason: 'the worker may not read schemas',
      failingForSeconds: 49,
    });
    clock.ms += 10_000;
    await expect(cache.get(refOf(98))).rejects.toMatchObject({ code: 'REGISTRY_ACCESS_DENIED' });
    expect(faults).toHaveLength(1);
    // 60 s after the first report: the next one.
    clock.ms += 1000;
    await expect(cache.get(refOf(99))).rejects.toMatchObject({ code: 'REGISTRY_ACCESS_DENIED' });
    expect(faults).toHaveLength(2);
  });

  it('stays unhealthy until a schema read succeeds, then reports the recovery once', async () => {
    const { registry, cache, clock, faults, recoveries } = setup();
    registry.fail = new TributaryError('REGISTRY_ACCESS_DENIED', 'denied');
    await expect(cache.get(refOf(1))).rejects.toMatchObject({ code: 'REGISTRY_ACCESS_DENIED' });
    // An unknown id is not a read that succeeded: still unhealthy.
    registry.fail = new TributaryError('SCHEMA_NOT_FOUND', 'no such id');
    await expect(cache.get(refOf(2))).rejects.toMatchObject({ code: 'SCHEMA_NOT_FOUND' });
    expect(cache.registryHealth().healthy).toBe(false);
    registry.fail = undefined;
    clock.ms = 5000;
    await cache.get(refOf(3));
    expect(cache.registryHealth()).toEqual({ healthy: true });
    expect(recoveries).toEqual([5000]);
    await cache.get(refOf(4));
    expect(recoveries).toEqual([5000]);
    // A new fault after a recovery is news at once, whatever the period.
    registry.fail = new TributaryError('REGISTRY_ACCESS_DENIED', 'denied again');
    await expect(cache.get(refOf(5))).rejects.toMatchObject({ code: 'REGISTRY_ACCESS_DENIED' });
    expect(faults.map((f) => f.message)).toEqual(['denied', 'denied again']);
  });

  it('a registry that is merely down is not a readiness matter', async () => {
    const { registry, cache, faults } = setup();
    registry.fail = new TributaryError('REGISTRY_UNAVAILABLE', 'down');
    await expect(cache.get(refOf(1))).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
    expect(cache.registryHealth()).toEqual({ healthy: true });
    expect(faults).toEqual([]);
  });
});
