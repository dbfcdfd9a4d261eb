import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createAvroType, type AvroSchema } from '../../src/core/avro-type.js';
import { createRowConverter } from '../../src/core/rows/row-converter.js';
import { compileSchema } from '../../src/core/schema-cache.js';
import { decodePayload } from '../../src/core/decoder.js';
import { readSchemaReference } from '../../src/core/schema-reference.js';

interface Vector {
  name: string;
  schema: AvroSchema;
  payloadHex: string;
  confluentHex: string;
  expectedRow: Record<string, unknown>;
}

// Encoded by Apache Avro (Python) and converted to rows by an independent Python mapping:
// see scripts/generate-avro-vectors.py.
const vectors = JSON.parse(readFileSync(new URL('../fixtures/avro-vectors.json', import.meta.url), 'utf8')) as Vector[];

describe('records encoded by Apache Avro decode to the same rows', () => {
  it('has vectors', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(15);
  });

  for (const vector of vectors) {
    it(vector.name, () => {
      const toRow = createRowConverter(vector.schema);
      const value = createAvroType(vector.schema).fromBuffer(Buffer.from(vector.payloadHex, 'hex'));
      expect(toRow(value)).toEqual(vector.expectedRow);
      // the same bytes behind a Confluent header, through the pipeline's own decode path
      const framed = Buffer.from(vector.confluentHex, 'hex');
      const { ref, bodyOffset } = readSchemaReference({}, framed);
      const compiled = compileSchema('confluent:42', JSON.stringify(vector.schema));
      expect(ref).toEqual({ kind: 'confluent', id: 42 });
      expect(compiled.toRow(decodePayload(compiled, framed, bodyOffset, 'BINARY'))).toEqual(vector.expectedRow);
    });
  }
});
