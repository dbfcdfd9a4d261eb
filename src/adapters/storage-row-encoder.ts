import { TributaryError } from '../errors.js';
import type { Row, RowValue, TableField, TableSchema } from '../core/table-schema.js';
import { standardType } from '../core/table-schema.js';

/*
 * BigQuery rows (the JSON-ready values the row converter produces, docs/type-mapping.md) encoded
 * as proto2 messages for the Storage Write API, with a writer schema derived from the table schema.
 *
 * Our own encoder rather than protobufjs through the client's JSONWriter: JSONWriter hands most
 * values to protobufjs as they are, and several row values are then written silently wrong (a
 * decimal-string INT64 beyond 2^53 is fine but a BigInt becomes 0, a "YYYY-MM-DD" DATE becomes
 * 1970-01-01, the string "false" becomes true). Here every BigQuery type has one explicit rule:
 *
 *   INT64                  int64 varint, exact for numbers and decimal strings (never through Number)
 *   FLOAT64                double; "NaN", "Infinity", "-Infinity" as those values
 *   BOOL                   bool; also "true"/"false" (any case), as insertAll accepts them
 *   TIMESTAMP              int64 microseconds since the epoch, computed exactly (before 1970 too)
 *   DATE                   int32 days since the epoch
 *   BYTES                  bytes, from the row's base64 text
 *   NUMERIC, BIGNUMERIC    string (the exact decimal text)
 *   DATETIME, TIME         string, as the row holds it
 *   STRING, JSON, GEOGRAPHY, INTERVAL  string (a JSON value that is not a string is serialized)
 *   RECORD                 nested message; REPEATED as repeated fields (unpacked, proto2's default)
 *
 * Fields are numbered in table-schema order and every non-repeated field is optional in the
 * descriptor, so a missing REQUIRED value is judged by BigQuery per row, as insertAll does.
 */

/** google.protobuf.FieldDescriptorProto.Type values used here. */
const TYPE_DOUBLE = 1;
const TYPE_INT64 = 3;
const TYPE_INT32 = 5;
const TYPE_BOOL = 8;
const TYPE_STRING = 9;
const TYPE_MESSAGE = 11;
const TYPE_BYTES = 12;
const LABEL_OPTIONAL = 1;
const LABEL_REPEATED = 3;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH = 2;

/** The proto2 DescriptorProto (as a plain object) that tells BigQuery how to read the rows. */
export interface WriterDescriptor {
  name: string;
  field: WriterFieldDescriptor[];
  nestedType?: WriterDescriptor[];
}

export interface WriterFieldDescriptor {
  name: string;
  number: number;
  label: number;
  type: number;
  typeName?: string;
}

export interface StorageRowEncoder {
  /** Self-contained (nested types flattened into the root), as AppendRows requires. */
  readonly descriptor: WriterDescriptor;
  /**
   * One row as a serialized message. Throws UNKNOWN_FIELD when the row has a column this writer
   * schema lacks (the table may have gained it since), ROW_INVALID for a value its column cannot hold.
   */
  encode(row: Row): Buffer;
}

type Kind = 'int64' | 'double' | 'bool' | 'timestamp' | 'date' | 'bytes' | 'string' | 'json' | 'record';

interface FieldPlan {
  readonly name: string;
  readonly number: number;
  readonly kind: Kind;
  readonly repeated: boolean;
  /** Tag bytes (field number and wire type), precomputed. */
  readonly tag: Buffer;
  readonly record: RecordPlan | undefined;
}

interface RecordPlan {
  /** Lower-cased column name -> field: BigQuery matches column names case-insensitively. */
  readonly byName: Map<string, FieldPlan>;
}

