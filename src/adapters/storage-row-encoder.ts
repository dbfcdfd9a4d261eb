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
  /** The tag (field number and wire type), precomputed. */
  readonly tagValue: number;
  readonly record: RecordPlan | undefined;
}

interface RecordPlan {
  /** Column name as the table spells it -> field: the common case, no lower-casing. */
  readonly exact: Map<string, FieldPlan>;
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
    const exact = new Map<string, FieldPlan>();
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
      const fieldPlan: FieldPlan = { name: field.name, number, kind, repeated, tagValue: number * 8 + wireTypeOf(kind), record };
      byName.set(field.name.toLowerCase(), fieldPlan);
      exact.set(field.name, fieldPlan);
    });
    return { descriptor, plan: { exact, byName } };
  };
  const root = build(schema.fields, rootName, '');
  if (nested.length > 0) root.descriptor.nestedType = nested;
  return { descriptor: root.descriptor, root: root.plan };
}

// ---------------------------------------------------------------------------------------------
// Writing
//
// The happy path allocates nothing but the row's output buffer: rows are written into one reused
// scratch buffer, and field paths for error messages are only built when a value fails.

/** A value its column cannot hold, or a column the writer lacks; the path is filled in on the way out. */
class EncodeProblem extends Error {
  readonly path: Array<string | number> = [];
  constructor(
    readonly code: 'ROW_INVALID' | 'UNKNOWN_FIELD',
    readonly problem: string,
  ) {
    super(problem);
  }
}

function problem(text: string): never {
  throw new EncodeProblem('ROW_INVALID', text);
}

function formatPath(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}

/** A growable output buffer; nested messages reserve one length byte and shift if they need more. */
class ByteWriter {
  buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }

  ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + extra));
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
    const buf = this.buf;
    let v = value >>> 0;
    while (v > 0x7f) {
      buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[this.pos++] = v;
  }

  /** A 64-bit varint from its two's-complement halves (unsigned 32-bit each). */
  varint64(lo: number, hi: number): void {
    this.ensure(10);
    const buf = this.buf;
    let l = lo >>> 0;
    let h = hi >>> 0;
    while (h > 0 || l > 0x7f) {
      buf[this.pos++] = (l & 0x7f) | 0x80;
      l = ((l >>> 7) | (h << 25)) >>> 0;
      h >>>= 7;
    }
    buf[this.pos++] = l;
  }

  double(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  string(value: string): void {
    const n = value.length;
    if (n < 128) {
      // Short strings are mostly ASCII: copy the code units in JS, cheaper than a call into the
      // UTF-8 encoder; up to 127 bytes need one length byte.
      this.ensure(n * 3 + 1);
      const buf = this.buf;
      const start = this.pos;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + 1 + i] = c;
      }
      if (i === n || n <= 42) {
        // 42 UTF-16 units take at most 126 UTF-8 bytes: the length still fits one byte.
        const written = i === n ? n : i + buf.write(value.slice(i), start + 1 + i, 'utf8');
        buf[start] = written;
        this.pos = start + 1 + written;
        return;
      }
    }
    const length = Buffer.byteLength(value, 'utf8');
    this.varint32(length);
    this.ensure(length);
    this.buf.write(value, this.pos, 'utf8');
    this.pos += length;
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

function encodeInt64(w: ByteWriter, value: RowValue): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) problem(`${value} is not an exact integer (integers beyond 2^53 travel as decimal strings)`);
    writeInt64Number(w, value);
    return;
  }
  if (typeof value === 'string' && INTEGER_TEXT.test(value)) {
    const big = BigInt(value);
    if (big < INT64_MIN || big > INT64_MAX) problem(`${value} is outside INT64`);
    writeInt64Big(w, big);
    return;
  }
  problem(`expected an integer, got ${JSON.stringify(value)}`);
}

function encodeDouble(w: ByteWriter, value: RowValue): void {
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
  problem(`expected a number, got ${JSON.stringify(value)}`);
}

function encodeBool(w: ByteWriter, value: RowValue): void {
  let b: boolean;
  if (typeof value === 'boolean') b = value;
  else if (typeof value === 'string' && /^(true|false)$/i.test(value)) b = value.toLowerCase() === 'true';
  else return problem(`expected a boolean, got ${JSON.stringify(value)}`);
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
  const length = month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  return day <= length;
}

