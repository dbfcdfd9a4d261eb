import avro from 'avsc';
import { TributaryError } from '../errors.js';
import type { AvroSchema } from './avro-type.js';
import type { Row, RowValue, TableField } from './table-schema.js';
import { describeValue, formatPath, type PathNode } from './value-path.js';

/*
 * Avro value -> BigQuery JSON row. docs/type-mapping.md is the user-facing contract; keep them in step.
 *
 * The schema is parsed once into a node graph (named types resolved, logical types validated), then
 * compiled into one closure per node. Records register their closure before their fields compile, so
 * a recursive reference finds the closure instead of recursing forever.
 */

type Mode = 'NULLABLE' | 'REQUIRED' | 'REPEATED';

type Logical =
  | { kind: 'timestamp'; name: string; local: boolean; micros: boolean }
  | { kind: 'date' }
  | { kind: 'time'; name: string; micros: boolean }
  | { kind: 'decimal'; precision: number; scale: number };

type PrimitiveKind = 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'bytes' | 'string';

interface PrimitiveNode {
  kind: PrimitiveKind;
  logical: Logical | undefined;
}
interface FixedNode {
  kind: 'fixed';
  fullName: string;
  size: number;
  logical: Logical | undefined;
}
interface EnumNode {
  kind: 'enum';
  fullName: string;
}
interface RecordNode {
  kind: 'record';
  fullName: string;
  /** Filled after the node is registered, so recursive references can point at it. */
  fields: { name: string; type: Node }[];
}
interface ArrayNode {
  kind: 'array';
  items: Node;
}
interface MapNode {
  kind: 'map';
  values: Node;
}
interface UnionNode {
  kind: 'union';
  branches: Node[];
}
type Node = PrimitiveNode | FixedNode | EnumNode | RecordNode | ArrayNode | MapNode | UnionNode;
type NamedNode = FixedNode | EnumNode | RecordNode;