const PROTO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function kindOf(field: TableField): Kind {
  const type = standardType(field.type);
  switch (type) {
    case 'INT64':
      return 'int64';
    case 'FLOAT64':
      return 'double';
    case 'BOOL':
      return 'bool';
    case 'TIMESTAMP':
      return 'timestamp';
    case 'DATE':
      return 'date';
    case 'BYTES':
      return 'bytes';
    case 'RECORD':
      return 'record';
    case 'JSON':
      return 'json';
    case 'STRING':
    case 'NUMERIC':
    case 'BIGNUMERIC':
    case 'DATETIME':
    case 'TIME':
    case 'GEOGRAPHY':
    case 'INTERVAL':
      return 'string';
    default:
      throw new TributaryError('SCHEMA_INVALID', `column "${field.name}" has type ${field.type}, which the Storage Write sink does not write`);
  }
}

function protoTypeOf(kind: Kind): number {
  switch (kind) {
    case 'int64':
    case 'timestamp':
      return TYPE_INT64;
    case 'date':
      return TYPE_INT32;
    case 'double':
      return TYPE_DOUBLE;
    case 'bool':
      return TYPE_BOOL;
    case 'bytes':
      return TYPE_BYTES;
    case 'record':
      return TYPE_MESSAGE;
    case 'string':
    case 'json':
      return TYPE_STRING;
  }
}

function wireTypeOf(kind: Kind): number {
  switch (kind) {
    case 'double':
      return WIRE_FIXED64;
    case 'int64':
    case 'timestamp':
    case 'date':
    case 'bool':
      return WIRE_VARINT;
    default:
      return WIRE_LENGTH;
  }
}

