import { TributaryError } from '../errors.js';

export type SchemaEncoding = 'BINARY' | 'JSON';

export type SchemaReference =
  | { kind: 'pubsub'; schema: string; revisionId: string; encoding: SchemaEncoding }
  | { kind: 'confluent'; id: number };

/** Attributes Pub/Sub sets on messages of a topic with schema settings. */
export const PUBSUB_SCHEMA_ATTRIBUTES = {
  name: 'googclient_schemaname',
  revisionId: 'googclient_schemarevisionid',
  encoding: 'googclient_schemaencoding',
} as const;

/**
 * Where tributary keeps a schema reference on messages it publishes (dead letters, replays):
 * `goog*` keys are reserved for Google and must not be copied.
 */
export const TRIBUTARY_SCHEMA_ATTRIBUTES = {
  name: 'tributary_schema_name',
  revisionId: 'tributary_schema_revision_id',
  encoding: 'tributary_schema_encoding',
  confluentId: 'tributary_schema_confluent_id',
} as const;

export const CONFLUENT_MAGIC_BYTE = 0;
export const CONFLUENT_HEADER_BYTES = 5;

/**
 * A stream carries a handful of Confluent ids, each on thousands of messages: the reference and the
 * key of each id are made once, so a message allocates neither, and the cache lookup hashes a
 * string whose hash is already known. Bounded against a producer that invents ids.
 */
const MAX_REMEMBERED_IDS = 10_000;
const confluentReferences = new Map<number, { ref: SchemaReference; bodyOffset: number }>();
const confluentKeys = new Map<number, string>();

function confluentReference(id: number): { ref: SchemaReference; bodyOffset: number } {
  let entry = confluentReferences.get(id);
  if (entry === undefined) {
    if (confluentReferences.size >= MAX_REMEMBERED_IDS) confluentReferences.clear();
    entry = { ref: { kind: 'confluent', id }, bodyOffset: CONFLUENT_HEADER_BYTES };
    confluentReferences.set(id, entry);
  }
  return entry;
}

function confluentKey(id: number): string {
  let key = confluentKeys.get(id);
  if (key === undefined) {
    if (confluentKeys.size >= MAX_REMEMBERED_IDS) confluentKeys.clear();
    key = `confluent:${id}`;
    confluentKeys.set(id, key);
  }
  return key;
}

/** Stable cache key for a reference; also what the directory registry names its files after. */
export function schemaKey(ref: SchemaReference): string {
  return ref.kind === 'pubsub' ? `${ref.schema}@${ref.revisionId}` : confluentKey(ref.id);
}

function readEncoding(value: string | undefined): SchemaEncoding {
  if (value === undefined || value === '' || value === 'BINARY') return 'BINARY';
  if (value === 'JSON') return 'JSON';
  throw new TributaryError('NO_SCHEMA_REFERENCE', `unsupported schema encoding "${value.slice(0, 64)}" (expected BINARY or JSON)`);
}

/**
 * Reads the schema reference of a message: Pub/Sub schema attributes first (ours, then Google's),
 * then the Confluent wire header. The body offset says where the Avro payload starts.
 */
export function readSchemaReference(
  attributes: Readonly<Record<string, string>>,
  data: Buffer,
): { readonly ref: SchemaReference; readonly bodyOffset: number } {
  const name = attributes[PUBSUB_SCHEMA_ATTRIBUTES.name] ?? attributes[TRIBUTARY_SCHEMA_ATTRIBUTES.name];
  const revision = attributes[PUBSUB_SCHEMA_ATTRIBUTES.revisionId] ?? attributes[TRIBUTARY_SCHEMA_ATTRIBUTES.revisionId];
  if (name !== undefined || revision !== undefined) {
    if (!name || !revision) {
      throw new TributaryError('NO_SCHEMA_REFERENCE', 'message has a schema name or revision attribute but not both');
    }
    const encoding = readEncoding(attributes[PUBSUB_SCHEMA_ATTRIBUTES.encoding] ?? attributes[TRIBUTARY_SCHEMA_ATTRIBUTES.encoding]);
    return { ref: { kind: 'pubsub', schema: name, revisionId: revision, encoding }, bodyOffset: 0 };
  }
  if (data.length >= CONFLUENT_HEADER_BYTES && data[0] === CONFLUENT_MAGIC_BYTE) {
    return confluentReference(data.readUInt32BE(1));
  }
  const why = data.length === 0 ? 'the payload is empty' : data.length < CONFLUENT_HEADER_BYTES && data[0] === 0 ? 'the payload is shorter than the 5-byte Confluent header' : `the payload does not start with the Confluent magic byte 0x00 (first byte 0x${(data[0] ?? 0).toString(16).padStart(2, '0')})`;
  throw new TributaryError('NO_SCHEMA_REFERENCE', `no schema reference: no ${PUBSUB_SCHEMA_ATTRIBUTES.name}/${PUBSUB_SCHEMA_ATTRIBUTES.revisionId} attributes and ${why}`);
}

export function encodeConfluentHeader(id: number): Buffer {
  const header = Buffer.alloc(CONFLUENT_HEADER_BYTES);
  header[0] = CONFLUENT_MAGIC_BYTE;
  header.writeUInt32BE(id, 1);
  return header;
}
