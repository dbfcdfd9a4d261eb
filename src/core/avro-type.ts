import { isUtf8 } from 'node:buffer';
import avro from 'avsc';

const MIN_SAFE_BIG = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);

const bigintLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint | number) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (n: unknown) => BigInt(n as string | number | bigint),
  toJSON: (n: bigint | number) => (typeof n === 'number' || (n >= MIN_SAFE_BIG && n <= MAX_SAFE_BIG) ? Number(n) : n.toString()),
  isValid: (n: unknown) => typeof n === 'bigint' || Number.isSafeInteger(n),
  // Relational operators compare a number with a bigint by value; === would not.
  compare: (a: bigint | number, b: bigint | number) => (a < b ? -1 : a > b ? 1 : 0),
});
const readLongBytes = (tap: Tap): bigint | undefined => (bigintLong as unknown as { _read(tap: Tap): bigint | undefined })._read(tap);

/**
 * avsc reads a custom long by unpacking the varint into a new 8-byte buffer and handing that to
 * fromBuffer: an allocation and a BigInt per long. Up to eight varint bytes whose value stays below
 * 2^53 are read here as plain numbers (exact: every step is an integer below 2^53); anything longer
 * or larger takes avsc's path, so the result never depends on which path ran.
 */
function readExactLong(tap: Tap): number | bigint | undefined {
  const buf = tap.buf;
  const start = tap.pos;
  let pos = start;
  let n = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (pos >= buf.length) {
      tap.pos = buf.length + 1; // truncated, the way avsc marks it
      return undefined;
    }
    const b = buf[pos++] as number;
    // The eighth byte carries bits 49-55: below 16 the total stays under 2^53.
    if (i === 7 && b >= 16) break;
    n += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) {
      tap.pos = pos;
      // zigzag: even → n/2, odd → -(n+1)/2
      return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
    }
    scale *= 128;
  }
  tap.pos = start;
  const big = readLongBytes(tap);
  return big !== undefined && big >= MIN_SAFE_BIG && big <= MAX_SAFE_BIG ? Number(big) : big;
}

/**
 * avsc's default `long` throws beyond 2^53; this one is exact at any size. A long decodes to a
 * `number` when it is a safe integer (|n| < 2^53: every timestamp of this millennium in
 * microseconds) and to a `bigint` otherwise. Both encode. (avsc freezes its types: the fast read is
 * an own property of an object that inherits everything else from the BigInt-backed type.)
 */
export const exactLong = Object.freeze(Object.create(bigintLong, { _read: { value: readExactLong } }) as typeof bigintLong);

/**
 * The part of avsc's decoding cursor the guard reads (avsc 5.7, lib/utils.js `Tap`). The unit tests
 * decode hostile payloads through it, so a change of avsc's internals fails them loudly.
 */
interface Tap {
  buf: Buffer & { utf8Slice(start: number, end: number): string };
  pos: number;
  readLong(): number;
  skipLong(): void;
}

interface InternalType {
  readonly typeName: string;
  readonly itemsType?: InternalType;
  readonly valuesType?: InternalType;
  readonly types?: readonly InternalType[];
  readonly fields?: ReadonlyArray<{ type: InternalType }>;
  readonly size?: number;
  _read(tap: Tap): unknown;
}

/**
 * Items that take no bytes on the wire (`null`, empty records, zero-size fixed) cost nothing to
 * claim: a handful of bytes can announce billions of them. Their total per payload is capped.
 */
export const MAX_ZERO_SIZE_ITEMS = 100_000;

const minSizes = new WeakMap<InternalType, number>();
const zeroSizeItemsRead = new WeakMap<Tap, number>();
/** Set while the values of one message decode through several taps (the records of a container file). */
let sharedZeroSizeBudget: { used: number } | undefined;

/**
 * Runs `decode` (synchronous) with one zero-size-item budget for everything it decodes, so the
 * records of one container file share the cap one payload has instead of each having its own.
 */
export function withSharedDecodeBudget<T>(decode: () => T): T {
  const outer = sharedZeroSizeBudget;
  sharedZeroSizeBudget = { used: 0 };
  try {
    return decode();
  } finally {
    sharedZeroSizeBudget = outer;
  }
}

/** The fewest bytes one value of the type takes on the wire; recursion counts as zero (safe side). */
function minEncodedSize(type: InternalType, visiting: Set<InternalType> = new Set()): number {
  const known = minSizes.get(type);
  if (known !== undefined) return known;
  if (visiting.has(type)) return 0;
  let size: number;
  switch (type.typeName) {
    case 'null':
      size = 0;
      break;
    case 'float':
      size = 4;
      break;
    case 'double':
      size = 8;
      break;
    case 'fixed':
      size = type.size ?? 0;
      break;
    case 'record':
    case 'error': {
      visiting.add(type);
      size = 0;
      for (const field of type.fields ?? []) size += minEncodedSize(field.type, visiting);
      visiting.delete(type);
      break;
    }
    case 'boolean':
    case 'int':
    case 'long':
    case 'abstract:long':
    case 'bytes':
    case 'string':
    case 'enum':
    case 'array':
    case 'map':
    case 'union:wrapped':
    case 'union:unwrapped':
      // A varint (count, length, index) or one byte at least.
      size = 1;
      break;
    default:
      size = 0;
  }
  if (visiting.size === 0) minSizes.set(type, size);
  return size;
}

