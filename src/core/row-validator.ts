import { standardType, type Row, type TableField, type TableSchema } from './table-schema.js';
import { describeValue, formatPath, type PathNode } from './value-path.js';

/*
 * Checks a converted row against the destination table's schema before it is sent, so a row
 * BigQuery would reject is dead-lettered with a precise reason instead of failing a whole request.
 * The schema is compiled once into closures; a valid row costs one pass and no allocation beyond
 * one small path node per RECORD/REPEATED value.
 */

export type RowValidation =
  | { ok: true; row: Row; dropped: string[] }
  | { ok: false; code: 'ROW_INVALID' | 'UNKNOWN_FIELD'; field: string; message: string };

export interface RowValidator {
  validate(row: Row): RowValidation;
  /**
   * True when every row shaped by `fields` (the columns a row converter produces, with their types
   * and modes) passes validate(): the check is then made once per schema instead of once per row.
   * False means "not proven", never "invalid".
   */
  proves(fields: readonly TableField[]): boolean;
}

export interface RowValidatorOptions {
  /** `drop` removes fields the table lacks (reporting their paths); `dead-letter` rejects the row. */
  unknownFields: 'dead-letter' | 'drop';
}

/** Thrown (not an Error: no stack to capture) and caught once per row in validate(). */
class Invalid {
  constructor(
    readonly code: 'ROW_INVALID' | 'UNKNOWN_FIELD',
    readonly parent: PathNode | undefined,
    readonly key: string | number,
    /** Follows `field "path"`: starts with " is ..." or ": ...". */
    readonly problem: string,
  ) {}
}

function invalid(parent: PathNode | undefined, key: string | number, problem: string): never {
  throw new Invalid('ROW_INVALID', parent, key, problem);
}

interface Context {
  unknownFields: 'dead-letter' | 'drop';
  dropped: string[] | undefined;
}

/** Returns the value, or a copy of it when unknown fields were dropped inside it. */
type Check = (value: unknown, parent: PathNode | undefined, key: string | number, ctx: Context) => unknown;

const describe = (value: unknown): string => describeValue(value, 'NULL');

// ---------------------------------------------------------------------------------------------
// Scalar formats

const INT64_MAX = 9_223_372_036_854_775_807n;
const INT64_MIN = -9_223_372_036_854_775_808n;

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function isInt64String(s: string): boolean {
  const length = s.length;
  let i = s.charCodeAt(0) === 45 || s.charCodeAt(0) === 43 ? 1 : 0;
  if (i === length) return false;
  for (let j = i; j < length; j++) if (!isDigit(s.charCodeAt(j))) return false;
  while (i < length - 1 && s.charCodeAt(i) === 48) i++;
  if (length - i < 19) return true;
  if (length - i > 19) return false;
  const n = BigInt(s);
  return n >= INT64_MIN && n <= INT64_MAX;
}

/**
 * Significant digits on each side of the point of a decimal literal (sign, digits, optional point,
 * optional exponent), or undefined if it is not one. "00120.500" -> 3 and 1.
 */
function decimalDigits(s: string): { integer: number; fraction: number } | undefined {
  const length = s.length;
  let i = s.charCodeAt(0) === 45 || s.charCodeAt(0) === 43 ? 1 : 0;
  const intStart = i;
  while (i < length && isDigit(s.charCodeAt(i))) i++;
  const intEnd = i;
  let fracStart = i;
  let fracEnd = i;
  if (s.charCodeAt(i) === 46) {
    fracStart = ++i;
    while (i < length && isDigit(s.charCodeAt(i))) i++;
    fracEnd = i;
  }
  if (intEnd === intStart && fracEnd === fracStart) return undefined;
  let exponent = 0;
  if (s.charCodeAt(i) === 101 || s.charCodeAt(i) === 69) {
    i++;
    const negative = s.charCodeAt(i) === 45;
    if (negative || s.charCodeAt(i) === 43) i++;
    const expStart = i;
    while (i < length && isDigit(s.charCodeAt(i))) i++;
    if (i === expStart) return undefined;
    // Anything past 6 digits is far outside every decimal type's range anyway.
    exponent = Math.min(Number(s.slice(expStart, i)), 1_000_000) * (negative ? -1 : 1);
  }
  if (i !== length) return undefined;
  const digits = s.slice(intStart, intEnd) + s.slice(fracStart, fracEnd);
  const point = intEnd - intStart + exponent;
  let first = 0;
  while (first < digits.length && digits.charCodeAt(first) === 48) first++;
  if (first === digits.length) return { integer: 0, fraction: 0 };
  let last = digits.length - 1;
  while (digits.charCodeAt(last) === 48) last--;
  return { integer: Math.max(0, point - first), fraction: Math.max(0, last + 1 - point) };
}