function varintBytes(value: number): Buffer {
  const out: number[] = [];
  let v = value;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** Builds the descriptor and the encoding plan together, so field numbers cannot disagree. */
function plan(schema: TableSchema, rootName: string): { descriptor: WriterDescriptor; root: RecordPlan } {
  const nested: WriterDescriptor[] = [];
  const build = (fields: TableField[], name: string, path: string): { descriptor: WriterDescriptor; plan: RecordPlan } => {
    const descriptor: WriterDescriptor = { name, field: [] };
    const byName = new Map<string, FieldPlan>();
    fields.forEach((field, i) => {
      const where = path === '' ? field.name : `${path}.${field.name}`;
      if (!PROTO_NAME.test(field.name)) {
        throw new TributaryError('SCHEMA_INVALID', `column "${where}" is not a name the Storage Write sink can use in a proto descriptor`);
      }
      const number = i + 1;
      const kind = kindOf(field);
      const repeated = field.mode === 'REPEATED';
      let record: RecordPlan | undefined;
      const entry: WriterFieldDescriptor = { name: field.name, number, label: repeated ? LABEL_REPEATED : LABEL_OPTIONAL, type: protoTypeOf(kind) };
      if (kind === 'record') {
        // Unique by construction: a counter, not the path (a_b.c and a.b_c would collide).
        const typeName = `${rootName}_${nested.length + 1}`;
        const slot = nested.length;
        nested.push({ name: typeName, field: [] });
        const inner = build(field.fields ?? [], typeName, where);
        nested[slot] = inner.descriptor;
        record = inner.plan;
        entry.typeName = typeName;
      }
      descriptor.field.push(entry);
      byName.set(field.name.toLowerCase(), { name: field.name, number, kind, repeated, tag: varintBytes(number * 8 + wireTypeOf(kind)), record });
    });
    return { descriptor, plan: { byName } };
  };
  const root = build(schema.fields, rootName, '');
  if (nested.length > 0) root.descriptor.nestedType = nested;
  return { descriptor: root.descriptor, root: root.plan };
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A growable output buffer; nested messages reserve one length byte and shift if they need more. */
class ByteWriter {
  buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  bytes(data: Buffer): void {
    this.ensure(data.length);
    data.copy(this.buf, this.pos);
    this.pos += data.length;
  }

  varint32(value: number): void {
    this.ensure(5);
    let v = value >>> 0;
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }

  /** A 64-bit varint from its two's-complement halves (unsigned 32-bit each). */
  varint64(lo: number, hi: number): void {
    this.ensure(10);
    let l = lo >>> 0;
    let h = hi >>> 0;
    while (h > 0 || l > 0x7f) {
      this.buf[this.pos++] = (l & 0x7f) | 0x80;
      l = ((l >>> 7) | (h << 25)) >>> 0;
      h >>>= 7;
    }
    this.buf[this.pos++] = l;
  }

  double(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  string(value: string): void {
    const max = value.length * 3;
    if (max < 128) {
      // One length byte is enough: write the text after it and fill the byte in.
      this.ensure(max + 1);
      const written = this.buf.write(value, this.pos + 1, 'utf8');
      this.buf[this.pos] = written;
      this.pos += written + 1;
      return;
    }
    const length = Buffer.byteLength(value, 'utf8');
    this.varint32(length);
    this.ensure(length);
    this.buf.write(value, this.pos, 'utf8');
    this.pos += length;
  }

  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

const TWO_32 = 4_294_967_296;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INTEGER_TEXT = /^[+-]?\d+$/;

/** Writes a safe integer as a two's-complement int64 varint (negative numbers take 10 bytes). */
function writeInt64Number(w: ByteWriter, value: number): void {
  if (value >= 0 && value <= 0x7fffffff) {
    w.varint32(value);
    return;
  }
  const negative = value < 0;
  const abs = negative ? -value : value;
  let lo = abs >>> 0;
  let hi = Math.floor(abs / TWO_32) >>> 0;
  if (negative) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
    lo += 1;
    if (lo > 0xffffffff) {
      lo = 0;
      hi = (hi + 1) >>> 0;
    }
  }
  w.varint64(lo, hi);
}

function writeInt64Big(w: ByteWriter, value: bigint): void {
  const bits = BigInt.asUintN(64, value);
  w.varint64(Number(bits & 0xffffffffn), Number(bits >> 32n));
}

type Fail = (problem: string) => never;

function encodeInt64(w: ByteWriter, value: RowValue, fail: Fail): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) fail(`${value} is not an exact integer (integers beyond 2^53 travel as decimal strings)`);
    writeInt64Number(w, value);
    return;
  }
  if (typeof value === 'string' && INTEGER_TEXT.test(value)) {
    const big = BigInt(value);
    if (big < INT64_MIN || big > INT64_MAX) fail(`${value} is outside INT64`);
    writeInt64Big(w, big);
    return;
  }
  fail(`expected an integer, got ${JSON.stringify(value)}`);
}

function encodeDouble(w: ByteWriter, value: RowValue, fail: Fail): void {
  if (typeof value === 'number') {
    w.double(value);
    return;
  }
  if (typeof value === 'string') {
    const n = value === 'NaN' ? Number.NaN : Number(value);
    if (value.trim() !== '' && (value === 'NaN' || !Number.isNaN(n))) {
      w.double(n);
      return;
    }
  }
  fail(`expected a number, got ${JSON.stringify(value)}`);
}

