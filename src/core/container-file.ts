import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { inflateRawSync } from 'node:zlib';
import { TributaryError } from '../errors.js';
import { withSharedDecodeBudget } from './avro-type.js';
import { compileSchema, type CompiledSchema } from './schema-cache.js';
import { isContainerFile } from './schema-reference.js';

/*
 * Avro object container files, one per message: `Obj` 0x01, a metadata map holding the writer's
 * schema (`avro.schema`) and codec (`avro.codec`), a 16-byte sync marker, then blocks of
 * (record count, byte size, records, sync marker). The header is producer input like any payload:
 * every count and size is checked against what is left before anything is allocated or inflated.
 */

export const CONTAINER_LIMITS = {
  /** Metadata entries in the header (Avro writes two or three). */
  maxHeaderEntries: 64,
  /** A metadata value other than the schema. */
  maxMetadataValueBytes: 64 * 1024,
  maxSchemaBytes: 512 * 1024,
  /** JSON nesting of the schema text. */
  maxSchemaDepth: 64,
  /** Records (rows) one message may hold. */
  maxRecords: 10_000,
  /** All blocks of a message inflated together: no more than a message may carry uncompressed. */
  maxDecompressedBytes: 10 * 1024 * 1024,
} as const;

export const SYNC_MARKER_BYTES = 16;
const SUPPORTED_CODECS = ['null', 'deflate'] as const;
export type ContainerCodec = (typeof SUPPORTED_CODECS)[number];

export interface ContainerHeader {
  /** The `avro.schema` value as it is in the file: hashed as is, decoded only when first seen. */
  readonly schemaBytes: Buffer;
  readonly codec: ContainerCodec;
  readonly sync: Buffer;
  /** Where the first block starts: the bytes before it are what embedding the schema costs. */
  readonly headerBytes: number;
}

function fail(message: string): never {
  throw new TributaryError('DECODE_FAILED', `Avro container file: ${message}`);
}

/** A cursor over the file that reads Avro longs and byte strings, refusing anything past the end. */
class ByteReader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  long(what: string): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) fail(`${what} is cut short at byte ${this.pos}`);
      const b = this.buf[this.pos++] as number;
      n += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (n > Number.MAX_SAFE_INTEGER) fail(`${what} does not fit in 53 bits`);
        return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
      }
      scale *= 128;
    }
    return fail(`${what} is a varint longer than 10 bytes`);
  }

  bytes(length: number, what: string): Buffer {
    if (length < 0 || length > this.remaining) fail(`${what} claims ${length} bytes but ${this.remaining} are left`);
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }
}

/** Deepest `{`/`[` nesting outside strings: checked before JSON.parse and the type compiler recurse. */
function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) max = depth;
      if (max > limit) return max;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

export function readContainerHeader(data: Buffer): ContainerHeader {
  if (!isContainerFile(data)) fail('does not start with Obj\\x01');
  const reader = new ByteReader(data, 4);
  const meta = new Map<string, Buffer>();
  for (;;) {
    let count = reader.long('header metadata block count');
    if (count === 0) break;
    if (count < 0) {
      count = -count;
      reader.long('header metadata block size');
    }
    // Each entry takes at least two bytes (two lengths): the count must fit in what is left.
    if (meta.size + count > CONTAINER_LIMITS.maxHeaderEntries || count * 2 > reader.remaining) {
      fail(`header claims ${meta.size + count} metadata entries (limit ${CONTAINER_LIMITS.maxHeaderEntries}, ${reader.remaining} bytes left)`);
    }
    for (let i = 0; i < count; i++) {
      const keyBytes = reader.bytes(reader.long('metadata key length'), 'a metadata key');
      if (keyBytes.length > 256 || !isUtf8(keyBytes)) fail('a metadata key is longer than 256 bytes or not UTF-8');
      const key = keyBytes.toString('utf8');
      const valueLength = reader.long(`metadata value length of ${key.slice(0, 64)}`);
      const limit = key === 'avro.schema' ? CONTAINER_LIMITS.maxSchemaBytes : CONTAINER_LIMITS.maxMetadataValueBytes;
      if (valueLength > limit) fail(`metadata value ${key.slice(0, 64)} is ${valueLength} bytes (limit ${limit})`);
      meta.set(key, reader.bytes(valueLength, `metadata value ${key.slice(0, 64)}`));
    }
  }
  const sync = Buffer.from(reader.bytes(SYNC_MARKER_BYTES, 'the header sync marker'));
  const schemaBytes = meta.get('avro.schema');
  if (schemaBytes === undefined) fail('the header has no avro.schema');
  const codecBytes = meta.get('avro.codec');
  const codec = codecBytes === undefined || codecBytes.length === 0 ? 'null' : codecBytes.toString('utf8');
  if (!(SUPPORTED_CODECS as readonly string[]).includes(codec)) {
    fail(`codec "${codec.slice(0, 40)}" is not supported (supported: ${SUPPORTED_CODECS.join(', ')}); have the producer write null or deflate`);
  }
  return { schemaBytes, codec: codec as ContainerCodec, sync, headerBytes: reader.pos };
}