const FLOAT_WORDS: ReadonlySet<string> = new Set(['nan', 'inf', '+inf', '-inf', 'infinity', '+infinity', '-infinity']);

const BASE64: Uint8Array = (() => {
  const table = new Uint8Array(128);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = 1;
  return table;
})();

/** Standard alphabet; padding optional but only at the end. */
function isBase64(s: string): boolean {
  let end = s.length;
  if (end > 0 && s.charCodeAt(end - 1) === 61) end--;
  if (end > 0 && s.charCodeAt(end - 1) === 61) end--;
  if (end !== s.length && s.length % 4 !== 0) return false;
  if (end % 4 === 1) return false;
  for (let i = 0; i < end; i++) {
    const code = s.charCodeAt(i);
    if (code >= 128 || BASE64[code] !== 1) return false;
  }
  return true;
}

function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  return month === 2 && isLeapYear(year) ? 29 : (MONTH_DAYS[month - 1] ?? 0);
}

/** Days since 1970-01-01 (Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** Seconds since the epoch of 0001-01-01T00:00:00Z and of 10000-01-01T00:00:00Z. */
const MIN_SECONDS = -62_135_596_800;
const END_SECONDS = 253_402_300_800;

// BigQuery's canonical forms: one- or two-digit month/day/hour/minute/second, 'T' or ' ' separator.
const DATE_PART = String.raw`([+-]?\d{4,})-(\d{1,2})-(\d{1,2})`;
const TIME_PART = String.raw`(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d{1,9})?)?`;
const DATE_RE = new RegExp(`^${DATE_PART}$`);
const DATETIME_RE = new RegExp(`^${DATE_PART}(?:[Tt ]${TIME_PART})?$`);
const TIMESTAMP_RE = new RegExp(
  `^${DATE_PART}(?:[Tt ]${TIME_PART})?\\s*(?:([Zz]|UTC)|([+-])(\\d{1,2})(?::?(\\d{2}))?|[A-Za-z]+(?:/[A-Za-z0-9_+-]+)+)?$`,
);
const TIME_RE = new RegExp(`^${TIME_PART}$`);

type DateCheck = { ok: true } | { ok: false; problem: string };

const OK: DateCheck = { ok: true };
const RANGE = 'is outside 0001-01-01..9999-12-31';

function checkDateParts(type: string, s: string, m: RegExpExecArray): DateCheck {
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return { ok: false, problem: `: ${type} ${JSON.stringify(s)} is not a valid date` };
  if (year < 1 || year > 9999) return { ok: false, problem: `: ${type} ${JSON.stringify(s)} ${RANGE}` };
  return OK;
}

function checkTimeParts(type: string, s: string, hour: string | undefined, minute: string | undefined, second: string | undefined): DateCheck {
  if (hour === undefined) return OK;
  if (Number(hour) > 23 || Number(minute) > 59 || (second !== undefined && Number(second) > 59)) {
    return { ok: false, problem: `: ${type} ${JSON.stringify(s)} is not a valid time of day` };
  }
  return OK;
}

function checkDate(s: string): DateCheck {
  const m = DATE_RE.exec(s);
  if (m === null) return { ok: false, problem: `: DATE needs "YYYY-MM-DD", got ${describe(s)}` };
  return checkDateParts('DATE', s, m);
}