function encodeBool(w: ByteWriter, value: RowValue, fail: Fail): void {
  let b: boolean;
  if (typeof value === 'boolean') b = value;
  else if (typeof value === 'string' && /^(true|false)$/i.test(value)) b = value.toLowerCase() === 'true';
  else return fail(`expected a boolean, got ${JSON.stringify(value)}`);
  w.varint32(b ? 1 : 0);
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = month > 2 ? month - 3 : month + 9;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function validDate(year: number, month: number, day: number): boolean {
  if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const length = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  return day <= length;
}

const DATE_TEXT = /^(\d{4})-(\d{1,2})-(\d{1,2})$/;
/** The converter writes "YYYY-MM-DDTHH:MM:SS.ffffffZ"; a space, fewer digits and a +HH:MM offset are also read. */
const TIMESTAMP_TEXT = /^(\d{4})-(\d{1,2})-(\d{1,2})[T ](\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:Z|[+-]00:?00| UTC)?$/;
const MICROS_PER_DAY = 86_400_000_000;
/** Beyond this many days from 1970, days × micros-per-day leaves the exact range of a double. */
const SAFE_DAYS = 104_000;

function encodeDate(w: ByteWriter, value: RowValue, fail: Fail): void {
  const m = typeof value === 'string' ? DATE_TEXT.exec(value) : null;
  if (m === null) return fail(`expected a date "YYYY-MM-DD", got ${JSON.stringify(value)}`);
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (!validDate(year, month, day)) fail(`${String(value)} is not a date between 0001-01-01 and 9999-12-31`);
  writeInt64Number(w, daysFromCivil(year, month, day));
}

function encodeTimestamp(w: ByteWriter, value: RowValue, fail: Fail): void {
  if (typeof value === 'number') {
    // insertAll reads a number as seconds since the epoch.
    const micros = Math.round(value * 1_000_000);
    if (!Number.isSafeInteger(micros)) fail(`${value} is not a timestamp in range`);
    writeInt64Number(w, micros);
    return;
  }
  const m = typeof value === 'string' ? TIMESTAMP_TEXT.exec(value) : null;
  if (m === null) return fail(`expected a timestamp "YYYY-MM-DDTHH:MM:SS.ffffffZ", got ${JSON.stringify(value)}`);
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  if (!validDate(year, month, day) || hour > 23 || minute > 59 || second > 59) fail(`${String(value)} is not a timestamp in range`);
  const fraction = m[7] === undefined ? 0 : Number(m[7].padEnd(6, '0'));
  const days = daysFromCivil(year, month, day);
  const ofDay = ((hour * 60 + minute) * 60 + second) * 1_000_000 + fraction;
  if (days > -SAFE_DAYS && days < SAFE_DAYS) writeInt64Number(w, days * MICROS_PER_DAY + ofDay);
  else writeInt64Big(w, BigInt(days) * BigInt(MICROS_PER_DAY) + BigInt(ofDay));
}

const BASE64_TEXT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function encodeBytes(w: ByteWriter, value: RowValue, fail: Fail): void {
  if (typeof value !== 'string' || !BASE64_TEXT.test(value)) return fail('expected base64 text');
  const data = Buffer.from(value, 'base64');
  w.varint32(data.length);
  w.bytes(data);
}

function encodeString(w: ByteWriter, value: RowValue, fail: Fail): void {
  if (typeof value === 'string') w.string(value);
  else if (typeof value === 'number' || typeof value === 'boolean') w.string(String(value));
  else fail(`expected a string, got ${Array.isArray(value) ? 'an array' : 'an object'}`);
}

function encodeJson(w: ByteWriter, value: RowValue): void {
  w.string(typeof value === 'string' ? value : JSON.stringify(value));
}

function isRow(value: RowValue): value is Row {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function encodeRecord(w: ByteWriter, row: Row, plan: RecordPlan, path: string): void {
  for (const key in row) {
    const value = row[key] as RowValue;
    const field = plan.byName.get(key.toLowerCase()) ?? plan.byName.get(key);
    const where = path === '' ? key : `${path}.${key}`;
    if (field === undefined) throw new TributaryError('UNKNOWN_FIELD', `no such field: ${where}.`);
    if (value === null) continue;
    if (field.repeated) {
      if (!Array.isArray(value)) throw new TributaryError('ROW_INVALID', `field "${where}": a REPEATED column takes an array`);
      for (let i = 0; i < value.length; i++) {
        const item = value[i] as RowValue;
        if (item === null) throw new TributaryError('ROW_INVALID', `field "${where}[${i}]": arrays cannot hold NULL`);
        encodeField(w, field, item, `${where}[${i}]`);
      }
    } else {
      if (Array.isArray(value) && field.kind !== 'json') throw new TributaryError('ROW_INVALID', `field "${where}": an array for a column that is not REPEATED`);
      encodeField(w, field, value, where);
    }
  }
}

function encodeField(w: ByteWriter, field: FieldPlan, value: RowValue, where: string): void {
  const fail: Fail = (problem) => {
    throw new TributaryError('ROW_INVALID', `field "${where}": ${problem}`);
  };
  w.bytes(field.tag);
  switch (field.kind) {
    case 'int64':
      return encodeInt64(w, value, fail);
    case 'double':
      return encodeDouble(w, value, fail);
    case 'bool':
      return encodeBool(w, value, fail);
    case 'timestamp':
      return encodeTimestamp(w, value, fail);
    case 'date':
      return encodeDate(w, value, fail);
    case 'bytes':
      return encodeBytes(w, value, fail);
    case 'string':
      return encodeString(w, value, fail);
    case 'json':
      return encodeJson(w, value);
    case 'record': {
      if (!isRow(value)) return fail('expected a record (an object)');
      // Reserve one length byte; a longer message moves its bytes up to make room for the varint.
      w.ensure(1);
      const lengthAt = w.pos;
      w.pos += 1;
      encodeRecord(w, value, field.record as RecordPlan, where);
      const length = w.pos - lengthAt - 1;
      if (length < 128) {
        w.buf[lengthAt] = length;
        return;
      }
      const prefix = varintBytes(length);
      w.ensure(prefix.length - 1);
      w.buf.copyWithin(lengthAt + prefix.length, lengthAt + 1, w.pos);
      prefix.copy(w.buf, lengthAt);
      w.pos += prefix.length - 1;
      return;
    }
  }
}

/** Compiles the writer schema of a table once; encode rows with it as often as needed. */
export function createStorageRowEncoder(schema: TableSchema, rootName = 'tributary_row'): StorageRowEncoder {
  const { descriptor, root } = plan(schema, rootName);
  let sizeHint = 256;
  return {
    descriptor,
    encode(row: Row): Buffer {
      const w = new ByteWriter(sizeHint);
      encodeRecord(w, row, root, '');
      // Start the next row with room for this one: most rows of a table have a similar size.
      if (w.pos > sizeHint) sizeHint = Math.min(w.pos * 2, 1 << 20);
      return w.finish();
    },
  };
}

/**
 * A safe upper bound of a row's encoded size, without its table schema (the sink prepares rows
 * before it knows their table): a tag takes at most 3 bytes (field numbers below 2^18), a string
 * its UTF-8 bytes plus a 5-byte length (its column may be INT64 or TIMESTAMP: 10 bytes at most),
 * any number 10, a record its fields plus a length. BigQuery's 10,000 columns keep tags in 3 bytes.
 */
export function storageRowSizeBound(row: Row): number {
  let total = 0;
  for (const key in row) total += valueBound(row[key] as RowValue);
  return total;
}

const TAG_BOUND = 3;
const LENGTH_BOUND = 5;

function valueBound(value: RowValue): number {
  if (value === null) return 0;
  switch (typeof value) {
    case 'string': {
      // A string's UTF-8 size is at most 3 bytes per UTF-16 unit; measure only when that matters.
      const text = value.length * 3 + LENGTH_BOUND <= 10 ? 10 : Buffer.byteLength(value, 'utf8') + LENGTH_BOUND;
      return TAG_BOUND + Math.max(10, text);
    }
    case 'number':
    case 'boolean':
      // A number in a STRING column is written as its text: up to 24 characters.
      return TAG_BOUND + 25;
    default:
      break;
  }
  if (Array.isArray(value)) {
    let sum = 0;
    for (const item of value) sum += valueBound(item);
    return sum;
  }
  let inner = 0;
  // Key lengths too: a JSON column holding an object (the converter never makes one) is written as text.
  for (const key in value) inner += key.length + 3 + valueBound(value[key] as RowValue);
  return TAG_BOUND + LENGTH_BOUND + inner;
}
