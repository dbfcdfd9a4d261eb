import avro from 'avsc';

/**
 * avsc's default `long` throws beyond 2^53; this one is backed by BigInt so every long decodes
 * exactly. Values arrive as `bigint` whatever their size.
 */
const bigintLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (n: unknown) => BigInt(n as string | number | bigint),
  toJSON: (n: bigint) => (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString()),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

/**
 * Compiles an Avro schema the way the whole project decodes it:
 * - `long` values are `bigint`;
 * - unions are always wrapped (`null` or `{ branchName: value }`), so the branch is never guessed;
 * - logical types are not interpreted by avsc: the row converter reads them from the schema.
 * Throws on a schema that does not parse.
 */
export function createAvroType(schema: avro.Schema): avro.Type {
  return avro.Type.forSchema(schema, {
    wrapUnions: true,
    // A hook rather than a registry entry: `{"type": "long", ...}` objects bypass the registry.
    typeHook: (s: avro.Schema) =>
      s === 'long' || (typeof s === 'object' && s !== null && !Array.isArray(s) && (s as { type?: unknown }).type === 'long')
        ? bigintLong
        : undefined,
  } as Partial<avro.ForSchemaOptions>);
}

export type AvroType = avro.Type;
export type AvroSchema = avro.Schema;