const DATE_TEXT = /^(\d{4})-(\d{1,2})-(\d{1,2})$/;
/** Anything but the converter's "YYYY-MM-DDTHH:MM:SS.ffffffZ": a space, fewer digits, a zero offset. */
const TIMESTAMP_TEXT = /^(\d{4})-(\d{1,2})-(\d{1,2})[T ](\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:Z|[+-]00:?00| UTC)?$/;
const MICROS_PER_DAY = 86_400_000_000;
/** Beyond this many days from 1970, days × micros-per-day leaves the exact range of a double. */
const SAFE_DAYS = 104_000;

/** Digits at fixed positions of the converter's canonical form, read without a regex or substrings. */
function digits(s: string, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function encodeDate(w: ByteWriter, value: RowValue): void {
  const m = typeof value === 'string' ? DATE_TEXT.exec(value) : null;
  if (m === null) return problem(`expected a date "YYYY-MM-DD", got ${JSON.stringify(value)}`);
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (!validDate(year, month, day)) problem(`${String(value)} is not a date between 0001-01-01 and 9999-12-31`);
  writeInt64Number(w, daysFromCivil(year, month, day));
}

function writeMicros(
  w: ByteWriter,
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  fraction: number,
  text: string,
): void {
  if (!validDate(year, month, day) || hour > 23 || minute > 59 || second > 59) problem(`${text} is not a timestamp in range`);
  const days = daysFromCivil(year, month, day);
  const ofDay = ((hour * 60 + minute) * 60 + second) * 1_000_000 + fraction;
  if (days > -SAFE_DAYS && days < SAFE_DAYS) writeInt64Number(w, days * MICROS_PER_DAY + ofDay);
  else writeInt64Big(w, BigInt(days) * BigInt(MICROS_PER_DAY) + BigInt(ofDay));
}

function encodeTimestamp(w: ByteWriter, value: RowValue): void {
  if (typeof value === 'number') {
    // insertAll reads a number as seconds since the epoch.
    const micros = Math.round(value * 1_000_000);
    if (!Number.isSafeInteger(micros)) problem(`${value} is not a timestamp in range`);
    writeInt64Number(w, micros);
    return;
  }
  if (typeof value !== 'string') return problem(`expected a timestamp, got ${JSON.stringify(value)}`);
  // The converter's form: YYYY-MM-DDTHH:MM:SS.ffffffZ (27 characters).
  if (value.length === 27 && value.charCodeAt(10) === 84 && value.charCodeAt(26) === 90 && value.charCodeAt(19) === 46) {
    const year = digits(value, 0, 4);
    const month = digits(value, 5, 2);
    const day = digits(value, 8, 2);
    const hour = digits(value, 11, 2);
    const minute = digits(value, 14, 2);
    const second = digits(value, 17, 2);
    const fraction = digits(value, 20, 6);
    if (
      year >= 0 &&
      month >= 0 &&
      day >= 0 &&
      hour >= 0 &&
      minute >= 0 &&
      second >= 0 &&
      fraction >= 0 &&
      value.charCodeAt(4) === 45 &&
      value.charCodeAt(7) === 45 &&
      value.charCodeAt(13) === 58 &&
      value.charCodeAt(16) === 58
    ) {
      writeMicros(w, year, month, day, hour, minute, second, fraction, value);
      return;
    }
  }
  const m = TIMESTAMP_TEXT.exec(value);
  if (m === null) return problem(`expected a timestamp "YYYY-MM-DDTHH:MM:SS.ffffffZ", got ${JSON.stringify(value)}`);
  const fraction = m[7] === undefined ? 0 : Number(m[7].padEnd(6, '0'));
  writeMicros(w, Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), fraction, value);
}

const BASE64_TEXT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function encodeBytes(w: ByteWriter, value: RowValue): void {
  if (typeof value !== 'string' || !BASE64_TEXT.test(value)) return problem('expected base64 text');
  const data = Buffer.from(value, 'base64');
  w.varint32(data.length);
  w.bytes(data);
}