/** The schema text of a header, checked before anything parses it: UTF-8, and nesting bounded. */
export function schemaTextOf(schemaBytes: Buffer): string {
  if (!isUtf8(schemaBytes)) fail('avro.schema is not valid UTF-8');
  const text = schemaBytes.toString('utf8');
  if (jsonDepth(text, CONTAINER_LIMITS.maxSchemaDepth) > CONTAINER_LIMITS.maxSchemaDepth)
    fail(`avro.schema is nested deeper than ${CONTAINER_LIMITS.maxSchemaDepth} levels`);
  return text;
}

/** The blocks' record counts and (inflated) bytes; sync markers, sizes and totals checked. */
export function readContainerBlocks(data: Buffer, header: ContainerHeader): Array<{ count: number; bytes: Buffer }> {
  const reader = new ByteReader(data, header.headerBytes);
  const blocks: Array<{ count: number; bytes: Buffer }> = [];
  let records = 0;
  let inflated = 0;
  while (reader.remaining > 0) {
    const n = blocks.length;
    const count = reader.long(`block ${n} record count`);
    if (count < 1) fail(`block ${n} claims ${count} records`);
    records += count;
    if (records > CONTAINER_LIMITS.maxRecords) fail(`holds more than ${CONTAINER_LIMITS.maxRecords} records`);
    const size = reader.long(`block ${n} size`);
    const raw = reader.bytes(size, `block ${n}`);
    const sync = reader.bytes(SYNC_MARKER_BYTES, `block ${n} sync marker`);
    if (!sync.equals(header.sync)) fail(`block ${n} ends with a sync marker that differs from the header's`);
    let bytes = raw;
    if (header.codec === 'deflate') {
      const budget = CONTAINER_LIMITS.maxDecompressedBytes - inflated;
      try {
        bytes = inflateRawSync(raw, { maxOutputLength: Math.max(1, budget) });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ERR_BUFFER_TOO_LARGE') fail(`block ${n} inflates beyond ${CONTAINER_LIMITS.maxDecompressedBytes} bytes for the whole file`);
        fail(`block ${n} does not inflate: ${(err as Error).message.slice(0, 200)}`);
      }
      inflated += bytes.length;
    }
    blocks.push({ count, bytes });
  }
  return blocks;
}

/** Decodes every record of every block with the file's schema; a block must be consumed exactly. */
export function decodeContainerRecords(schema: CompiledSchema, blocks: ReadonlyArray<{ count: number; bytes: Buffer }>): unknown[] {
  const records: unknown[] = [];
  withSharedDecodeBudget(() => {
    for (const [n, block] of blocks.entries()) {
      let pos = 0;
      for (let i = 0; i < block.count; i++) {
        let decoded: { value: unknown; offset: number };
        try {
          decoded = schema.type.decode(block.bytes, pos) as { value: unknown; offset: number };
        } catch (err) {
          fail(`record ${records.length} (block ${n}) does not decode with the embedded schema: ${((err as Error).message ?? String(err)).slice(0, 300)}`);
        }
        if (decoded.offset < 0) fail(`record ${records.length} (block ${n}) is cut short`);
        pos = decoded.offset;
        records.push(decoded.value);
      }
      if (pos !== block.bytes.length) fail(`block ${n} has ${block.bytes.length - pos} bytes after its ${block.count} records`);
    }
  });
  return records;
}

/**
 * Compiled embedded schemas by the SHA-256 of their text: producers that embed a schema send the
 * same few texts over and over, so each is parsed once and a message costs a hash of its header.
 * Least recently used first out; a text that does not compile is remembered as such.
 */
export class EmbeddedSchemaCache {
  private readonly entries = new Map<string, CompiledSchema | TributaryError>();

  constructor(private readonly maxEntries = 256) {}

  get size(): number {
    return this.entries.size;
  }

  static hashOf(schema: string | Buffer): string {
    return createHash('sha256').update(schema).digest('hex');
  }

  /** The compiled schema of a header's `avro.schema` bytes (the UTF-8 text). */
  get(schemaBytes: Buffer): { schema: CompiledSchema; sha256: string } {
    const sha256 = EmbeddedSchemaCache.hashOf(schemaBytes);
    let entry = this.entries.get(sha256);
    if (entry !== undefined) {
      this.entries.delete(sha256);
    } else {
      try {
        entry = compileSchema(`embedded:${sha256.slice(0, 16)}`, schemaTextOf(schemaBytes));
      } catch (err) {
        entry = err instanceof TributaryError ? err : new TributaryError('SCHEMA_INVALID', (err as Error).message);
      }
      if (this.entries.size >= this.maxEntries) {
        const oldest = this.entries.keys().next();
        if (!oldest.done) this.entries.delete(oldest.value);
      }
    }
    this.entries.set(sha256, entry);
    if (entry instanceof TributaryError) throw entry;
    return { schema: entry, sha256 };
  }
}

export interface DecodedContainer {
  readonly header: ContainerHeader;
  readonly schema: CompiledSchema;
  readonly sha256: string;
  readonly records: unknown[];
}

/** One message holding one container file: header, schema (cached), every record. */
export function decodeContainerFile(data: Buffer, schemas: EmbeddedSchemaCache): DecodedContainer {
  const header = readContainerHeader(data);
  const { schema, sha256 } = schemas.get(header.schemaBytes);
  const records = decodeContainerRecords(schema, readContainerBlocks(data, header));
  if (records.length === 0) fail('holds no records');
  return { header, schema, sha256, records };
}
