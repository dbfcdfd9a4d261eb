import { describe, expect, it } from 'vitest';
import { FingerprintIndex, FingerprintSchemaRegistry, type KnownSchema, type SchemaSource } from '../../src/core/fingerprint-index.js';
import type { SchemaRegistry } from '../../src/core/schema-cache.js';
import { fingerprintSchema } from '../../src/core/schema-fingerprint.js';
import { TributaryError } from '../../src/errors.js';

const a = JSON.stringify({ type: 'record', name: 'A', namespace: 'x', fields: [{ name: 'n', type: 'int' }] });
const b = JSON.stringify({ type: 'record', name: 'B', namespace: 'x', fields: [{ name: 'n', type: 'int' }] });
const fpA = fingerprintSchema(a).hex;
const fpB = fingerprintSchema(b).hex;

function source(schemas: KnownSchema[]): SchemaSource & { calls: number; fail: boolean; schemas: KnownSchema[] } {
  const s = {
    name: 'test',
    calls: 0,
    fail: false,
    schemas,
    async list(): Promise<KnownSchema[]> {
      s.calls++;
      if (s.fail) throw new TributaryError('REGISTRY_UNAVAILABLE', 'down');
      return s.schemas;
    },
  };
  return s;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return (err as TributaryError).code;
  }
}

describe('FingerprintIndex', () => {
  it('finds a schema by the fingerprint of its canonical form, whatever its formatting', async () => {
    const pretty = JSON.stringify(JSON.parse(a), null, 2).replace('"name": "A"', '"doc": "ignored", "name": "A"');
    const src = source([{ source: 'dir:a.avsc', definition: pretty }]);
    const index = new FingerprintIndex([src], { now: () => 0, minRefreshIntervalMs: 60_000 });
    expect((await index.lookup(fpA)).source).toBe('dir:a.avsc');
    expect(src.calls).toBe(1);
  });

  it('refreshes on an unknown fingerprint at most once per interval, then answers SCHEMA_NOT_FOUND', async () => {
    let now = 0;
    const src = source([{ source: 'a', definition: a }]);
    const index = new FingerprintIndex([src], { now: () => now, minRefreshIntervalMs: 60_000 });
    await index.refresh();
    expect(src.calls).toBe(1);
    expect(await codeOf(index.lookup(fpB))).toBe('SCHEMA_NOT_FOUND');
    expect(src.calls).toBe(1); // within the interval: no second crawl
    src.schemas = [...src.schemas, { source: 'b', definition: b }];
    now = 59_999;
    expect(await codeOf(index.lookup(fpB))).toBe('SCHEMA_NOT_FOUND');
    now = 60_000;
    expect((await index.lookup(fpB)).source).toBe('b');
    expect(src.calls).toBe(2);
    // A known fingerprint never refreshes.
    now = 1e9;
    await index.lookup(fpA);
    expect(src.calls).toBe(2);
  });

  it('concurrent lookups of unknown fingerprints share one refresh', async () => {
    const src = source([{ source: 'a', definition: a }]);
    const index = new FingerprintIndex([src], { now: () => 0, minRefreshIntervalMs: 60_000 });
    const results = await Promise.all([index.lookup(fpA), index.lookup(fpA), codeOf(index.lookup(fpB))]);
    expect(results[2]).toBe('SCHEMA_NOT_FOUND');
    expect(src.calls).toBe(1);
  });

  it('a source that cannot answer is REGISTRY_UNAVAILABLE, never SCHEMA_NOT_FOUND, and is retried once the interval passed', async () => {
    let now = 0;
    const src = source([{ source: 'a', definition: a }]);
    src.fail = true;
    const index = new FingerprintIndex([src], { now: () => now, minRefreshIntervalMs: 1000 });
    expect(await codeOf(index.lookup(fpA))).toBe('REGISTRY_UNAVAILABLE');
    expect(await codeOf(index.lookup(fpA))).toBe('REGISTRY_UNAVAILABLE');
    expect(src.calls).toBe(1);
    src.fail = false;
    now = 1000;
    expect((await index.lookup(fpA)).source).toBe('a');
  });

  it('skips schemas that do not parse and reports them', async () => {
    const reports: Array<[number, number]> = [];
    const src = source([
      { source: 'bad', definition: '{not json' },
      { source: 'a', definition: a },
    ]);
    const index = new FingerprintIndex([src], { now: () => 0, minRefreshIntervalMs: 1000, onRefresh: (n, skipped) => reports.push([n, skipped.length]) });
    await index.refresh();
    expect(reports).toEqual([[1, 1]]);
    expect(index.size).toBe(1);
  });
});

describe('FingerprintSchemaRegistry', () => {
  it('answers fingerprints from the index and passes every other reference on', async () => {
    const asked: string[] = [];
    const inner: SchemaRegistry = {
      name: 'inner',
      async fetch(ref) {
        asked.push(ref.kind);
        return b;
      },
    };
    const registry = new FingerprintSchemaRegistry(
      inner,
      new FingerprintIndex([source([{ source: 'a', definition: a }])], { now: () => 0, minRefreshIntervalMs: 1 }),
    );
    expect(await registry.fetch({ kind: 'fingerprint', fingerprint: fpA })).toBe(a);
    expect(await registry.fetch({ kind: 'confluent', id: 1 })).toBe(b);
    expect(asked).toEqual(['confluent']);
    expect(registry.name).toBe('inner');
  });
});
