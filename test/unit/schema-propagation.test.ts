import { describe, expect, it } from 'vitest';
import { PROPAGATION_WAIT_BOUND_MS, propagationDelay, tableHasField, unknownFieldPath } from '../../src/core/schema-propagation.js';
import type { TableSchema } from '../../src/core/table-schema.js';

const TABLE: TableSchema = {
  fields: [
    { name: 'id', type: 'STRING' },
    { name: 'Region', type: 'STRING' },
    { name: 'source', type: 'RECORD', fields: [{ name: 'zone', type: 'STRING' }] },
    { name: 'items', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'sku', type: 'STRING' }] },
  ],
};

describe('unknownFieldPath', () => {
  it('reads the field of a "no such field" error from its location or its message', () => {
    expect(unknownFieldPath('no such field: region.', 'region')).toBe('region');
    expect(unknownFieldPath('no such field: source.zone.', '')).toBe('source.zone');
    expect(unknownFieldPath('no such field: items.sku.', 'items[3].sku')).toBe('items.sku');
    expect(unknownFieldPath('No such field: x', '')).toBe('x');
  });

  it('is null for every other error', () => {
    expect(unknownFieldPath('Cannot convert value to integer. Field: n; Value: x', 'n')).toBeNull();
    expect(unknownFieldPath('Missing required field: id.', 'id')).toBeNull();
    expect(unknownFieldPath('no such field', '')).toBeNull();
  });
});

describe('tableHasField', () => {
  it('finds top-level and nested fields, case-insensitively, through repeated records', () => {
    expect(tableHasField(TABLE, 'region')).toBe(true);
    expect(tableHasField(TABLE, 'source.zone')).toBe(true);
    expect(tableHasField(TABLE, 'items.sku')).toBe(true);
    expect(tableHasField(TABLE, 'source.host')).toBe(false);
    expect(tableHasField(TABLE, 'id.x')).toBe(false);
    expect(tableHasField(TABLE, 'nope')).toBe(false);
  });
});

describe('propagationDelay', () => {
  const policy = { initialDelayMs: 1000, maxDelayMs: 30_000 };

  it('backs off with jitter, at least the initial delay, until the bound, then says stop', () => {
    expect(propagationDelay(policy, 1, 0, PROPAGATION_WAIT_BOUND_MS, () => 0)).toBe(1000);
    expect(propagationDelay(policy, 6, 0, PROPAGATION_WAIT_BOUND_MS, () => 1)).toBe(30_000);
    expect(propagationDelay(policy, 20, 0, PROPAGATION_WAIT_BOUND_MS, () => 0.5)).toBe(15_000);
    // Never sleeps past the bound.
    expect(propagationDelay(policy, 6, PROPAGATION_WAIT_BOUND_MS - 2000, PROPAGATION_WAIT_BOUND_MS, () => 1)).toBe(2000);
    expect(propagationDelay(policy, 6, PROPAGATION_WAIT_BOUND_MS, PROPAGATION_WAIT_BOUND_MS, () => 1)).toBeNull();
    expect(PROPAGATION_WAIT_BOUND_MS).toBe(600_000);
  });
});
