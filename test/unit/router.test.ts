import { describe, expect, it } from 'vitest';
import { createRouter } from '../../src/core/router.js';
import { TributaryError } from '../../src/errors.js';

const routes = [
  { name: 'access', match: ['access', 'access_v2'] },
  { name: 'audit', match: ['com.acme.Audit'] },
];

describe('router', () => {
  it('routes by attribute', () => {
    const router = createRouter({ from: 'attribute', key: 'log_type', unrouted: 'dead-letter' }, routes);
    expect(router.route({ attributes: { log_type: 'access_v2' }, recordName: 'x', row: {} })).toBe('access');
  });

  it('routes by the record full name', () => {
    const router = createRouter({ from: 'record-name', key: 'log_type', unrouted: 'dead-letter' }, routes);
    expect(router.route({ attributes: {}, recordName: 'com.acme.Audit', row: {} })).toBe('audit');
  });

  it('routes by a nested field of the record', () => {
    const router = createRouter({ from: 'field', key: 'meta.kind', unrouted: 'dead-letter' }, routes);
    expect(router.route({ attributes: {}, recordName: 'x', row: { meta: { kind: 'access' } } })).toBe('access');
    expect(() => router.route({ attributes: {}, recordName: 'x', row: { meta: null } })).toThrow(/no log type/);
  });

  it('unknown log types follow `unrouted`', () => {
    const dead = createRouter({ from: 'attribute', key: 'log_type', unrouted: 'dead-letter' }, routes);
    let error: unknown;
    try {
      dead.route({ attributes: { log_type: 'nope' }, recordName: 'x', row: {} });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TributaryError);
    expect((error as TributaryError).code).toBe('UNROUTED');
    expect((error as TributaryError).message).toContain('"nope"');
    const fallback = createRouter({ from: 'attribute', key: 'log_type', unrouted: 'audit' }, routes);
    expect(fallback.route({ attributes: {}, recordName: 'x', row: {} })).toBe('audit');
  });
});
