import { describe, expect, it } from 'vitest';
import { describeDecoded, describeRowValue, formatPath, type PathNode } from '../../src/core/rows/value-path.js';

describe('value paths', () => {
  it('writes fields with dots, indices in brackets and map keys quoted', () => {
    const request: PathNode = { parent: undefined, key: 'request' };
    const headers: PathNode = { parent: request, key: 'headers' };
    expect(formatPath(headers, 2)).toBe('request.headers[2]');
    const labels: PathNode = { parent: undefined, key: 'labels', map: true };
    expect(formatPath(labels, 'env')).toBe('labels["env"]');
    expect(formatPath({ parent: labels, key: 'a.b' }, 'value')).toBe('labels["a.b"].value');
    expect(formatPath(undefined, '')).toBe('');
  });

  it('describes a decoded value briefly, in Avro terms', () => {
    expect(describeDecoded(null)).toBe('null');
    expect(describeDecoded(undefined)).toBe('undefined (missing)');
    expect(describeDecoded(12n)).toBe('12 (bigint)');
    expect(describeDecoded('x'.repeat(100))).toBe(JSON.stringify(`${'x'.repeat(64)}...`));
    expect(describeDecoded(Buffer.alloc(3))).toBe('Buffer(3)');
    expect(describeDecoded([1])).toBe('an array');
    expect(describeDecoded(true)).toBe('true (boolean)');
  });

  it('describes a row value in BigQuery words', () => {
    expect(describeRowValue(null)).toBe('NULL');
    expect(describeRowValue('x')).toBe('"x"');
    expect(describeRowValue({})).toBe('an object');
    expect(describeRowValue(1.5)).toBe('1.5 (number)');
  });
});
