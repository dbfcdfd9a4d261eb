import { TributaryError } from '../errors.js';

export type SchemaEncoding = 'BINARY' | 'JSON';

export type SchemaReference =
  | { kind: 'pubsub'; schema: string; revisionId: string; encoding: SchemaEncoding }
  | { kind: 'confluent'; id: number }
  /** Avro single-object encoding: the CRC-64-AVRO fingerprint's 8 wire bytes (little-endian), in hex. */
  | { kind: 'fingerprint'; fingerprint: string };

/** How a message carries its schema: the `framing` label of the received-messages counter. */
export type Framing = 'pubsub-schema' | 'confluent' | 'single-object' | 'container-file';

/** Avro single-object encoding: 0xC3 0x01, the schema's 8-byte fingerprint, the binary body. */
export const SINGLE_OBJECT_MAGIC = Buffer.from([0xc3, 0x01]);
export const SINGLE_OBJECT_HEADER_BYTES = 10;
/** Avro object container file: `Obj` 0x01, a header with the schema, then blocks of records. */
export const CONTAINER_FILE_MAGIC = Buffer.from('Obj\x01', 'latin1');

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

/**
 * `projects/<project>/schemas/<schema>` as the schema service names a schema. Project ids are
 * lowercase letters, digits and hyphens (a domain-scoped one has `domain:` before it, a project
 * number is digits); schema ids are letters, digits and `-_.~+%`, at most 255. Tolerant of short
 * test names; strict about what could change the request (`/`, `@`, spaces, control bytes).
 */
const PUBSUB_SCHEMA_NAME = /^projects\/([a-z0-9][a-z0-9.:-]{0,99})\/schemas\/([A-Za-z0-9][A-Za-z0-9_.~+%-]{0,254})$/;
/** The service's revision ids are short hex strings; this admits any short token and nothing that could change the request. */
const PUBSUB_REVISION_ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface PubSubSchemaName {
  readonly project: string;
  readonly schemaId: string;
}

/** The parts of a full Pub/Sub schema name, or undefined when it is not one. */
export function parsePubSubSchemaName(name: string): PubSubSchemaName | undefined {
  const match = PUBSUB_SCHEMA_NAME.exec(name);
  if (match === null) return undefined;
  return { project: match[1] as string, schemaId: match[2] as string };
}

export function isPubSubRevisionId(revisionId: string): boolean {
  return PUBSUB_REVISION_ID.test(revisionId);
}

/** Quoted for an error message: short, and with control bytes visible rather than written to a log line. */
export function quoteForMessage(value: string, max = 80): string {
  const shown = value.length > max ? `${value.slice(0, max)}…` : value;
  // JSON escapes C0 controls only: DEL and C1 controls are escaped the same way.
  return JSON.stringify(shown).replace(/\p{Cc}/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

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

/** Single-object fingerprints the same way: by their two 32-bit halves, so a message allocates nothing. */
const fingerprintReferences = new Map<number, Map<number, { ref: SchemaReference; bodyOffset: number }>>();
let rememberedFingerprints = 0;

function fingerprintReference(data: Buffer): { ref: SchemaReference; bodyOffset: number } {
  const low = data.readUInt32LE(2);
  const high = data.readUInt32LE(6);
  let byLow = fingerprintReferences.get(high);
  let entry = byLow?.get(low);
  if (entry === undefined) {
    if (rememberedFingerprints >= MAX_REMEMBERED_IDS) {
      fingerprintReferences.clear();
      rememberedFingerprints = 0;
      byLow = undefined;
    }
    const fingerprint = data.toString('hex', 2, SINGLE_OBJECT_HEADER_BYTES);
    entry = { ref: { kind: 'fingerprint', fingerprint }, bodyOffset: SINGLE_OBJECT_HEADER_BYTES };
    if (byLow === undefined) {
      byLow = new Map();
      fingerprintReferences.set(high, byLow);
    }
    byLow.set(low, entry);
    fingerprintKeys.set(entry.ref, `fingerprint:${fingerprint}`);
    rememberedFingerprints++;
  }
  return entry;
}

const fingerprintKeys = new WeakMap<SchemaReference, string>();

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
  if (ref.kind === 'pubsub') return `${ref.schema}@${ref.revisionId}`;
  if (ref.kind === 'fingerprint') return fingerprintKeys.get(ref) ?? `fingerprint:${ref.fingerprint}`;
  return confluentKey(ref.id);
}

function hasPubSubSchemaAttributes(attributes: Readonly<Record<string, string>>): boolean {
  return (
    attributes[PUBSUB_SCHEMA_ATTRIBUTES.name] !== undefined ||
    attributes[PUBSUB_SCHEMA_ATTRIBUTES.revisionId] !== undefined ||
    attributes[TRIBUTARY_SCHEMA_ATTRIBUTES.name] !== undefined ||
    attributes[TRIBUTARY_SCHEMA_ATTRIBUTES.revisionId] !== undefined
  );
}

export function isSingleObject(data: Buffer): boolean {
  return data.length >= 2 && data[0] === 0xc3 && data[1] === 0x01;
}

export function isContainerFile(data: Buffer): boolean {
  return data.length >= 4 && data[0] === 0x4f && data[1] === 0x62 && data[2] === 0x6a && data[3] === 0x01;
}

/**
 * The framing a message uses, read as cheaply as readSchemaReference reads it (attributes, then
 * the first bytes); undefined when it uses none of them. Counted per message, so an operator sees
 * which producers still embed schemas.
 */
export function detectFraming(attributes: Readonly<Record<string, string>>, data: Buffer): Framing | undefined {
  if (hasPubSubSchemaAttributes(attributes)) return 'pubsub-schema';
  if (data.length >= CONFLUENT_HEADER_BYTES && data[0] === CONFLUENT_MAGIC_BYTE) return 'confluent';
  if (isSingleObject(data)) return 'single-object';
  if (isContainerFile(data)) return 'container-file';
  return undefined;
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
  if (isSingleObject(data)) {
    if (data.length < SINGLE_OBJECT_HEADER_BYTES) {
      throw new TributaryError(
        'NO_SCHEMA_REFERENCE',
        `the payload starts like Avro single-object encoding (0xC3 0x01) but is shorter than its ${SINGLE_OBJECT_HEADER_BYTES}-byte header`,
      );
    }
    return fingerprintReference(data);
  }
  if (isContainerFile(data)) {
    // The caller that handles container files checks for them first; reaching here means it did not.
    throw new TributaryError(
      'NO_SCHEMA_REFERENCE',
      'the payload is an Avro object container file, which carries its own schema and is read by the container-file decoder',
    );
  }
  const why =
    data.length === 0
      ? 'the payload is empty'
      : data.length < CONFLUENT_HEADER_BYTES && data[0] === 0
        ? 'the payload is shorter than the 5-byte Confluent header'
        : `the payload starts with neither the Confluent magic byte 0x00 nor the single-object marker 0xC3 0x01 nor Obj\\x01 (first byte 0x${(data[0] ?? 0).toString(16).padStart(2, '0')})`;
  throw new TributaryError(
    'NO_SCHEMA_REFERENCE',
    `no schema reference: no ${PUBSUB_SCHEMA_ATTRIBUTES.name}/${PUBSUB_SCHEMA_ATTRIBUTES.revisionId} attributes and ${why}`,
  );
}

export function encodeConfluentHeader(id: number): Buffer {
  const header = Buffer.alloc(CONFLUENT_HEADER_BYTES);
  header[0] = CONFLUENT_MAGIC_BYTE;
  header.writeUInt32BE(id, 1);
  return header;
}
