import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeContainerFile, EmbeddedSchemaCache, readContainerBlocks, readContainerHeader } from '../../src/core/container-file.js';
import { compileSchema } from '../../src/core/schema-cache.js';

interface Vector {
  name: string;
  codec: 'null' | 'deflate';
  schema: object;
  fileHex: string;
  records: unknown[];
}

// Written by Apache Avro's Python implementation: see scripts/generate-avro-container-vectors.py.
const vectors = JSON.parse(readFileSync(new URL('../fixtures/avro-container-vectors.json', import.meta.url), 'utf8')) as Vector[];

describe('container files written by Apache Avro (Python) decode record for record', () => {
  it('has null and deflate files of one and several records, in one and several blocks', () => {
    expect(vectors.filter((v) => v.codec === 'null')).toHaveLength(4);
    expect(vectors.filter((v) => v.codec === 'deflate')).toHaveLength(4);
    expect(vectors.some((v) => v.records.length > 1 && v.name.includes('in 1 block'))).toBe(true);
    expect(vectors.some((v) => /in [2-9] block/.test(v.name))).toBe(true);
  });

  for (const v of vectors) {
    it(v.name, () => {
      const file = Buffer.from(v.fileHex, 'hex');
      const header = readContainerHeader(file);
      expect(header.codec).toBe(v.codec);
      const blocks = readContainerBlocks(file, header);
      const expectedBlocks = Number(/in (\d+) block/.exec(v.name)?.[1]);
      expect(blocks).toHaveLength(expectedBlocks);
      const decoded = decodeContainerFile(file, new EmbeddedSchemaCache());
      expect(decoded.records).toHaveLength(v.records.length);
      const type = compileSchema('expected', JSON.stringify(v.schema)).type;
      for (const [i, record] of v.records.entries()) {
        // the same value: re-encoded, what Python meant and what was read are the same bytes
        const expected = type.fromString(JSON.stringify(record));
        expect(type.toBuffer(decoded.records[i]), `record ${i}`).toEqual(type.toBuffer(expected));
      }
    });
  }
});
