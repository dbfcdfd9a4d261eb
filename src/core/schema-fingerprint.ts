import { TributaryError } from '../errors.js';

/*
 * Apache Avro's Parsing Canonical Form and its CRC-64-AVRO fingerprint, as the specification
 * defines them ("Parsing Canonical Form for Schemas", "Schema Fingerprints"). Single-object
 * encoding names a schema by this fingerprint, so a difference of one byte here means a schema
 * that is never found: the tests hold it to Apache Avro's shared vectors and to Avro Java.
 */

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

/** Nesting beyond this is refused: canonicalization recurses, and schemas can come off the wire. */
export const MAX_SCHEMA_DEPTH = 64;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function fail(message: string): never {
  throw new TributaryError('SCHEMA_INVALID', `schema has no Parsing Canonical Form: ${message}`);
}

function fullName(name: string, namespace: string | undefined): string {
  if (name.includes('.')) return name;
  return namespace ? `${namespace}.${name}` : name;
}

function namespaceOf(fullname: string): string | undefined {
  const dot = fullname.lastIndexOf('.');
  return dot > 0 ? fullname.slice(0, dot) : undefined;
}

/**
 * [PRIMITIVES] [FULLNAMES] [STRIP] [ORDER] [STRINGS] [INTEGERS] [WHITESPACE]: only `name`, `type`,
 * `fields`, `symbols`, `items`, `values` and `size` survive, in that order; a named type is written
 * in full where it is first defined and by its full name afterwards. Logical types are stripped
 * (`{"type":"long","logicalType":"timestamp-millis"}` becomes `"long"`), as Avro Java does.
 */
export function parsingCanonicalForm(schema: unknown): string {
  const defined = new Set<string>();

  function write(node: unknown, namespace: string | undefined, depth: number): string {
    if (depth > MAX_SCHEMA_DEPTH) fail(`nested deeper than ${MAX_SCHEMA_DEPTH} levels`);
    if (typeof node === 'string') {
      if (PRIMITIVES.has(node)) return JSON.stringify(node);
      // A reference to a named type: by its full name (Avro Java falls back to the bare name).
      const qualified = fullName(node, namespace);
      if (defined.has(qualified)) return JSON.stringify(qualified);
      if (defined.has(node)) return JSON.stringify(node);
      return fail(`"${node.slice(0, 100)}" is not a defined type`);
    }
    if (Array.isArray(node)) return `[${node.map((branch) => write(branch, namespace, depth + 1)).join(',')}]`;
    if (node === null || typeof node !== 'object') return fail(`${JSON.stringify(node)?.slice(0, 100)} is not a schema`);
    const o = node as Record<string, Json>;
    const type = o.type;
    if (typeof type !== 'string') return write(type, namespace, depth + 1);
    if (PRIMITIVES.has(type)) return JSON.stringify(type);
    switch (type) {
      case 'array':
        return `{"type":"array","items":${write(o.items, namespace, depth + 1)}}`;
      case 'map':
        return `{"type":"map","values":${write(o.values, namespace, depth + 1)}}`;
      case 'record':
      case 'error':
      case 'enum':
      case 'fixed': {
        if (typeof o.name !== 'string' || o.name === '') fail(`a ${type} has no name`);
        // An explicit empty namespace means none, not the enclosing one.
        const ns = typeof o.namespace === 'string' ? o.namespace || undefined : namespace;
        const name = fullName(o.name as string, ns);
        if (defined.has(name)) return JSON.stringify(name);
        defined.add(name);
        const head = `{"name":${JSON.stringify(name)},"type":${JSON.stringify(type === 'error' ? 'record' : type)}`;
        if (type === 'enum') {
          if (!Array.isArray(o.symbols) || !o.symbols.every((s) => typeof s === 'string')) fail(`enum ${name} has no symbols`);
          return `${head},"symbols":${JSON.stringify(o.symbols)}}`;
        }
        if (type === 'fixed') {
          const size = o.size;
          if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) fail(`fixed ${name} has no valid size`);
          return `${head},"size":${String(size)}}`;
        }
        if (!Array.isArray(o.fields)) fail(`record ${name} has no fields`);
        const inner = namespaceOf(name);
        const fields = (o.fields as Json[]).map((field) => {
          if (field === null || typeof field !== 'object' || Array.isArray(field) || typeof field.name !== 'string')
            fail(`record ${name} has a field without a name`);
          const f = field as Record<string, Json>;
          return `{"name":${JSON.stringify(f.name)},"type":${write(f.type, inner, depth + 1)}}`;
        });
        return `${head},"fields":[${fields.join(',')}]}`;
      }
      default: {
        // `{"type": "Name"}` refers to a named type like the bare string does.
        return write(type, namespace, depth + 1);
      }
    }
  }

  return write(schema, undefined, 0);
}

const EMPTY64 = 0xc15d213aa4d7a795n;
const MASK64 = 0xffffffffffffffffn;

const CRC64_TABLE: readonly bigint[] = (() => {
  const table: bigint[] = [];
  for (let i = 0; i < 256; i++) {
    let fp = BigInt(i);
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY64 & -(fp & 1n) & MASK64);
    table.push(fp);
  }
  return table;
})();

/** CRC-64-AVRO (Rabin) of the bytes, as an unsigned 64-bit integer. */
export function crc64Avro(bytes: Uint8Array): bigint {
  let fp = EMPTY64;
  for (const b of bytes) fp = (fp >> 8n) ^ (CRC64_TABLE[Number((fp ^ BigInt(b)) & 0xffn)] as bigint);
  return fp;
}

/** The 8 bytes single-object encoding carries: the fingerprint, little-endian. */
export function fingerprintBytes(fingerprint: bigint): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(fingerprint);
  return buf;
}

/** As Avro Java prints it (a signed long), for people comparing with a producer's logs. */
export function fingerprintAsSignedLong(fingerprint: bigint): string {
  return BigInt.asIntN(64, fingerprint).toString();
}

export interface SchemaFingerprint {
  readonly canonicalForm: string;
  readonly fingerprint: bigint;
  /** The fingerprint's 8 bytes as they appear on the wire (little-endian), in hex: the lookup key. */
  readonly hex: string;
}

/** Fingerprints a schema given as Avro JSON text. Throws SCHEMA_INVALID when it does not parse. */
export function fingerprintSchema(definition: string): SchemaFingerprint {
  let schema: unknown;
  try {
    schema = JSON.parse(definition);
  } catch (err) {
    throw new TributaryError('SCHEMA_INVALID', `schema is not valid JSON: ${(err as Error).message}`);
  }
  const canonicalForm = parsingCanonicalForm(schema);
  const fingerprint = crc64Avro(Buffer.from(canonicalForm, 'utf8'));
  return { canonicalForm, fingerprint, hex: fingerprintBytes(fingerprint).toString('hex') };
}
