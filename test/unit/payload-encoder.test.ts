import { describe, expect, it } from 'vitest';
import { EmbeddedSchemaCache } from '../../src/core/container-file.js';
import { decodeMessage } from '../../src/core/message-decoder.js';
import { SchemaCache } from '../../src/core/schema-cache.js';
import { compileSchema } from '../../src/core/schema-cache.js';
import { createPayloadEncoder } from '../../src/cli/payload-encoder.js';
import { parseAttributes } from '../../src/cli/inspect-command.js';
import { TributaryError } from '../../src/errors.js';
import { metric } from '../support/log-schemas.js';

const text = JSON.stringify(metric);
const schema = compileSchema('metric', text);
const deps = {
  schemas: new SchemaCache({ name: 't', fetch: async () => text }, 10, { hit() {}, miss() {}, fetched() {} }),
  embedded: new EmbeddedSchemaCache(),
};

describe('publish: payloads in each framing decode back to the JSON lines', () => {
  it.each([
    ['confluent', 'confluent'],
    ['single-object', 'single-object'],
    ['container-file', 'container-file'],
  ] as const)('%s', async (framing, expected) => {
    const encoder = createPayloadEncoder({ framing, schema, schemaText: text, schemaId: 9, codec: 'deflate' });
    const records = ['{"name":"a","value":1.5,"count":2}', '{"name":"b","value":0,"count":9007199254740993}'].map((l, i) => encoder.parse(l, i + 1));
    const messages = framing === 'container-file' ? [encoder.encode(records)] : records.map((r) => encoder.encode([r]));
    const decoded = await Promise.all(messages.map((data) => decodeMessage({ attributes: {}, data }, deps)));
    expect(decoded.every((d) => d.framing === expected)).toBe(true);
    // (JSON.parse reads 2^53 + 1 as 2^53: longs that large are exact only in the binary encodings)
    expect(decoded.flatMap((d) => d.records).map((r) => ({ ...(r as object) }))).toEqual([
      { name: 'a', value: 1.5, count: 2 },
      { name: 'b', value: 0, count: 9007199254740992n },
    ]);
  });

  it('names the line that is not a record', () => {
    const encoder = createPayloadEncoder({ framing: 'single-object', schema, schemaText: text });
    expect(() => encoder.parse('{"name": 3}', 7)).toThrow(/^line 7 is not a com.acme.logs.Metric/);
    expect(() => createPayloadEncoder({ framing: 'confluent', schema, schemaText: text })).toThrow(TributaryError);
  });

  it('reads --attributes k=v,k2=v=2', () => {
    expect(parseAttributes(['a=1,b=x=y', 'c='])).toEqual({ a: '1', b: 'x=y', c: '' });
    expect(() => parseAttributes(['nokey'])).toThrow(/not key=value/);
  });
});