function checkDatetime(s: string): DateCheck {
  const m = DATETIME_RE.exec(s);
  if (m === null) return { ok: false, problem: `: DATETIME needs "YYYY-MM-DD[THH:MM[:SS[.ffffff]]]", got ${describe(s)}` };
  const date = checkDateParts('DATETIME', s, m);
  return date.ok ? checkTimeParts('DATETIME', s, m[4], m[5], m[6]) : date;
}

/** Two decimal digits at `i`, or -1. */
function twoDigits(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * The form the row converter writes, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, checked without a regex: it is
 * what almost every TIMESTAMP value looks like. False means "not this form or not valid", and the
 * general check then decides and explains.
 */
function isCanonicalTimestamp(s: string): boolean {
  if (s.length !== 27 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84) return false;
  if (s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58 || s.charCodeAt(19) !== 46 || s.charCodeAt(26) !== 90) return false;
  for (let i = 20; i < 26; i++) if (!isDigit(s.charCodeAt(i))) return false;
  const century = twoDigits(s, 0);
  const yy = twoDigits(s, 2);
  const month = twoDigits(s, 5);
  const day = twoDigits(s, 8);
  if (century < 0 || yy < 0 || month < 1 || month > 12 || day < 1) return false;
  const year = century * 100 + yy;
  if (year < 1 || day > daysInMonth(year, month)) return false;
  const hour = twoDigits(s, 11);
  const minute = twoDigits(s, 14);
  const second = twoDigits(s, 17);
  return hour >= 0 && hour <= 23 && minute >= 0 && minute <= 59 && second >= 0 && second <= 59;
}

function checkTimestampString(s: string): DateCheck {
  if (isCanonicalTimestamp(s)) return OK;
  const m = TIMESTAMP_RE.exec(s);
  if (m === null) return { ok: false, problem: `: TIMESTAMP needs "YYYY-MM-DD[THH:MM[:SS[.ffffff]]][zone]" or seconds since the epoch, got ${describe(s)}` };
  const date = checkDateParts('TIMESTAMP', s, m);
  if (!date.ok) return date;
  const time = checkTimeParts('TIMESTAMP', s, m[4], m[5], m[6]);
  if (!time.ok) return time;
  const year = Number(m[1]);
  // Only an offset at either end of the range can move the instant outside it.
  if ((year === 1 || year === 9999) && m[8] !== undefined) {
    const offset = (Number(m[9]) * 60 + Number(m[10] ?? 0)) * (m[8] === '-' ? -1 : 1);
    const local = daysFromCivil(year, Number(m[2]), Number(m[3])) * 86_400 + Number(m[4] ?? 0) * 3600 + Number(m[5] ?? 0) * 60 + Number(m[6] ?? 0);
    const utc = local - offset * 60;
    if (utc < MIN_SECONDS || utc >= END_SECONDS) return { ok: false, problem: `: TIMESTAMP ${JSON.stringify(s)} ${RANGE}` };
  }
  return OK;
}

function checkTime(s: string): DateCheck {
  const m = TIME_RE.exec(s);
  if (m === null) return { ok: false, problem: `: TIME needs "HH:MM:SS[.ffffff]", got ${describe(s)}` };
  return checkTimeParts('TIME', s, m[1], m[2], m[3]);
}

// ---------------------------------------------------------------------------------------------
// Scalar checks, by column type

function int64Check(type: string): Check {
  return (v, p, k) => {
    if (typeof v === 'number' ? Number.isSafeInteger(v) : typeof v === 'string' && isInt64String(v)) return v;
    return invalid(p, k, `: ${type} needs a safe integer number or an integer string within the INT64 range, got ${describe(v)}`);
  };
}

function floatCheck(type: string): Check {
  return (v, p, k) => {
    if (typeof v === 'number') {
      // JSON.stringify would turn these into null.
      return Number.isFinite(v) ? v : invalid(p, k, `: ${type} value ${String(v)} must be sent as the string "${String(v)}"`);
    }
    if (typeof v === 'string' && (decimalDigits(v) !== undefined || FLOAT_WORDS.has(v.toLowerCase()))) return v;
    return invalid(p, k, `: ${type} needs a number, a numeric string, or "NaN"/"Infinity"/"-Infinity", got ${describe(v)}`);
  };
}

function decimalCheck(type: string, maxInteger: number, maxFraction: number): Check {
  const limits = `at most ${maxInteger} integer and ${maxFraction} fraction digits`;
  return (v, p, k) => {
    let digits: { integer: number; fraction: number } | undefined;
    if (typeof v === 'number') digits = Number.isFinite(v) ? decimalDigits(String(v)) : undefined;
    else if (typeof v === 'string') digits = decimalDigits(v);
    else return invalid(p, k, `: ${type} needs a number or a decimal string, got ${describe(v)}`);
    if (digits === undefined) return invalid(p, k, `: ${type} needs a decimal number, got ${describe(v)}`);
    if (digits.integer > maxInteger || digits.fraction > maxFraction) {
      return invalid(p, k, `: ${type} value ${describe(v)} has ${digits.integer} integer and ${digits.fraction} fraction digits; ${type} holds ${limits}`);
    }
    return v;
  };
}

function stringFormatCheck(type: string, format: (s: string) => DateCheck): Check {
  return (v, p, k) => {
    if (typeof v !== 'string') return invalid(p, k, `: ${type} needs a string, got ${describe(v)}`);
    const result = format(v);
    return result.ok ? v : invalid(p, k, result.problem);
  };
}

const timestampString = stringFormatCheck('TIMESTAMP', checkTimestampString);

const timestampCheck: Check = (v, p, k, ctx) => {
  if (typeof v === 'number') {
    if (Number.isFinite(v) && v >= MIN_SECONDS && v < END_SECONDS) return v;
    return invalid(p, k, `: TIMESTAMP ${String(v)} (seconds since the epoch) ${RANGE}`);
  }
  return timestampString(v, p, k, ctx);
};

function typeCheck(type: string, v: 'boolean' | 'string'): Check {
  return (value, p, k) => (typeof value === v ? value : invalid(p, k, `: ${type} needs a ${v}, got ${describe(value)}`));
}

const anything: Check = (v) => v;

const bytesCheck: Check = (v, p, k) =>
  typeof v === 'string' && isBase64(v) ? v : invalid(p, k, `: BYTES needs a base64 string, got ${describe(v)}`);

function scalarCheck(type: string, field: TableField): Check {
  switch (type) {
    case 'INT64':
    case 'INTEGER':
      return int64Check(type);
    case 'FLOAT64':
    case 'FLOAT':
      return floatCheck(type);
    case 'NUMERIC':
    case 'DECIMAL':
      return decimalCheck(type, integerDigits(field, 29), 9);
    case 'BIGNUMERIC':
    case 'BIGDECIMAL':
      return decimalCheck(type, integerDigits(field, 38), 38);
    case 'BOOL':
    case 'BOOLEAN':
      return typeCheck(type, 'boolean');
    case 'STRING':
    case 'GEOGRAPHY':
      return typeCheck(type, 'string');
    case 'BYTES':
      return bytesCheck;
    case 'TIMESTAMP':
      return timestampCheck;
    case 'DATE':
      return stringFormatCheck(type, checkDate);
    case 'DATETIME':
      return stringFormatCheck(type, checkDatetime);
    case 'TIME':
      return stringFormatCheck(type, checkTime);
    default:
      // JSON takes any value; types we do not model (INTERVAL, RANGE, ...) are left to BigQuery.
      return anything;
  }
}

/**
 * A parameterized NUMERIC(P,S) rejects more than P-S integer digits. Extra fraction digits are not
 * checked against S: BigQuery rounds those.
 */
function integerDigits(field: TableField, fallback: number): number {
  if (field.precision === undefined) return fallback;
  const allowed = Number(field.precision) - Number(field.scale ?? 0);
  return Number.isInteger(allowed) && allowed >= 0 ? Math.min(allowed, fallback) : fallback;
}

// ---------------------------------------------------------------------------------------------
// Structure

interface Column {
  name: string;
  required: boolean;
  check: Check;
  /** The visit stamp of the record visit that last saw this column: detects case-variant duplicates. */
  stamp: number;
}

type RecordCheck = (value: Record<string, unknown>, here: PathNode, ctx: Context) => Record<string, unknown>;

const DROP = Symbol('drop');

function compileRecord(fields: readonly TableField[]): RecordCheck {
  const exact = new Map<string, Column>();
  const lower = new Map<string, Column>();
  const required: Column[] = [];
  for (const field of fields) {
    const column: Column = { name: field.name, required: field.mode === 'REQUIRED', check: compileColumn(field), stamp: 0 };
    exact.set(field.name, column);
    lower.set(field.name.toLowerCase(), column);
    if (column.required) required.push(column);
  }
  const requiredCount = required.length;
  let visits = 0;

  return (input, here, ctx) => {
    const stamp = ++visits;
    let seenRequired = 0;
    let changes: Map<string, unknown> | undefined;
    for (const key in input) {
      const value = input[key];
      const column = exact.get(key) ?? lower.get(key.toLowerCase());
      if (column === undefined) {
        // JSON.stringify omits undefined, so such a field never reaches BigQuery.
        if (value === undefined) continue;
        if (ctx.unknownFields === 'dead-letter') {
          throw new Invalid('UNKNOWN_FIELD', here, key, ' is not in table schema (unknownFields: dead-letter)');
        }
        (ctx.dropped ??= []).push(formatPath(here, key));
        (changes ??= new Map()).set(key, DROP);
        continue;
      }
      if (column.stamp === stamp) {
        invalid(here, key, `: duplicates column "${column.name}" (BigQuery column names are case-insensitive)`);
      }
      column.stamp = stamp;
      if (column.required) seenRequired++;
      const checked = column.check(value, here, key, ctx);
      if (checked !== value) (changes ??= new Map()).set(key, checked);
    }
    if (seenRequired !== requiredCount) {
      // A required column seen with an undefined or null value has already failed its own check.
      for (const column of required) if (column.stamp !== stamp) invalid(here, column.name, ' is REQUIRED but missing');
    }
    if (changes === undefined) return input;
    const out: Record<string, unknown> = {};
    for (const key in input) {
      const change = changes.has(key) ? changes.get(key) : input[key];
      if (change !== DROP) out[key] = change;
    }
    return out;
  };
}

function compileColumn(field: TableField): Check {
  const type = field.type.toUpperCase();
  let base: Check;
  if (type === 'RECORD' || type === 'STRUCT') {
    const record = compileRecord(field.fields ?? []);
    base = (v, p, k, ctx) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return invalid(p, k, `: ${type} needs an object, got ${describe(v)}`);
      return record(v as Record<string, unknown>, { parent: p, key: k }, ctx);
    };
  } else {
    base = scalarCheck(type, field);
  }

  switch (field.mode) {
    case 'REQUIRED':
      return (v, p, k, ctx) => {
        if (v === null) return invalid(p, k, ' is REQUIRED but the value is NULL');
        if (v === undefined) return invalid(p, k, ' is REQUIRED but missing');
        return base(v, p, k, ctx);
      };
    case 'REPEATED':
      // A NULL or missing repeated field is written as an empty array.
      return (v, p, k, ctx) => {
        if (v === null || v === undefined) return v;
        if (!Array.isArray(v)) return invalid(p, k, `: REPEATED ${type} needs an array, got ${describe(v)}`);
        const here: PathNode = { parent: p, key: k };
        let copy: unknown[] | undefined;
        const length = v.length;
        for (let i = 0; i < length; i++) {
          const item: unknown = v[i];
          if (item === null || item === undefined) return invalid(here, i, ': arrays cannot hold NULL');
          const checked = base(item, here, i, ctx);
          if (checked !== item) (copy ??= v.slice())[i] = checked;
        }
        return copy ?? v;
      };
    default:
      return (v, p, k, ctx) => (v === null || v === undefined ? v : base(v, p, k, ctx));
  }
}