function encodeString(w: ByteWriter, value: RowValue): void {
  if (typeof value === 'string') w.string(value);
  else if (typeof value === 'number' || typeof value === 'boolean') w.string(String(value));
  else problem(`expected a string, got ${Array.isArray(value) ? 'an array' : 'an object'}`);
}

function encodeJson(w: ByteWriter, value: RowValue): void {
  w.string(typeof value === 'string' ? value : JSON.stringify(value));
}

function isRow(value: RowValue): value is Row {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function lookup(plan: RecordPlan, key: string): FieldPlan | undefined {
  return plan.exact.get(key) ?? plan.byName.get(key.toLowerCase());
}

function encodeRecord(w: ByteWriter, row: Row, plan: RecordPlan): void {
  for (const key in row) {
    const value = row[key] as RowValue;
    const field = lookup(plan, key);
    try {
      if (field === undefined) throw new EncodeProblem('UNKNOWN_FIELD', 'no such field');
      if (value === null) continue;
      if (field.repeated) {
        if (!Array.isArray(value)) problem('a REPEATED column takes an array');
        for (let i = 0; i < value.length; i++) {
          const item = value[i] as RowValue;
          try {
            if (item === null) problem('arrays cannot hold NULL');
            encodeField(w, field, item);
          } catch (err) {
            if (err instanceof EncodeProblem) err.path.unshift(i);
            throw err;
          }
        }
      } else {
        if (Array.isArray(value) && field.kind !== 'json') problem('an array for a column that is not REPEATED');
        encodeField(w, field, value);
      }
    } catch (err) {
      if (err instanceof EncodeProblem) err.path.unshift(key);
      throw err;
    }
  }
}

function encodeField(w: ByteWriter, field: FieldPlan, value: RowValue): void {
  const tag = field.tagValue;
  if (tag < 0x80) {
    w.ensure(1);
    w.buf[w.pos++] = tag;
  } else w.varint32(tag);
  switch (field.kind) {
    case 'int64':
      return encodeInt64(w, value);
    case 'double':
      return encodeDouble(w, value);
    case 'bool':
      return encodeBool(w, value);
    case 'timestamp':
      return encodeTimestamp(w, value);
    case 'date':
      return encodeDate(w, value);
    case 'bytes':
      return encodeBytes(w, value);
    case 'string':
      return encodeString(w, value);
    case 'json':
      return encodeJson(w, value);
    case 'record': {
      if (!isRow(value)) return problem('expected a record (an object)');
      // Reserve one length byte; a longer message moves its bytes up to make room for the varint.
      w.ensure(1);
      const lengthAt = w.pos;
      w.pos += 1;
      encodeRecord(w, value, field.record as RecordPlan);
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
  // One scratch buffer per encoder, reused row after row; each row leaves with an exact-size copy.
  const scratch = new ByteWriter(64 * 1024);
  return {
    descriptor,
    encode(row: Row): Buffer {
      scratch.pos = 0;
      try {
        encodeRecord(scratch, row, root);
      } catch (err) {
        if (!(err instanceof EncodeProblem)) throw err;
        const path = formatPath(err.path);
        if (err.code === 'UNKNOWN_FIELD') throw new TributaryError('UNKNOWN_FIELD', `no such field: ${path}.`);
        throw new TributaryError('ROW_INVALID', `field "${path}": ${err.problem}`);
      }
      const out = Buffer.allocUnsafe(scratch.pos);
      scratch.buf.copy(out, 0, 0, scratch.pos);
      // A huge row grew the scratch buffer: let it go rather than hold it for the encoder's life.
      if (scratch.buf.length > 1 << 22) scratch.buf = Buffer.allocUnsafeSlow(64 * 1024);
      return out;
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

/** UTF-8 bytes of a string, or a bound (3 per UTF-16 unit): short strings are scanned in JS. */
function utf8Bound(value: string): number {
  const n = value.length;
  if (n >= 64) return Buffer.byteLength(value, 'utf8');
  for (let i = 0; i < n; i++) if (value.charCodeAt(i) >= 0x80) return n * 3;
  return n;
}

function valueBound(value: RowValue): number {
  if (value === null) return 0;
  switch (typeof value) {
    case 'string':
      return TAG_BOUND + Math.max(10, utf8Bound(value) + LENGTH_BOUND);
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
