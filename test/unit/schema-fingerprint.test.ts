import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createAvroType } from '../../src/core/avro-type.js';
import { decodePayload } from '../../src/core/decoder.js';
import { compileSchema } from '../../src/core/schema-cache.js';
import {
  crc64Avro,
  fingerprintAsSignedLong,
  fingerprintBytes,
  fingerprintSchema,
  MAX_SCHEMA_DEPTH,
  parsingCanonicalForm,
} from '../../src/core/schema-fingerprint.js';
import { readSchemaReference, schemaKey } from '../../src/core/schema-reference.js';
import { TributaryError } from '../../src/errors.js';

interface SharedCase {
  id: string;
  input: string;
  canonical: string;
  fingerprint?: string;
}

/** Apache Avro's share/test/data/schema-tests.txt: `<<INPUT x`, or `<<INPUT` ... `INPUT`, then `<<canonical`, `<<fingerprint`. */
function readSharedCases(text: string): SharedCase[] {
  const cases: SharedCase[] = [];
  const lines = text.split('\n');
  let current: Partial<SharedCase> = {};
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const id = /^\/\/ (\d{3})$/.exec(line);
    if (id) {
      current = { id: id[1] };
      continue;
    }
    if (line.startsWith('<<INPUT')) {
      if (line === '<<INPUT') {
        const body: string[] = [];
        while (lines[++i] !== 'INPUT') body.push(lines[i] ?? '');
        current.input = body.join('\n');
      } else {
        current.input = line.slice('<<INPUT '.length);
      }
    } else if (line.startsWith('<<canonical ')) {
      current.canonical = line.slice('<<canonical '.length);
      cases.push(current as SharedCase);
    } else if (line.startsWith('<<fingerprint ')) {
      (cases[cases.length - 1] as SharedCase).fingerprint = line.slice('<<fingerprint '.length);
    }
  }
  return cases;
}

const shared = readSharedCases(readFileSync(new URL('../fixtures/apache-avro/schema-tests.txt', import.meta.url), 'utf8'));

interface JavaVector {
  name: string;
  schema: unknown;
  canonicalForm: string;
  fingerprint: string;
  datum?: unknown;
  singleObjectHex?: string;
}

// Made by Apache Avro Java 1.11 (scripts/generate-avro-java-vectors.sh).
const java = JSON.parse(readFileSync(new URL('../fixtures/apache-avro/java-vectors.json', import.meta.url), 'utf8')) as JavaVector[];

describe("Parsing Canonical Form and CRC-64-AVRO against Apache Avro's shared test vectors", () => {
  it('reads all 34 cases, 26 of them with a fingerprint', () => {
    expect(shared).toHaveLength(34);
    expect(shared.filter((c) => c.fingerprint !== undefined)).toHaveLength(26);
  });

  for (const c of shared) {
    it(`case ${c.id}: ${c.input.replace(/\s+/g, ' ').slice(0, 60)}`, () => {
      const { canonicalForm, fingerprint } = fingerprintSchema(c.input);
      expect(canonicalForm).toBe(c.canonical);
      if (c.fingerprint !== undefined) expect(fingerprintAsSignedLong(fingerprint)).toBe(c.fingerprint);
    });
  }
});

describe('Parsing Canonical Form, fingerprints and single-object encoding against Apache Avro Java', () => {
  it('has vectors with single-object payloads', () => {
    expect(java.length).toBeGreaterThanOrEqual(10);
    expect(java.filter((v) => v.singleObjectHex).length).toBeGreaterThanOrEqual(8);
  });

  for (const v of java) {
    it(v.name, () => {
      const { canonicalForm, fingerprint, hex } = fingerprintSchema(JSON.stringify(v.schema));
      expect(canonicalForm).toBe(v.canonicalForm);
      expect(fingerprintAsSignedLong(fingerprint)).toBe(v.fingerprint);
      if (v.singleObjectHex === undefined) return;
      const payload = Buffer.from(v.singleObjectHex, 'hex');
      // Java's BinaryMessageEncoder: 0xC3 0x01, the fingerprint little-endian, the body.
      expect(payload.subarray(0, 2)).toEqual(Buffer.from([0xc3, 0x01]));
      expect(payload.subarray(2, 10)).toEqual(fingerprintBytes(fingerprint));
      const { ref, bodyOffset } = readSchemaReference({}, payload);
      expect(ref).toEqual({ kind: 'fingerprint', fingerprint: hex });
      expect(bodyOffset).toBe(10);
      const compiled = compileSchema(schemaKey(ref), JSON.stringify(v.schema));
      const value = decodePayload(compiled, payload, bodyOffset, 'BINARY');
      // What Java wrote is what this decoder reads: re-encoding gives the same body bytes.
      expect(createAvroType(v.schema as never).toBuffer(value)).toEqual(payload.subarray(10));
    });
  }
});

describe('Parsing Canonical Form edge cases', () => {
  it('strips logical types down to the underlying type', () => {
    expect(parsingCanonicalForm({ type: 'long', logicalType: 'timestamp-micros' })).toBe('"long"');
    expect(parsingCanonicalForm({ type: 'fixed', name: 'D', size: 16, logicalType: 'decimal', precision: 30, scale: 2 })).toBe(
      '{"name":"D","type":"fixed","size":16}',
    );
  });

  it('writes a named type in full once, then by full name', () => {
    const schema = {
      type: 'record',
      name: 'R',
      namespace: 'n',
      fields: [
        { name: 'a', type: { type: 'enum', name: 'E', symbols: ['X'] } },
        { name: 'b', type: 'E' },
      ],
    };
    expect(parsingCanonicalForm(schema)).toBe(
      '{"name":"n.R","type":"record","fields":[{"name":"a","type":{"name":"n.E","type":"enum","symbols":["X"]}},{"name":"b","type":"n.E"}]}',
    );
  });

  it('refuses undefined names, nameless named types and schemas nested too deep', () => {
    expect(() => parsingCanonicalForm({ type: 'record', name: 'R', fields: [{ name: 'a', type: 'Nope' }] })).toThrow(/"Nope" is not a defined type/);
    expect(() => parsingCanonicalForm({ type: 'enum', symbols: [] })).toThrow(/has no name/);
    let deep: unknown = 'int';
    for (let i = 0; i <= MAX_SCHEMA_DEPTH; i++) deep = { type: 'array', items: deep };
    expect(() => parsingCanonicalForm(deep)).toThrow(TributaryError);
    expect(() => fingerprintSchema('{nope')).toThrow(/not valid JSON/);
  });

  it('CRC-64-AVRO of nothing is the empty fingerprint', () => {
    expect(crc64Avro(new Uint8Array())).toBe(0xc15d213aa4d7a795n);
  });
});

describe('single-object framing', () => {
  it('reads the fingerprint after 0xC3 0x01 and refuses a header cut short', () => {
    const fp = fingerprintSchema('"int"');
    const payload = Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprintBytes(fp.fingerprint), Buffer.from([0x02])]);
    expect(readSchemaReference({}, payload)).toEqual({ ref: { kind: 'fingerprint', fingerprint: fp.hex }, bodyOffset: 10 });
    expect(schemaKey({ kind: 'fingerprint', fingerprint: fp.hex })).toBe(`fingerprint:${fp.hex}`);
    expect(() => readSchemaReference({}, payload.subarray(0, 9))).toThrow(/shorter than its 10-byte header/);
    // Pub/Sub schema attributes win over the bytes, as for the Confluent header.
    expect(readSchemaReference({ googclient_schemaname: 's', googclient_schemarevisionid: 'r' }, payload).ref.kind).toBe('pubsub');
  });
});