// ---------------------------------------------------------------------------------------------
// Proof that a row shape fits the table

/** Types whose every well-formed value from the row converter is also valid for the column. */
const PROVABLE_TYPES: ReadonlySet<string> = new Set(['INT64', 'FLOAT64', 'BOOL', 'STRING', 'BYTES', 'TIMESTAMP', 'DATETIME', 'DATE', 'TIME', 'NUMERIC', 'BIGNUMERIC', 'RECORD']);

/**
 * `produced` are the columns of the rows (every field always present, REQUIRED ones never null),
 * `table` the destination's. Conservative: anything it cannot vouch for is "not proven".
 */
function fieldsFit(produced: readonly TableField[], table: readonly TableField[]): boolean {
  const byName = new Map<string, TableField>();
  for (const column of table) byName.set(column.name, column);
  const seen = new Set<string>();
  for (const field of produced) {
    const lower = field.name.toLowerCase();
    if (seen.has(lower)) return false;
    seen.add(lower);
    const column = byName.get(field.name);
    if (column === undefined || !fieldFits(field, column)) return false;
  }
  // A REQUIRED column the rows never fill would fail every row; a case-variant would be matched by
  // the validator where this proof matched nothing.
  for (const column of table) {
    if (!seen.has(column.name.toLowerCase())) {
      if (column.mode === 'REQUIRED') return false;
    } else if (!produced.some((f) => f.name === column.name)) {
      return false;
    }
  }
  return true;
}

