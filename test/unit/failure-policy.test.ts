import { describe, expect, it } from 'vitest';
import { ERROR_CODES, TributaryError, type ErrorCode } from '../../src/errors.js';
import { actionFor } from '../../src/core/failure-policy.js';

describe('failure policy: what happens to a message that failed with code X', () => {
  it('maps every code to one action, in one table', () => {
    const table = Object.fromEntries((Object.keys(ERROR_CODES) as ErrorCode[]).map((code) => [code, actionFor(new TributaryError(code, ''))]));
    expect(table).toEqual({
      NO_SCHEMA_REFERENCE: 'dead-letter',
      SCHEMA_NOT_FOUND: 'dead-letter',
      SCHEMA_INVALID: 'dead-letter',
      DECODE_FAILED: 'dead-letter',
      UNROUTED: 'dead-letter',
      CONVERSION_FAILED: 'dead-letter',
      ROW_INVALID: 'dead-letter',
      UNKNOWN_FIELD: 'dead-letter',
      ROW_TOO_LARGE: 'dead-letter',
      BIGQUERY_ROW_INVALID: 'dead-letter',
      SCHEMA_INCOMPATIBLE: 'dead-letter',
      SCHEMA_PROPAGATING: 'retry',
      REGISTRY_UNAVAILABLE: 'retry',
      REGISTRY_ACCESS_DENIED: 'retry',
      BIGQUERY_UNAVAILABLE: 'retry',
      BIGQUERY_RATE_LIMITED: 'retry',
      BIGQUERY_QUOTA_EXCEEDED: 'retry',
      BIGQUERY_ROW_RETRYABLE: 'retry',
      REQUEST_TOO_LARGE: 'split',
      DEAD_LETTER_FAILED: 'retry',
      SHUTTING_DOWN: 'nack',
      ROUTE_FULL: 'nack',
      INTERNAL: 'retry',
      TABLE_NOT_FOUND: 'pause',
      ACCESS_DENIED: 'pause',
    });
  });

  it('a destination error while draining nacks instead of pausing', () => {
    expect(actionFor(new TributaryError('TABLE_NOT_FOUND', ''), { draining: true })).toBe('nack');
    expect(actionFor(new TributaryError('ACCESS_DENIED', ''), { draining: true })).toBe('nack');
    expect(actionFor(new TributaryError('ROW_INVALID', ''), { draining: true })).toBe('dead-letter');
  });
});

describe('the error-code table of docs/guarantees.md', () => {
  it('names every code the failure policy knows', async () => {
    const { readFile } = await import('node:fs/promises');
    const doc = await readFile(new URL('../../docs/guarantees.md', import.meta.url), 'utf8');
    const missing = Object.keys(ERROR_CODES).filter((code) => !doc.includes(`| \`${code}\` |`));
    expect(missing).toEqual([]);
  });
});