const PRIMITIVES: ReadonlySet<string> = new Set<PrimitiveKind>(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

/** BigQuery's documented limit on nested RECORD levels. */
const MAX_RECORD_DEPTH = 15;

// ---------------------------------------------------------------------------------------------
// Parsing

function schemaError(message: string): TributaryError {
  return new TributaryError('SCHEMA_INVALID', message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPrimitiveKind(name: string): name is PrimitiveKind {
  return PRIMITIVES.has(name);
}

/** Same qualification rules as avsc, so our names match the branch keys avsc decodes unions with. */
function qualify(name: string, namespace: string | undefined): string {
  if (name.includes('.')) return name.startsWith('.') ? name.slice(1) : name;
  return namespace ? `${namespace}.${name}` : name;
}

function shortName(fullName: string): string {
  return fullName.slice(fullName.lastIndexOf('.') + 1);
}

function isNamed(node: Node): node is NamedNode {
  return node.kind === 'record' || node.kind === 'enum' || node.kind === 'fixed';
}

/** The key avsc uses for this branch of a wrapped union. */
function branchKey(node: Node): string {
  return isNamed(node) ? node.fullName : node.kind;
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Largest number of decimal digits a two's-complement fixed of this size can always hold. */
function maxDecimalDigits(size: number): number {
  return ((1n << BigInt(8 * size - 1)) - 1n).toString().length - 1;
}

/** Per the Avro spec, a logical type that does not fit its underlying type is ignored, not an error. */
function parseLogical(schema: Record<string, unknown>, underlying: PrimitiveKind | 'fixed', size: number): Logical | undefined {
  const name = schema.logicalType;
  switch (name) {
    case 'timestamp-millis':
    case 'timestamp-micros':
    case 'local-timestamp-millis':
    case 'local-timestamp-micros':
      return underlying === 'long' ? { kind: 'timestamp', name, local: name.startsWith('local-'), micros: name.endsWith('micros') } : undefined;
    case 'date':
      return underlying === 'int' ? { kind: 'date' } : undefined;
    case 'time-millis':
      return underlying === 'int' ? { kind: 'time', name, micros: false } : undefined;
    case 'time-micros':
      return underlying === 'long' ? { kind: 'time', name, micros: true } : undefined;
    case 'decimal': {
      if (underlying !== 'bytes' && underlying !== 'fixed') return undefined;
      const precision = schema.precision;
      const scale = schema.scale === undefined ? 0 : schema.scale;
      if (!isNonNegativeInteger(precision) || precision < 1 || !isNonNegativeInteger(scale) || scale > precision) return undefined;
      if (underlying === 'fixed' && (size < 1 || precision > maxDecimalDigits(size))) return undefined;
      return { kind: 'decimal', precision, scale };
    }
    default:
      return undefined;
  }
}

class SchemaParser {
  private readonly registry = new Map<string, NamedNode>();

  parse(schema: unknown, namespace: string | undefined): Node {
    if (typeof schema === 'string') return this.resolve(schema, namespace);
    if (Array.isArray(schema)) return this.parseUnion(schema, namespace);
    if (!isObject(schema)) throw schemaError(`invalid Avro schema element: ${JSON.stringify(schema)}`);
    const type = schema.type;
    if (typeof type !== 'string') throw schemaError(`invalid Avro schema: "type" must be a string in ${JSON.stringify(schema)}`);
    if (isPrimitiveKind(type)) return { kind: type, logical: parseLogical(schema, type, 0) };
    switch (type) {
      case 'record':
      case 'error':
        return this.parseRecord(schema, namespace);
      case 'enum': {
        const node: EnumNode = { kind: 'enum', fullName: this.nameOf(schema, namespace) };
        this.register(node);
        return node;
      }
      case 'fixed': {
        const size = schema.size;
        if (!isNonNegativeInteger(size)) throw schemaError(`fixed type has an invalid size: ${JSON.stringify(schema)}`);
        const node: FixedNode = { kind: 'fixed', fullName: this.nameOf(schema, namespace), size, logical: parseLogical(schema, 'fixed', size) };
        this.register(node);
        return node;
      }
      case 'array':
        return { kind: 'array', items: this.parse(schema.items, namespace) };
      case 'map':
        return { kind: 'map', values: this.parse(schema.values, namespace) };
      default:
        throw schemaError(`unknown Avro type "${type}"`);
    }
  }

  private resolve(name: string, namespace: string | undefined): Node {
    // avsc treats a primitive's name as global even when qualified; mirror it so lookups agree.
    const last = shortName(name);
    if (isPrimitiveKind(last)) return { kind: last, logical: undefined };
    const fullName = qualify(name, namespace);
    const node = this.registry.get(fullName);
    if (node === undefined) throw schemaError(`undefined Avro type name "${fullName}"`);
    return node;
  }

  private nameOf(schema: Record<string, unknown>, namespace: string | undefined): string {
    const name = schema.name;
    if (typeof name !== 'string' || name === '') throw schemaError(`named Avro type without a name: ${JSON.stringify(schema)}`);
    const own = schema.namespace;
    return qualify(name, own === undefined ? namespace : typeof own === 'string' ? own : undefined);
  }

  private register(node: NamedNode): void {
    if (isPrimitiveKind(shortName(node.fullName))) throw schemaError(`cannot redefine primitive type "${node.fullName}"`);
    if (this.registry.has(node.fullName)) throw schemaError(`duplicate Avro type name "${node.fullName}"`);
    this.registry.set(node.fullName, node);
  }

  private parseRecord(schema: Record<string, unknown>, namespace: string | undefined): RecordNode {
    const node: RecordNode = { kind: 'record', fullName: this.nameOf(schema, namespace), fields: [] };
    this.register(node);
    // Fields resolve names in the record's namespace: explicit attribute, else the one its full name implies.
    const own = schema.namespace;
    let inner = namespace;
    if (own !== undefined) inner = typeof own === 'string' ? own : undefined;
    else if (node.fullName.includes('.')) inner = node.fullName.slice(0, node.fullName.lastIndexOf('.'));
    const fields = schema.fields;
    if (!Array.isArray(fields)) throw schemaError(`record "${node.fullName}" has no fields array`);
    const seen = new Map<string, string>();
    for (const field of fields) {
      if (!isObject(field) || typeof field.name !== 'string' || field.name === '') {
        throw schemaError(`record "${node.fullName}" has an invalid field: ${JSON.stringify(field)}`);
      }
      // BigQuery column names are case-insensitive, so "id" and "ID" cannot both be columns.
      const lower = field.name.toLowerCase();
      const clash = seen.get(lower);
      if (clash !== undefined) {
        throw schemaError(`record "${node.fullName}" has fields "${clash}" and "${field.name}", which BigQuery treats as the same column`);
      }
      seen.set(lower, field.name);
      node.fields.push({ name: field.name, type: this.parse(field.type, inner) });
    }
    return node;
  }

  private parseUnion(schema: unknown[], namespace: string | undefined): UnionNode {
    const branches = schema.map((branch) => this.parse(branch, namespace));
    const keys = new Set<string>();
    for (const branch of branches) {
      if (branch.kind === 'union') throw schemaError('a union cannot directly contain another union');
      const key = branchKey(branch);
      if (keys.has(key)) throw schemaError(`union has more than one "${key}" branch`);
      keys.add(key);
    }
    return { kind: 'union', branches };
  }
}

function parseRoot(schema: AvroSchema): RecordNode {
  const json: unknown = avro.Type.isType(schema) ? (schema as avro.Type).schema({ exportAttrs: true }) : schema;
  const root = new SchemaParser().parse(json, undefined);
  if (root.kind !== 'record') throw schemaError(`the top-level Avro schema must be a record, got ${root.kind}`);
  return root;
}

function modeOf(node: Node): Mode {
  switch (node.kind) {
    case 'array':
    case 'map':
      return 'REPEATED';
    case 'null':
      return 'NULLABLE';
    case 'union': {
      const nonNull = node.branches.filter((b) => b.kind !== 'null');
      const hasNull = nonNull.length !== node.branches.length;
      const only = nonNull.length === 1 ? nonNull[0] : undefined;
      if (only === undefined) return nonNull.length === 0 || hasNull ? 'NULLABLE' : 'REQUIRED';
      const inner = modeOf(only);
      // BigQuery has no NULL repeated field, so a nullable array stays REPEATED (null becomes []).
      return inner === 'REPEATED' ? 'REPEATED' : hasNull ? 'NULLABLE' : inner;
    }
    default:
      return 'REQUIRED';
  }
}

/** Field names of a multi-branch union's RECORD, in branch order (null excluded). */
function unionFieldNames(branches: Node[]): string[] {
  const short = branches.map((b) => (isNamed(b) ? shortName(b.fullName) : b.kind));
  const counts = new Map<string, number>();
  for (const name of short) counts.set(name.toLowerCase(), (counts.get(name.toLowerCase()) ?? 0) + 1);
  const names = branches.map((b, i) => {
    const name = short[i] ?? '';
    return (counts.get(name.toLowerCase()) ?? 0) > 1 ? branchKey(b).replace(/\./g, '_') : name;
  });
  const unique = new Set(names.map((n) => n.toLowerCase()));
  if (unique.size !== names.length) throw schemaError(`union branches ${JSON.stringify(branches.map(branchKey))} cannot be given distinct column names`);
  return names;
}

// ---------------------------------------------------------------------------------------------
// Paths: built only when an error is thrown.

function fail(parent: PathNode | undefined, key: string | number, problem: string): never {
  const path = formatPath(parent, key);
  throw new TributaryError('CONVERSION_FAILED', path === '' ? `record: ${problem}` : `field "${path}": ${problem}`);
}

const describe = (value: unknown): string => describeValue(value);

// ---------------------------------------------------------------------------------------------
// Value formatting (exact integer arithmetic; no Date)

const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE_BIG = BigInt(Number.MIN_SAFE_INTEGER);
const MICROS_PER_DAY = 86_400_000_000;
const MICROS_PER_DAY_BIG = 86_400_000_000n;
const MILLIS_PER_DAY = 86_400_000;
/** 0001-01-01T00:00:00 and 9999-12-31T23:59:59.999999, in microseconds since the epoch. */
const MIN_MICROS = -62_135_596_800_000_000n;
const MAX_MICROS = 253_402_300_799_999_999n;
const MIN_MILLIS = -62_135_596_800_000;
const MAX_MILLIS = 253_402_300_799_999;
/** 0001-01-01 and 9999-12-31 in days since the epoch. */
const MIN_DAYS = -719_162;
const MAX_DAYS = 2_932_896;

const PAD2: readonly string[] = Array.from({ length: 100 }, (_, i) => (i < 10 ? `0${i}` : `${i}`));

/** Days since 1970-01-01 -> YYYY-MM-DD (Hinnant's civil_from_days; days must be in range). */
function formatDays(days: number): string {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return `${String(10_000 + year).slice(1)}-${PAD2[month]}-${PAD2[day]}`;
}

/** Microseconds into the day (0..86399999999) -> HH:MM:SS.ffffff. */
function formatTimeOfDay(micros: number): string {
  const seconds = Math.floor(micros / 1_000_000);
  const fraction = micros - seconds * 1_000_000;
  return `${PAD2[Math.floor(seconds / 3600)]}:${PAD2[Math.floor(seconds / 60) % 60]}:${PAD2[seconds % 60]}.${String(1_000_000 + fraction).slice(1)}`;
}

/** A safe integer of microseconds: Number arithmetic is exact. */
function formatSafeMicros(n: number): string {
  // The division may round across a day boundary, which the remainder corrects.
  let days = Math.floor(n / MICROS_PER_DAY);
  let rem = n - days * MICROS_PER_DAY;
  if (rem < 0) {
    days -= 1;
    rem += MICROS_PER_DAY;
  } else if (rem >= MICROS_PER_DAY) {
    days += 1;
    rem -= MICROS_PER_DAY;
  }
  return `${formatDays(days)}T${formatTimeOfDay(rem)}`;
}

function formatMicros(micros: bigint): string {
  if (micros >= MIN_SAFE_BIG && micros <= MAX_SAFE_BIG) return formatSafeMicros(Number(micros));
  let d = micros / MICROS_PER_DAY_BIG;
  let r = micros % MICROS_PER_DAY_BIG;
  if (r < 0n) {
    d -= 1n;
    r += MICROS_PER_DAY_BIG;
  }
  return `${formatDays(Number(d))}T${formatTimeOfDay(Number(r))}`;
}

/** Millisecond values in range are far below 2^53, so plain numbers are exact. */
function formatMillis(millis: number): string {
  const days = Math.floor(millis / MILLIS_PER_DAY);
  return `${formatDays(days)}T${formatTimeOfDay((millis - days * MILLIS_PER_DAY) * 1000)}`;
}

/** Big-endian two's complement -> BigInt. */
function unscaledOf(buf: Buffer): bigint {
  const length = buf.length;
  if (length === 0) return 0n;
  if (length <= 6) return BigInt(buf.readIntBE(0, length));
  const unsigned = BigInt(`0x${buf.toString('hex')}`);
  return (buf[0] ?? 0) & 0x80 ? unsigned - (1n << BigInt(8 * length)) : unsigned;
}

function decimalString(digits: string, negative: boolean, scale: number): string {
  const sign = negative ? '-' : '';
  if (scale === 0) return sign + digits;
  const padded = digits.length > scale ? digits : '0'.repeat(scale - digits.length + 1) + digits;
  const point = padded.length - scale;
  return `${sign}${padded.slice(0, point)}.${padded.slice(point)}`;
}

// ---------------------------------------------------------------------------------------------
// BigQuery column types

interface ColumnSpec {
  type: string;
  mode: Mode;
  fields?: TableField[];
  precision?: string;
  scale?: string;
}

/** NUMERIC(P,S) needs S <= 9 and P - S <= 29; BIGNUMERIC(P,S) S <= 38 and P - S <= 38. */
function decimalColumnType(precision: number, scale: number): 'NUMERIC' | 'BIGNUMERIC' | 'STRING' {
  if (scale <= 9 && precision - scale <= 29) return 'NUMERIC';
  if (scale <= 38 && precision - scale <= 38) return 'BIGNUMERIC';
  return 'STRING';
}

function scalarType(node: PrimitiveNode | FixedNode): ColumnSpec {
  const logical = node.logical;
  if (logical !== undefined) {
    switch (logical.kind) {
      case 'timestamp':
        return { type: logical.local ? 'DATETIME' : 'TIMESTAMP', mode: 'REQUIRED' };
      case 'date':
        return { type: 'DATE', mode: 'REQUIRED' };
      case 'time':
        return { type: 'TIME', mode: 'REQUIRED' };
      case 'decimal': {
        const type = decimalColumnType(logical.precision, logical.scale);
        return type === 'STRING'
          ? { type, mode: 'REQUIRED' }
          : { type, mode: 'REQUIRED', precision: String(logical.precision), scale: String(logical.scale) };
      }
    }
  }
  switch (node.kind) {
    case 'null':
      return { type: 'STRING', mode: 'NULLABLE' };
    case 'boolean':
      return { type: 'BOOL', mode: 'REQUIRED' };
    case 'int':
    case 'long':
      return { type: 'INT64', mode: 'REQUIRED' };
    case 'float':
    case 'double':
      return { type: 'FLOAT64', mode: 'REQUIRED' };
    case 'bytes':
    case 'fixed':
      return { type: 'BYTES', mode: 'REQUIRED' };
    case 'string':
      return { type: 'STRING', mode: 'REQUIRED' };
  }
}

class FieldBuilder {
  /** Records being expanded, to name the culprit when a recursive schema hits the depth limit. */
  private readonly expanding: RecordNode[] = [];

  fields(node: RecordNode, depth: number, path: string): TableField[] {
    this.expanding.push(node);
    const out = node.fields.map((f) => this.column(f.name, f.type, depth, path === '' ? f.name : `${path}.${f.name}`));
    this.expanding.pop();
    return out;
  }

  private column(name: string, node: Node, depth: number, path: string): TableField {
    const spec = this.spec(node, depth, path);
    const field: TableField = { name, type: spec.type, mode: spec.mode };
    if (spec.fields !== undefined) field.fields = spec.fields;
    if (spec.precision !== undefined) field.precision = spec.precision;
    if (spec.scale !== undefined) field.scale = spec.scale;
    return field;
  }

  /** `depth` is the number of RECORD levels around this column. */
  private spec(node: Node, depth: number, path: string): ColumnSpec {
    switch (node.kind) {
      case 'enum':
        return { type: 'STRING', mode: 'REQUIRED' };
      case 'record': {
        const level = this.enter(depth, path, node);
        return { type: 'RECORD', mode: 'REQUIRED', fields: this.fields(node, level, path) };
      }
      case 'array': {
        if (modeOf(node.items) !== 'REPEATED') return { ...this.spec(node.items, depth, path), mode: 'REPEATED' };
        const level = this.enter(depth, path, undefined);
        return { type: 'RECORD', mode: 'REPEATED', fields: [this.column('value', node.items, level, `${path}.value`)] };
      }
      case 'map': {
        const level = this.enter(depth, path, undefined);
        return {
          type: 'RECORD',
          mode: 'REPEATED',
          fields: [{ name: 'key', type: 'STRING', mode: 'REQUIRED' }, this.column('value', node.values, level, `${path}.value`)],
        };
      }
      case 'union': {
        const nonNull = node.branches.filter((b) => b.kind !== 'null');
        const mode = modeOf(node);
        const only = nonNull.length === 1 ? nonNull[0] : undefined;
        if (nonNull.length === 0) return { type: 'STRING', mode: 'NULLABLE' };
        if (only !== undefined) return { ...this.spec(only, depth, path), mode };
        const level = this.enter(depth, path, undefined);
        const names = unionFieldNames(nonNull);
        const fields = nonNull.map((branch, i) => {
          const name = names[i] ?? '';
          const field = this.column(name, branch, level, `${path}.${name}`);
          if (field.mode !== 'REPEATED') field.mode = 'NULLABLE';
          return field;
        });
        return { type: 'RECORD', mode, fields };
      }
      default:
        return scalarType(node);
    }
  }

  private enter(depth: number, path: string, record: RecordNode | undefined): number {
    const level = depth + 1;
    if (level <= MAX_RECORD_DEPTH) return level;
    const recursive = record !== undefined && this.expanding.includes(record);
    throw schemaError(
      recursive
        ? `recursive record "${record.fullName}" cannot be mapped to a BigQuery table: at "${path}" it exceeds BigQuery's limit of ${MAX_RECORD_DEPTH} nested RECORD levels`
        : `field "${path}" exceeds BigQuery's limit of ${MAX_RECORD_DEPTH} nested RECORD levels`,
    );
  }
}

/**
 * The BigQuery table schema the row converter's output fits. Throws SCHEMA_INVALID for a schema
 * that is not a record or that nests deeper than BigQuery allows (every recursive schema does).
 */
export function bigQueryFieldsFor(schema: AvroSchema): TableField[] {
  return new FieldBuilder().fields(parseRoot(schema), 0, '');
}

// ---------------------------------------------------------------------------------------------
// Compilation

type Convert = (value: unknown, parent: PathNode | undefined, key: string | number) => RowValue;

const convertNull: Convert = () => null;

const convertBoolean: Convert = (v, p, k) => (typeof v === 'boolean' ? v : fail(p, k, `expected a boolean, got ${describe(v)}`));

const convertInt: Convert = (v, p, k) => (typeof v === 'number' ? v : fail(p, k, `expected an int, got ${describe(v)}`));

const convertLong: Convert = (v, p, k) => {
  if (typeof v === 'bigint') return v >= MIN_SAFE_BIG && v <= MAX_SAFE_BIG ? Number(v) : v.toString();
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  return fail(p, k, `expected a long, got ${describe(v)}`);
};

const convertFloat: Convert = (v, p, k) => {
  if (typeof v !== 'number') return fail(p, k, `expected a number, got ${describe(v)}`);
  if (Number.isFinite(v)) return v;
  // JSON has no NaN/Infinity; BigQuery accepts these strings for FLOAT64.
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
};

const convertBytes: Convert = (v, p, k) => (Buffer.isBuffer(v) ? v.toString('base64') : fail(p, k, `expected bytes, got ${describe(v)}`));

const convertString: Convert = (v, p, k) => (typeof v === 'string' ? v : fail(p, k, `expected a string, got ${describe(v)}`));

/** A long as an exact bigint, whichever way avsc was configured to decode it. */
function longOf(v: unknown, p: PathNode | undefined, k: string | number): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  return fail(p, k, `expected a long, got ${describe(v)}`);
}

function timestampConverter(logical: Extract<Logical, { kind: 'timestamp' }>): Convert {
  const suffix = logical.local ? '' : 'Z';
  const range = logical.local
    ? "BigQuery's DATETIME range 0001-01-01T00:00:00..9999-12-31T23:59:59.999999"
    : "BigQuery's TIMESTAMP range 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z";
  const name = logical.name;
  if (logical.micros) {
    return (v, p, k) => {
      // The decoder hands safe integers over as numbers, and every one is inside the range
      // (±2^53 µs is ±285 years around 1970); only a bigint can be outside.
      if (typeof v === 'number' && Number.isSafeInteger(v)) return formatSafeMicros(v) + suffix;
      const micros = longOf(v, p, k);
      if (micros < MIN_MICROS || micros > MAX_MICROS) return fail(p, k, `${name} value ${micros} is outside ${range}`);
      return formatMicros(micros) + suffix;
    };
  }
  return (v, p, k) => {
    let n: number;
    if (typeof v === 'number' && Number.isSafeInteger(v)) {
      n = v;
    } else {
      const millis = longOf(v, p, k);
      // Bigint comparison first: Number() of a huge long could round into range.
      n = millis >= MIN_SAFE_BIG && millis <= MAX_SAFE_BIG ? Number(millis) : Number.NaN;
    }
    if (!(n >= MIN_MILLIS && n <= MAX_MILLIS)) return fail(p, k, `${name} value ${String(v)} is outside ${range}`);
    return formatMillis(n) + suffix;
  };
}

const convertDate: Convert = (v, p, k) => {
  if (typeof v !== 'number' || !Number.isInteger(v)) return fail(p, k, `expected an int (date), got ${describe(v)}`);
  if (v < MIN_DAYS || v > MAX_DAYS) return fail(p, k, `date value ${v} is outside BigQuery's DATE range 0001-01-01..9999-12-31`);
  return formatDays(v);
};

function timeConverter(logical: Extract<Logical, { kind: 'time' }>): Convert {
  const range = "BigQuery's TIME range 00:00:00..23:59:59.999999";
  if (logical.micros) {
    return (v, p, k) => {
      if (typeof v === 'number' && Number.isSafeInteger(v)) {
        if (v < 0 || v >= MICROS_PER_DAY) return fail(p, k, `time-micros value ${v} is outside ${range}`);
        return formatTimeOfDay(v);
      }
      const micros = longOf(v, p, k);
      if (micros < 0n || micros >= MICROS_PER_DAY_BIG) return fail(p, k, `time-micros value ${micros} is outside ${range}`);
      return formatTimeOfDay(Number(micros));
    };
  }
  return (v, p, k) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) return fail(p, k, `expected an int (time-millis), got ${describe(v)}`);
    if (v < 0 || v >= MILLIS_PER_DAY) return fail(p, k, `time-millis value ${v} is outside ${range}`);
    return formatTimeOfDay(v * 1000);
  };
}

function decimalConverter(logical: Extract<Logical, { kind: 'decimal' }>): Convert {
  const { precision, scale } = logical;
  // STRING columns hold any digits; NUMERIC/BIGNUMERIC(P,S) reject a value wider than P.
  const checkPrecision = decimalColumnType(precision, scale) !== 'STRING';
  return (v, p, k) => {
    if (!Buffer.isBuffer(v)) return fail(p, k, `expected decimal bytes, got ${describe(v)}`);
    const unscaled = unscaledOf(v);
    const negative = unscaled < 0n;
    const digits = (negative ? -unscaled : unscaled).toString();
    if (checkPrecision && digits.length > precision) {
      return fail(p, k, `decimal value ${decimalString(digits, negative, scale)} has more than the declared precision of ${precision} digits`);
    }
    return decimalString(digits, negative, scale);
  };
}

type RowBuilder = (input: Record<string, unknown>, here: PathNode | undefined) => Row;

/**
 * One record's row as a single object literal, field by field in schema order: V8 then creates
 * every row with its final shape at once, instead of growing an empty object one keyed store at a
 * time. Names are written as JSON string literals (no name can inject code), "__proto__" as a
 * computed key so that it is an own property, like every other field.
 */
function rowBuilder(names: readonly string[], converters: readonly Convert[]): RowBuilder {
  const key = (name: string): string => (name === '__proto__' ? '["__proto__"]' : JSON.stringify(name));
  const params = converters.map((_, i) => `c${i}`);
  const body = names.map((name, i) => `${key(name)}: c${i}(input[${JSON.stringify(name)}], here, ${JSON.stringify(name)})`).join(',\n');
  const factory = new Function(...params, `return function buildRow(input, here) {\n  return {\n${body}\n  };\n};`) as (...c: Convert[]) => RowBuilder;
  return factory(...converters);
}

class Compiler {
  private readonly cache = new Map<Node, Convert>();

  /**
   * @param tracked whether records, arrays and maps pass their path down to name a failing field.
   *   Untracked converters allocate no path per value; they are the ones that run, and a failure is
   *   converted once more by tracked ones only to be described.
   */
  constructor(private readonly tracked: boolean) {}

  compile(node: Node): Convert {
    const cached = this.cache.get(node);
    if (cached !== undefined) return cached;
    const convert = this.build(node);
    this.cache.set(node, convert);
    return convert;
  }

  private build(node: Node): Convert {
    switch (node.kind) {
      case 'record':
        return this.record(node);
      case 'array':
        return this.array(node);
      case 'map':
        return this.map(node);
      case 'union':
        return this.union(node);
      case 'enum':
        return convertString;
      default:
        return this.scalar(node);
    }
  }

  private scalar(node: PrimitiveNode | FixedNode): Convert {
    const logical = node.logical;
    if (logical !== undefined) {
      switch (logical.kind) {
        case 'timestamp':
          return timestampConverter(logical);
        case 'date':
          return convertDate;
        case 'time':
          return timeConverter(logical);
        case 'decimal':
          return decimalConverter(logical);
      }
    }
    switch (node.kind) {
      case 'null':
        return convertNull;
      case 'boolean':
        return convertBoolean;
      case 'int':
        return convertInt;
      case 'long':
        return convertLong;
      case 'float':
      case 'double':
        return convertFloat;
      case 'bytes':
      case 'fixed':
        return convertBytes;
      case 'string':
        return convertString;
    }
  }

  private record(node: RecordNode): Convert {
    const tracked = this.tracked;
    const converters: Convert[] = [];
    let build: RowBuilder | undefined;
    const convert: Convert = (v, p, k) => {
      if (typeof v !== 'object' || v === null) return fail(p, k, `expected a record, got ${describe(v)}`);
      const here: PathNode | undefined = tracked ? { parent: p, key: k, map: false } : undefined;
      return (build as RowBuilder)(v as Record<string, unknown>, here);
    };
    // Registered before the fields compile: a recursive field type then finds this closure.
    this.cache.set(node, convert);
    for (const field of node.fields) converters.push(this.compile(field.type));
    build = rowBuilder(
      node.fields.map((f) => f.name),
      converters,
    );
    return convert;
  }

  private array(node: ArrayNode): Convert {
    const tracked = this.tracked;
    const item = this.compile(node.items);
    // BigQuery has no arrays of arrays: a repeated item is wrapped in a RECORD with one `value` field.
    const wrap = modeOf(node.items) === 'REPEATED';
    return (v, p, k) => {
      if (!Array.isArray(v)) return fail(p, k, `expected an array, got ${describe(v)}`);
      const here: PathNode | undefined = tracked ? { parent: p, key: k, map: false } : undefined;
      const count = v.length;
      const out: RowValue[] = [];
      for (let i = 0; i < count; i++) {
        const converted = item(v[i], here, i);
        if (converted === null) return fail(here, i, 'arrays cannot hold NULL (BigQuery REPEATED fields have no NULL elements)');
        out.push(wrap ? { value: converted } : converted);
      }
      return out;
    };
  }

  private map(node: MapNode): Convert {
    const tracked = this.tracked;
    const value = this.compile(node.values);
    return (v, p, k) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(p, k, `expected a map, got ${describe(v)}`);
      const input = v as Record<string, unknown>;
      const here: PathNode | undefined = tracked ? { parent: p, key: k, map: true } : undefined;
      const out: RowValue[] = [];
      for (const key in input) out.push({ key, value: value(input[key], here, key) });
      return out;
    };
  }

  private union(node: UnionNode): Convert {
    const tracked = this.tracked;
    const nonNull = node.branches.filter((b) => b.kind !== 'null');
    const hasNull = nonNull.length !== node.branches.length;
    if (nonNull.length === 0) return convertNull;
    const keys = nonNull.map(branchKey);
    // avsc's branch objects inherit methods (unwrap, unwrapped, Object.prototype's): for a branch with
    // such a name, only an own property means "this branch".
    const guarded = keys.some((key) => key in Object.prototype || key === 'unwrap' || key === 'unwrapped');
    const read = (input: Record<string, unknown>, key: string): unknown =>
      guarded && !Object.prototype.hasOwnProperty.call(input, key) ? undefined : input[key];
    const expected = keys.map((key) => JSON.stringify(key)).join(', ');
    const notNull = (p: PathNode | undefined, k: string | number): never => fail(p, k, `null is not a branch of the union [${expected}]`);
    const noBranch = (v: unknown, p: PathNode | undefined, k: string | number): never =>
      fail(p, k, `expected a wrapped union value with one of the keys ${expected}, got ${describe(v)}`);
    const only = nonNull.length === 1 ? nonNull[0] : undefined;

    if (only !== undefined) {
      const key = keys[0] as string;
      const inner = this.compile(only);
      const empty = modeOf(only) === 'REPEATED';
      return (v, p, k) => {
        if (v === null) return hasNull ? (empty ? [] : null) : notNull(p, k);
        if (typeof v !== 'object') return noBranch(v, p, k);
        const branch = read(v as Record<string, unknown>, key);
        return branch === undefined ? noBranch(v, p, k) : inner(branch, p, k);
      };
    }

    const fields = unionFieldNames(nonNull);
    const converters = nonNull.map((b) => this.compile(b));
    const repeated = nonNull.map((b) => modeOf(b) === 'REPEATED');
    const count = keys.length;
    return (v, p, k) => {
      if (v === null) return hasNull ? null : notNull(p, k);
      if (typeof v !== 'object') return noBranch(v, p, k);
      const input = v as Record<string, unknown>;
      for (let i = 0; i < count; i++) {
        const branch = read(input, keys[i] as string);
        if (branch === undefined) continue;
        const here: PathNode | undefined = tracked ? { parent: p, key: k, map: false } : undefined;
        const out: Row = {};
        for (let j = 0; j < count; j++) {
          const field = fields[j] as string;
          out[field] = j === i ? (converters[j] as Convert)(branch, here, field) : repeated[j] ? [] : null;
        }
        return out;
      }
      return noBranch(v, p, k);
    };
  }
}

/**
 * Compiles the conversion of decoded Avro values (as createAvroType decodes them) into BigQuery JSON
 * rows. Compile once per schema and reuse. The returned function throws CONVERSION_FAILED, naming
 * the field path, for a value BigQuery cannot hold.
 */
export function createRowConverter(schema: AvroSchema): (value: unknown) => Row {
  const root = parseRoot(schema);
  const convert = new Compiler(false).compile(root);
  let described: Convert | undefined;
  return (value) => {
    try {
      return convert(value, undefined, '') as Row;
    } catch (err) {
      if (!(err instanceof TributaryError)) throw err;
      // The same conversion with paths, so the error names the field; it fails the same way.
      described ??= new Compiler(true).compile(root);
      return described(value, undefined, '') as Row;
    }
  };
}