function decodeError(message: string): Error {
  return new Error(message);
}

/**
 * Reads one block count and checks it against what is left of the payload, before anything is
 * allocated: `count` items of at least `itemBytes` bytes each must fit in the bytes that remain,
 * and items of no size at all are capped per payload.
 */
function readBlockCount(tap: Tap, itemBytes: number, what: string): number {
  let n = tap.readLong();
  if (n < 0) {
    n = -n;
    tap.skipLong();
  }
  if (n === 0) return 0;
  const remaining = tap.buf.length - tap.pos;
  if (!Number.isSafeInteger(n) || remaining < 0) throw decodeError(`${what} block count ${n} is invalid`);
  if (itemBytes > 0) {
    if (n * itemBytes > remaining) throw decodeError(`${what} block of ${n} items cannot fit in the ${remaining} bytes left`);
  } else {
    const total = (sharedZeroSizeBudget ? sharedZeroSizeBudget.used : (zeroSizeItemsRead.get(tap) ?? 0)) + n;
    if (total > MAX_ZERO_SIZE_ITEMS) throw decodeError(`${what} claims ${total} items that take no bytes (limit ${MAX_ZERO_SIZE_ITEMS})`);
    if (sharedZeroSizeBudget) sharedZeroSizeBudget.used = total;
    else zeroSizeItemsRead.set(tap, total);
  }
  return n;
}

/*
 * avsc decodes counts straight from the wire: a 5-byte payload announcing 2^30 items made it
 * allocate until the heap aborted the process (not a catchable error), and a map of 2^30 entries
 * past the end of the buffer spun for half a minute. These subclasses check every count first.
 */
class GuardedArrayType extends avro.types.ArrayType {
  _read(tap: Tap): unknown[] {
    const items = (this as unknown as InternalType).itemsType as InternalType;
    const itemBytes = minEncodedSize(items);
    let values: unknown[] | undefined;
    let at = 0;
    let n: number;
    while ((n = readBlockCount(tap, itemBytes, 'array')) !== 0) {
      // Sized from the first block, as avsc does: safe now that the count has been checked.
      values ??= new Array<unknown>(n);
      for (let i = 0; i < n; i++) values[at++] = items._read(tap);
    }
    return values ?? [];
  }
}

class GuardedMapType extends avro.types.MapType {
  _read(tap: Tap): Record<string, unknown> {
    const values = (this as unknown as InternalType).valuesType as InternalType;
    // Each entry is a key (a length varint at least) and a value.
    const entryBytes = 1 + minEncodedSize(values);
    // No prototype: a key "__proto__" on the wire is an entry like any other, not a prototype.
    const map = Object.create(null) as Record<string, unknown>;
    let n: number;
    while ((n = readBlockCount(tap, entryBytes, 'map')) !== 0) {
      for (let i = 0; i < n; i++) {
        const key = readString(tap);
        map[key] = values._read(tap);
      }
    }
    return map;
  }
}

/**
 * A STRING must be valid UTF-8; avsc would replace invalid bytes with U+FFFD and change the data
 * silently. The check runs only when the decoded text holds U+FFFD, so valid text costs one scan.
 */
function readString(tap: Tap): string {
  const len = tap.readLong();
  const start = tap.pos;
  const buf = tap.buf;
  if (len < 0 || start + len > buf.length) {
    tap.pos = buf.length + 1;
    return '';
  }
  tap.pos = start + len;
  const text = buf.utf8Slice(start, start + len);
  if (text.includes('\uFFFD') && !isUtf8(buf.subarray(start, start + len))) {
    throw decodeError(`a string of ${len} bytes at offset ${start} is not valid UTF-8`);
  }
  return text;
}

class GuardedStringType extends avro.types.StringType {
  _read(tap: Tap): string {
    return readString(tap);
  }
}

function isSchemaObject(s: avro.Schema): s is avro.Schema & { type: unknown } {
  return typeof s === 'object' && s !== null && !Array.isArray(s);
}

/**
 * Compiles an Avro schema the way the whole project decodes it:
 * - `long` values are exact: `number` within ±2^53, `bigint` beyond;
 * - unions are always wrapped (`null` or `{ branchName: value }`), so the branch is never guessed;
 * - logical types are not interpreted by avsc: the row converter reads them from the schema;
 * - arrays, maps and strings are read by guarded types: any payload decodes or fails with an error
 *   in time and memory bounded by its size, and strings that are not UTF-8 fail.
 * Throws on a schema that does not parse.
 */
export function createAvroType(schema: avro.Schema): avro.Type {
  return avro.Type.forSchema(schema, {
    wrapUnions: true,
    // A hook rather than a registry entry: `{"type": "long", ...}` objects bypass the registry.
    typeHook: (s: avro.Schema, opts: avro.ForSchemaOptions) => {
      const type = isSchemaObject(s) ? s.type : s;
      if (type === 'long') return exactLong;
      if (type === 'string') return new GuardedStringType();
      if (!isSchemaObject(s)) return undefined;
      if (type === 'array') return new GuardedArrayType(s as avro.schema.ArrayType, opts);
      if (type === 'map') return new GuardedMapType(s as avro.schema.MapType, opts);
      return undefined;
    },
  } as Partial<avro.ForSchemaOptions>);
}

export type AvroType = avro.Type;
export type AvroSchema = avro.Schema;
