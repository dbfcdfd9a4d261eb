import { TributaryError } from '../errors.js';
import { decodeContainerFile, type EmbeddedSchemaCache } from './container-file.js';
import { decodePayload } from './decoder.js';
import type { CompiledSchema, SchemaCache } from './schema-cache.js';
import { detectFraming, readSchemaReference, schemaKey, type Framing, type SchemaReference } from './schema-reference.js';

/** Where a message's schema came from: a registry reference, or the text embedded in it. */
export type MessageSchemaRef = SchemaReference | { kind: 'embedded'; sha256: string };

export interface DecodedMessage {
  readonly framing: Framing;
  readonly schemaRef: MessageSchemaRef;
  readonly schema: CompiledSchema;
  /** One value per row: a container file may hold several, every other framing holds one. */
  readonly records: readonly unknown[];
  /** Bytes the message spends carrying its schema (a container file's header), 0 for a reference. */
  readonly embeddedSchemaBytes: number;
}

export interface MessageDecoderDeps {
  readonly schemas: SchemaCache;
  readonly embedded: EmbeddedSchemaCache;
}

export interface MessageLike {
  readonly attributes: Readonly<Record<string, string>>;
  readonly data: Buffer;
}

/**
 * Decodes a message in any framing producers send: Pub/Sub schema attributes, the Confluent
 * header, Avro single-object encoding (all three name a schema the registry or the fingerprint
 * index resolves), or an Avro object container file (the schema travels in the message). Throws
 * TributaryError: data codes for what can never decode, REGISTRY_UNAVAILABLE when it may later.
 */
export async function decodeMessage(message: MessageLike, deps: MessageDecoderDeps): Promise<DecodedMessage> {
  const framing = detectFraming(message.attributes, message.data);
  if (framing === 'container-file') {
    const file = decodeContainerFile(message.data, deps.embedded);
    return {
      framing,
      schemaRef: { kind: 'embedded', sha256: file.sha256 },
      schema: file.schema,
      records: file.records,
      embeddedSchemaBytes: file.header.headerBytes,
    };
  }
  const { ref, bodyOffset } = readSchemaReference(message.attributes, message.data);
  const schema = deps.schemas.getCached(schemaKey(ref)) ?? (await deps.schemas.get(ref));
  const value = decodePayload(schema, message.data, bodyOffset, ref.kind === 'pubsub' ? ref.encoding : 'BINARY');
  if (framing === undefined) throw new TributaryError('INTERNAL', 'a message with a schema reference has no framing');
  return { framing, schemaRef: ref, schema, records: [value], embeddedSchemaBytes: 0 };
}

/** The schema reference as a person reads it in `inspect` and logs. */
export function describeSchemaRef(ref: MessageSchemaRef): string {
  switch (ref.kind) {
    case 'pubsub':
      return `Pub/Sub schema ${ref.schema} revision ${ref.revisionId} (${ref.encoding})`;
    case 'confluent':
      return `Confluent schema id ${ref.id}`;
    case 'fingerprint': {
      const signed = Buffer.from(ref.fingerprint, 'hex').readBigInt64LE().toString();
      return `single-object fingerprint ${ref.fingerprint} (CRC-64-AVRO ${signed})`;
    }
    case 'embedded':
      return `embedded schema sha256:${ref.sha256}`;
  }
}

/** The insertId of record `index` of a message holding `total` rows: the message id alone when it holds one. */
export function rowIdOf(messageId: string, index: number, total: number): string {
  return total === 1 ? messageId : `${messageId}:${index}`;
}
