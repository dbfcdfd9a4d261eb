import { decimalColumnType, decimalString, unscaledOf } from './avro-decimal.js';
import type { Logical } from './avro-schema-nodes.js';
import {
  formatDays,
  formatMicros,
  formatMillis,
  formatSafeMicros,
  formatTimeOfDay,
  MAX_DAYS,
  MAX_MICROS,
  MAX_MILLIS,
  MAX_SAFE_BIG,
  MICROS_PER_DAY,
  MICROS_PER_DAY_BIG,
  MILLIS_PER_DAY,
  MIN_DAYS,
  MIN_MICROS,
  MIN_MILLIS,
  MIN_SAFE_BIG,
} from './calendar-format.js';
import { type Convert, fail } from './conversion.js';
import { longOf } from './scalar-converters.js';
import { describeDecoded } from './value-path.js';

/* Conversions of Avro logical types: timestamps, dates, times of day, decimals. */

export function timestampConverter(logical: Extract<Logical, { kind: 'timestamp' }>): Convert {
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

export const convertDate: Convert = (v, p, k) => {
  if (typeof v !== 'number' || !Number.isInteger(v)) return fail(p, k, `expected an int (date), got ${describeDecoded(v)}`);
  if (v < MIN_DAYS || v > MAX_DAYS) return fail(p, k, `date value ${v} is outside BigQuery's DATE range 0001-01-01..9999-12-31`);
  return formatDays(v);
};

export function timeConverter(logical: Extract<Logical, { kind: 'time' }>): Convert {
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
    if (typeof v !== 'number' || !Number.isInteger(v)) return fail(p, k, `expected an int (time-millis), got ${describeDecoded(v)}`);
    if (v < 0 || v >= MILLIS_PER_DAY) return fail(p, k, `time-millis value ${v} is outside ${range}`);
    return formatTimeOfDay(v * 1000);
  };
}

export function decimalConverter(logical: Extract<Logical, { kind: 'decimal' }>): Convert {
  const { precision, scale } = logical;
  // STRING columns hold any digits; NUMERIC/BIGNUMERIC(P,S) reject a value wider than P.
  const checkPrecision = decimalColumnType(precision, scale) !== 'STRING';
  return (v, p, k) => {
    if (!Buffer.isBuffer(v)) return fail(p, k, `expected decimal bytes, got ${describeDecoded(v)}`);
    const unscaled = unscaledOf(v);
    const negative = unscaled < 0n;
    const digits = (negative ? -unscaled : unscaled).toString();
    if (checkPrecision && digits.length > precision) {
      return fail(p, k, `decimal value ${decimalString(digits, negative, scale)} has more than the declared precision of ${precision} digits`);
    }
    return decimalString(digits, negative, scale);
  };
}