function fieldFits(field: TableField, column: TableField): boolean {
  const type = standardType(field.type);
  if (!PROVABLE_TYPES.has(type) || standardType(column.type) !== type) return false;
  const mode = field.mode ?? 'NULLABLE';
  const columnMode = column.mode ?? 'NULLABLE';
  if (mode === 'REPEATED' || columnMode === 'REPEATED') {
    if (mode !== columnMode) return false;
  } else if (columnMode === 'REQUIRED' && mode !== 'REQUIRED') {
    return false;
  }
  if (type === 'RECORD') return fieldsFit(field.fields ?? [], column.fields ?? []);
  if (type === 'NUMERIC' || type === 'BIGNUMERIC') {
    // The converter writes at most P - S integer digits (P, S of the Avro decimal).
    const fallback = type === 'NUMERIC' ? 29 : 38;
    const produced = field.precision === undefined ? fallback : Number(field.precision) - Number(field.scale ?? 0);
    return Number.isInteger(produced) && produced <= integerDigits(column, fallback);
  }
  return true;
}

/**
 * Compiles a validator for rows bound for a table with this schema. Compile once per table schema
 * and reuse; validate() is synchronous and does not retain the row.
 */
export function createRowValidator(schema: TableSchema, options: RowValidatorOptions): RowValidator {
  const record = compileRecord(schema.fields);
  const root: PathNode = { parent: undefined, key: '' };
  const ctx: Context = { unknownFields: options.unknownFields, dropped: undefined };
  const proofs = new WeakMap<readonly TableField[], boolean>();
  return {
    proves(fields: readonly TableField[]): boolean {
      let proven = proofs.get(fields);
      if (proven === undefined) {
        proven = fieldsFit(fields, schema.fields);
        proofs.set(fields, proven);
      }
      return proven;
    },
    validate(row: Row): RowValidation {
      if (typeof row !== 'object' || row === null || Array.isArray(row)) {
        return { ok: false, code: 'ROW_INVALID', field: '', message: `a row must be an object, got ${describe(row)}` };
      }
      ctx.dropped = undefined;
      try {
        const checked = record(row, root, ctx) as Row;
        return { ok: true, row: checked, dropped: ctx.dropped ?? [] };
      } catch (err) {
        if (!(err instanceof Invalid)) throw err;
        const field = formatPath(err.parent, err.key);
        return { ok: false, code: err.code, field, message: `field "${field}"${err.problem}` };
      } finally {
        ctx.dropped = undefined;
      }
    },
  };
}
