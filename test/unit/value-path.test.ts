import { describe, expect, it } from 'vitest';
import { describeValue, formatPath, type PathNode } from '../../src/core/value-path.js';

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

  it('describes a value briefly, with the word for null of each side', () => {
    expect(describeValue(null)).toBe('null');
    expect(describeValue(null, 'NULL')).toBe('NULL');
    expect(describeValue(undefined)).toBe('undefined (missing)');
    expect(describeValue(12n)).toBe('12 (bigint)');
    expect(describeValue('x'.repeat(100))).toBe(JSON.stringify(`${'x'.repeat(64)}...`));
    expect(describeValue(Buffer.alloc(3))).toBe('Buffer(3)');
    expect(describeValue([1])).toBe('an array');
    expect(describeValue(true)).toBe('true (boolean)');
  });
});
