import { deflateRawSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { TributaryError } from '../errors.js';
import type { CompiledSchema } from '../core/schema-cache.js';
import { fingerprintBytes, fingerprintSchema } from '../core/schema-fingerprint.js';
import { encodeConfluentHeader, SINGLE_OBJECT_MAGIC, type Framing } from '../core/schema-reference.js';

export const FRAMINGS: readonly Framing[] = ['pubsub-schema', 'confluent', 'single-object', 'container-file'];

export interface EncoderOptions {
  readonly framing: Framing;
  readonly schema: CompiledSchema;
  /** The schema's text, as the container file header carries it. */
  readonly schemaText: string;
  /** Confluent framing: the id the header carries. */
  readonly schemaId?: number;
  /** Container files: compress blocks with raw deflate. */
  readonly codec?: 'null' | 'deflate';
}

function long(n: number): Buffer {
  const bytes: number[] = [];
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  do {
    let b = z % 128;
    z = Math.floor(z / 128);
    if (z > 0) b |= 0x80;
    bytes.push(b);
  } while (z > 0);
  return Buffer.from(bytes);
}

function lengthPrefixed(b: Buffer): Buffer {
  return Buffer.concat([long(b.length), b]);
}

/** One Avro object container file holding `records` (each already Avro binary), in one block. */
export function encodeContainerFile(
  schemaText: string,
  records: readonly Buffer[],
  codec: 'null' | 'deflate' = 'null',
  sync: Buffer = randomBytes(16),
): Buffer {
  const meta: Array<[string, Buffer]> = [
    ['avro.schema', Buffer.from(schemaText, 'utf8')],
    ['avro.codec', Buffer.from(codec)],
  ];
  const parts: Buffer[] = [Buffer.from('Obj\x01', 'latin1'), long(meta.length)];
  for (const [k, v] of meta) parts.push(lengthPrefixed(Buffer.from(k)), lengthPrefixed(v));
  parts.push(long(0), sync);
  if (records.length > 0) {
    const raw = Buffer.concat(records);
    const body = codec === 'deflate' ? deflateRawSync(raw) : raw;
    parts.push(long(records.length), long(body.length), body, sync);
  }
  return Buffer.concat(parts);
}

/**
 * Turns JSON lines (Avro's JSON encoding: a union value names its branch, `{"string": "x"}`) into
 * message payloads in one framing. `pubsub-schema` is the bare Avro body: Pub/Sub adds the schema
 * attributes when the topic has schema settings.
 */
export function createPayloadEncoder(options: EncoderOptions): {
  encode(records: readonly unknown[]): Buffer;
  parse(line: string, lineNumber: number): unknown;
} {
  const { framing, schema } = options;
  let header: Buffer = Buffer.alloc(0);
  if (framing === 'confluent') {
    if (options.schemaId === undefined) throw new TributaryError('NO_SCHEMA_REFERENCE', 'the confluent framing needs --schema-id');
    header = encodeConfluentHeader(options.schemaId);
  } else if (framing === 'single-object') {
    header = Buffer.concat([SINGLE_OBJECT_MAGIC, fingerprintBytes(fingerprintSchema(options.schemaText).fingerprint)]);
  }
  return {
    parse(line, lineNumber) {
      try {
        return schema.type.fromString(line);
      } catch (err) {
        throw new TributaryError(
          'DECODE_FAILED',
          `line ${lineNumber} is not a ${schema.recordName} in Avro's JSON encoding: ${(err as Error).message.slice(0, 300)}`,
        );
      }
    },
    encode(records) {
      const bodies = records.map((r) => schema.type.toBuffer(r));
      if (framing === 'container-file') return encodeContainerFile(options.schemaText, bodies, options.codec ?? 'null');
      if (bodies.length !== 1) throw new TributaryError('INTERNAL', `the ${framing} framing carries one record per message`);
      return header.length === 0 ? (bodies[0] as Buffer) : Buffer.concat([header, bodies[0] as Buffer]);
    },
  };
}
