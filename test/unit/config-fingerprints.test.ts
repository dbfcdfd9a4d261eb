import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const base = `
projectId: test-project
subscription: logs
deadLetter: { topic: dl }
routes:
  access: { match: [access], table: logs.access, metadata: { recordIndex: _record_index } }
`;

describe('registry.fingerprints and metadata.recordIndex', () => {
  it('default to nothing indexed, and read lists from the file and the environment', () => {
    expect(parseConfig(base, {}).registry.fingerprints).toEqual({ pubsubSchemas: [], confluentSubjects: [], minRefreshIntervalMs: 60_000 });
    const config = parseConfig(`${base}registry: { confluent: { url: 'http://registry:8081' }, fingerprints: { pubsubSchemas: [access-log] } }\n`, {
      TRIBUTARY_REGISTRY_FINGERPRINTS_CONFLUENT_SUBJECTS: '[access-value, audit-value]',
      TRIBUTARY_REGISTRY_FINGERPRINTS_MIN_REFRESH_INTERVAL_MS: '5000',
    });
    expect(config.registry.fingerprints).toEqual({
      pubsubSchemas: ['access-log'],
      confluentSubjects: ['access-value', 'audit-value'],
      minRefreshIntervalMs: 5000,
    });
    expect(config.routes[0]?.metadata.recordIndex).toBe('_record_index');
  });

  it('Confluent subjects need a Confluent registry', () => {
    expect(() => parseConfig(`${base}registry: { fingerprints: { confluentSubjects: [x] } }\n`, {})).toThrow(ConfigError);
    try {
      parseConfig(`${base}registry: { fingerprints: { confluentSubjects: [x] } }\n`, {});
    } catch (err) {
      expect((err as ConfigError).problems).toContain('registry.fingerprints.confluentSubjects: needs registry.confluent');
    }
  });
});
