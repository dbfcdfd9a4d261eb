import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CONTAINER_LIMITS, decodeContainerFile, EmbeddedSchemaCache, readContainerHeader } from '../../src/core/container-file.js';
import { TributaryError } from '../../src/errors.js';
import { avroLong, buildContainer } from '../support/avro-container.js';
import { metric, metricRecord, encode } from '../support/log-schemas.js';

const records = [0, 1, 2, 3, 4].map((i) => encode(metric, metricRecord(i)));

function failure(data: Buffer, cache = new EmbeddedSchemaCache()): string {
  try {
    decodeContainerFile(data, cache);
  } catch (err) {
    expect(err).toBeInstanceOf(TributaryError);
    return `${(err as TributaryError).code}: ${(err as Error).message}`;
  }
  return 'ok';
}

describe('Avro object container files', () => {
  it.each(['null', 'deflate', undefined])('decodes every record of every block (codec %s)', (codec) => {
    const file = buildContainer({ schema: metric, records, codec, blockSize: 2 });
    const decoded = decodeContainerFile(file, new EmbeddedSchemaCache());
    expect(decoded.records).toHaveLength(5);
    expect(decoded.records.map((r) => (r as { name: string }).name)).toEqual(records.map((_, i) => (metricRecord(i) as { name: string }).name));
    expect(decoded.header.codec).toBe(codec ?? 'null');
    expect(decoded.schema.recordName).toBe('com.acme.logs.Metric');
    expect(decoded.header.headerBytes).toBeGreaterThan(JSON.stringify(metric).length);
  });

  it('parses each distinct schema text once, keyed by its SHA-256, least recently used out first', () => {
    const cache = new EmbeddedSchemaCache(2);
    const a = buildContainer({ schema: metric, records: records.slice(0, 1) });
    const first = decodeContainerFile(a, cache);
    const again = decodeContainerFile(Buffer.from(a), cache);
    expect(again.schema).toBe(first.schema);
    expect(first.sha256).toBe(EmbeddedSchemaCache.hashOf(JSON.stringify(metric)));
    const other = (n: string): Buffer => buildContainer({ schema: { ...metric, name: n }, records: records.slice(0, 1) });
    decodeContainerFile(other('M2'), cache);
    decodeContainerFile(a, cache); // metric is now the most recently used
    decodeContainerFile(other('M3'), cache); // evicts M2
    expect(cache.size).toBe(2);
    expect(decodeContainerFile(a, cache).schema).toBe(first.schema);
  });

  it('refuses other codecs with DECODE_FAILED naming the codec', () => {
    expect(failure(buildContainer({ schema: metric, records, codec: 'snappy' }))).toMatch(/^DECODE_FAILED: .*codec "snappy" is not supported/);
    expect(failure(buildContainer({ schema: metric, records, codec: 'zstandard' }))).toMatch(/codec "zstandard"/);
  });

  it('refuses a schema that is not a usable record schema with SCHEMA_INVALID', () => {
    expect(failure(buildContainer({ schema: '"int"', records: [Buffer.from([2])] }))).toMatch(/^SCHEMA_INVALID/);
    expect(failure(buildContainer({ schema: '{nope', records: [Buffer.from([2])] }))).toMatch(/^SCHEMA_INVALID/);
  });

  it('refuses hostile headers before allocating', () => {
    const good = buildContainer({ schema: metric, records });
    // no avro.schema
    expect(failure(Buffer.concat([Buffer.from('Obj\x01', 'latin1'), avroLong(0), Buffer.alloc(16)]))).toMatch(/no avro.schema/);
    // a billion metadata entries
    expect(failure(Buffer.concat([Buffer.from('Obj\x01', 'latin1'), avroLong(1e9)]))).toMatch(/metadata entries/);
    // a schema of 2^40 bytes
    expect(failure(Buffer.concat([Buffer.from('Obj\x01', 'latin1'), avroLong(1), avroLong(11), Buffer.from('avro.schema'), avroLong(2 ** 40)]))).toMatch(
      /limit/,
    );
    // a schema nested beyond the limit
    const deep = '['.repeat(CONTAINER_LIMITS.maxSchemaDepth + 1) + ']'.repeat(CONTAINER_LIMITS.maxSchemaDepth + 1);
    expect(failure(buildContainer({ schema: deep, records }))).toMatch(/nested deeper/);
    // cut anywhere in the header
    const headerBytes = readContainerHeader(good).headerBytes;
    for (let cut = 4; cut < headerBytes; cut += 7) expect(failure(good.subarray(0, cut))).toMatch(/^DECODE_FAILED/);
    // an endless varint
    expect(failure(Buffer.concat([Buffer.from('Obj\x01', 'latin1'), Buffer.alloc(12, 0xff)]))).toMatch(/longer than 10 bytes/);
  });

  it('refuses hostile blocks: counts, sizes, sync markers, trailing bytes, inflation', () => {
    const file = buildContainer({ schema: metric, records });
    const { headerBytes } = readContainerHeader(file);
    const header = file.subarray(0, headerBytes);
    const sync = header.subarray(headerBytes - 16);
    const body = Buffer.concat(records);
    const block = (count: number, size: number, data: Buffer, marker = sync): Buffer => Buffer.concat([header, avroLong(count), avroLong(size), data, marker]);
    expect(failure(block(2 ** 40, body.length, body))).toMatch(/more than 10000 records/);
    expect(failure(block(0, body.length, body))).toMatch(/claims 0 records/);
    expect(failure(block(5, 2 ** 40, body))).toMatch(/claims 1099511627776 bytes/);
    expect(failure(block(5, body.length, body, Buffer.alloc(16)))).toMatch(/sync marker that differs/);
    expect(failure(block(4, body.length, body))).toMatch(/bytes after its 4 records/);
    expect(failure(block(6, body.length, body))).toMatch(/record 5 .*cut short|record 5/);
    // a deflate bomb: 64 MiB of zeros in a few KB
    const bomb = deflateRawSync(Buffer.alloc(64 * 1024 * 1024));
    const bombFile = buildContainer({ schema: metric, records: [], codec: 'deflate' });
    const bombHeader = bombFile.subarray(0, readContainerHeader(bombFile).headerBytes);
    const bombSync = bombHeader.subarray(bombHeader.length - 16);
    expect(failure(Buffer.concat([bombHeader, avroLong(1), avroLong(bomb.length), bomb, bombSync]))).toMatch(/inflates beyond/);
    expect(failure(Buffer.concat([bombHeader, avroLong(1), avroLong(3), Buffer.from([1, 2, 3]), bombSync]))).toMatch(/does not inflate/);
    // a file with a header and no block
    expect(failure(header)).toMatch(/holds no records/);
  });

  it('shares one zero-size-item budget across the records of a file', () => {
    const nulls = { type: 'record', name: 'N', fields: [{ name: 'n', type: { type: 'array', items: 'null' } }] };
    // each record: an array block of 60,000 nulls, then the end: 2 records exceed the 100,000 cap together
    const rec = Buffer.concat([avroLong(60_000), avroLong(0)]);
    expect(failure(buildContainer({ schema: nulls, records: [rec] }))).toBe('ok');
    expect(failure(buildContainer({ schema: nulls, records: [rec, rec] }))).toMatch(/record 1 .*takes? no bytes|items that take no bytes/);
  });
});
