import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonByteLength } from '../../src/core/row-size.js';
import type { RowValue } from '../../src/core/table-schema.js';

const exact = (value: unknown): number => Buffer.byteLength(JSON.stringify(value));

describe('jsonByteLength', () => {
  it('equals the UTF-8 length of JSON.stringify for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        expect(jsonByteLength(value as RowValue)).toBe(exact(value));
      }),
      { numRuns: 2000 },
    );
  });

  it('equals it for strings of any code units, lone surrogates included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        expect(jsonByteLength({ [a]: b, list: [a, b] })).toBe(exact({ [a]: b, list: [a, b] }));
      }),
      { numRuns: 2000 },
    );
  });

  it('counts escapes, multi-byte characters and lone surrogates as JSON.stringify writes them', () => {
    for (const s of ['', 'plain', 'quote " and \\ backslash', 'tab\tnew\nline\u0001', '\u007f', 'é', '€', '😀', '\ud800 lone', 'x\udc00']) {
      expect(jsonByteLength(s)).toBe(exact(s));
    }
  });

  it('writes numbers as JSON does: non-finite as null, -0 as 0, doubles in their shortest form', () => {
    for (const n of [0, -0, 7, -7, 10, 99, 100, -100, 9_007_199_254_740_991, -9_007_199_254_740_991, 1e21, 1.5, -0.1, 5e-324, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(jsonByteLength(n)).toBe(exact(n));
    }
  });

  it('skips undefined fields and writes undefined array items as null', () => {
    const row = { a: 1, b: undefined, c: [1, undefined, 'x'] } as unknown as RowValue;
    expect(jsonByteLength(row)).toBe(exact(row));
  });

  it('sizes a converted row with metadata like the request body holds it', () => {
    const row = { ts: '2025-11-24T16:00:00.000001Z', path: '/api/v2/customers/1/orders?page=2', status: 200, tags: ['edge'], headers: [{ key: 'host', value: 'example.com' }], ua: null };
    expect(jsonByteLength(row)).toBe(exact(row));
  });
});
