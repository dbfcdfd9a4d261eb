import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createAvroType, type AvroSchema } from '../../src/core/avro-type.js';

/**
 * The vectors in test/fixtures/avro-vectors.json were written by Apache Avro's Python
 * implementation (scripts/generate-avro-vectors.py). Here: the project's avsc-based type reads
 * every one of them exactly (all bytes, no more) and writes the same bytes back. What the rows
 * must look like (`expectedRow`) is the row converter's tests' business.
 */

interface AvroVector {
  name: string;
  schema: AvroSchema;
  payloadHex: string;
  confluentHex: string;
  expectedRow: unknown;
}

function isVector(value: unknown): value is AvroVector {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.name === 'string' &&
    typeof v.schema === 'object' &&
    v.schema !== null &&
    typeof v.payloadHex === 'string' &&
    /^([0-9a-f]{2})*$/.test(v.payloadHex) &&
    typeof v.confluentHex === 'string' &&
    'expectedRow' in v
  );
}

function loadVectors(): AvroVector[] {
  const parsed: unknown = JSON.parse(readFileSync(new URL('../fixtures/avro-vectors.json', import.meta.url), 'utf8'));
  if (!Array.isArray(parsed) || !parsed.every(isVector)) throw new Error('test/fixtures/avro-vectors.json is not a list of vectors');
  return parsed;
}

const vectors = loadVectors();
const CONFLUENT_PREFIX = '00' + '0000002a'; // magic byte, schema id 42 big-endian

describe('Avro vectors from Apache Avro (Python)', () => {
  it('are there, with unique names', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(15);
    expect(new Set(vectors.map((v) => v.name)).size).toBe(vectors.length);
  });

  it.each(vectors.map((v) => [v.name, v] as const))('%s: decodes every byte and re-encodes to the same bytes', (_name, vector) => {
    const type = createAvroType(vector.schema);
    const payload = Buffer.from(vector.payloadHex, 'hex');

    const { value, offset } = type.decode(payload, 0);
    expect(offset).toBe(payload.length);
    expect(value).toBeDefined();
    expect(type.isValid(value)).toBe(true);
    expect(type.toBuffer(value).toString('hex')).toBe(vector.payloadHex);

    // One byte short is not a datum.
    if (payload.length > 0) expect(type.decode(payload.subarray(0, payload.length - 1), 0).offset).toBe(-1);

    expect(vector.confluentHex).toBe(CONFLUENT_PREFIX + vector.payloadHex);
  });
});
