import { describe, expect, it } from 'vitest';
import { encodeConfluentHeader, readSchemaReference, schemaKey } from '../../src/core/schema-reference.js';
import { TributaryError } from '../../src/errors.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof TributaryError ? err.code : 'not a TributaryError';
  }
  return undefined;
}

describe('readSchemaReference', () => {
  it('reads Pub/Sub schema attributes', () => {
    const { ref, bodyOffset } = readSchemaReference(
      { googclient_schemaname: 'projects/p/schemas/logs', googclient_schemarevisionid: 'abc123', googclient_schemaencoding: 'JSON' },
      Buffer.from('{}'),
    );
    expect(ref).toEqual({ kind: 'pubsub', schema: 'projects/p/schemas/logs', revisionId: 'abc123', encoding: 'JSON' });
    expect(bodyOffset).toBe(0);
    expect(schemaKey(ref)).toBe('projects/p/schemas/logs@abc123');
  });

  it('reads our own schema attributes on replayed dead letters', () => {
    const { ref } = readSchemaReference({ tributary_schema_name: 'projects/p/schemas/logs', tributary_schema_revision_id: 'r1' }, Buffer.from([1]));
    expect(ref).toEqual({ kind: 'pubsub', schema: 'projects/p/schemas/logs', revisionId: 'r1', encoding: 'BINARY' });
  });

  it('reads the Confluent wire header: magic byte and 4-byte big-endian id', () => {
    const data = Buffer.concat([encodeConfluentHeader(0x01020304), Buffer.from([2, 4])]);
    expect(data.subarray(0, 5)).toEqual(Buffer.from([0, 1, 2, 3, 4]));
    const { ref, bodyOffset } = readSchemaReference({}, data);
    expect(ref).toEqual({ kind: 'confluent', id: 16909060 });
    expect(bodyOffset).toBe(5);
    expect(readSchemaReference({}, encodeConfluentHeader(0xffffffff)).ref).toEqual({ kind: 'confluent', id: 4294967295 });
  });

  it('rejects payloads without a reference as data errors', () => {
    expect(codeOf(() => readSchemaReference({}, Buffer.alloc(0)))).toBe('NO_SCHEMA_REFERENCE');
    expect(codeOf(() => readSchemaReference({}, Buffer.from([0, 0, 1])))).toBe('NO_SCHEMA_REFERENCE');
    expect(codeOf(() => readSchemaReference({}, Buffer.from('{"json": true}')))).toBe('NO_SCHEMA_REFERENCE');
    expect(codeOf(() => readSchemaReference({ googclient_schemaname: 'x' }, Buffer.from([0, 0, 0, 0, 1])))).toBe('NO_SCHEMA_REFERENCE');
    expect(
      codeOf(() => readSchemaReference({ googclient_schemaname: 'x', googclient_schemarevisionid: 'r', googclient_schemaencoding: 'XML' }, Buffer.alloc(1))),
    ).toBe('NO_SCHEMA_REFERENCE');
  });
});
