import type { TableField } from '../table-schema.js';
import { checkDate, checkDatetime, checkTime, checkTimestampString, type DateCheck, END_SECONDS, MIN_SECONDS, RANGE } from './date-time-formats.js';
import { type Check, invalid } from './row-check.js';
import { decimalDigits, FLOAT_WORDS, isBase64, isInt64String } from './scalar-formats.js';
import { describeRowValue } from './value-path.js';

/* The row validator's checks of scalar columns, by column type. */

function int64Check(type: string): Check {
  return (v, p, k) => {
    if (typeof v === 'number' ? Number.isSafeInteger(v) : typeof v === 'string' && isInt64String(v)) return v;
    return invalid(p, k, `: ${type} needs a safe integer number or an integer string within the INT64 range, got ${describeRowValue(v)}`);
  };
}

function floatCheck(type: string): Check {
  return (v, p, k) => {
    if (typeof v === 'number') {
      // JSON.stringify would turn these into null.
      return Number.isFinite(v) ? v : invalid(p, k, `: ${type} value ${String(v)} must be sent as the string "${String(v)}"`);
    }
    if (typeof v === 'string' && (decimalDigits(v) !== undefined || FLOAT_WORDS.has(v.toLowerCase()))) return v;
    return invalid(p, k, `: ${type} needs a number, a numeric string, or "NaN"/"Infinity"/"-Infinity", got ${describeRowValue(v)}`);
  };
}

function decimalCheck(type: string, maxInteger: number, maxFraction: number): Check {
  const limits = `at most ${maxInteger} integer and ${maxFraction} fraction digits`;
  return (v, p, k) => {
    let digits: { integer: number; fraction: number } | undefined;
    if (typeof v === 'number') digits = Number.isFinite(v) ? decimalDigits(String(v)) : undefined;
    else if (typeof v === 'string') digits = decimalDigits(v);
    else return invalid(p, k, `: ${type} needs a number or a decimal string, got ${describeRowValue(v)}`);
    if (digits === undefined) return invalid(p, k, `: ${type} needs a decimal number, got ${describeRowValue(v)}`);
    if (digits.integer > maxInteger || digits.fraction > maxFraction) {
      return invalid(
        p,
        k,
        `: ${type} value ${describeRowValue(v)} has ${digits.integer} integer and ${digits.fraction} fraction digits; ${type} holds ${limits}`,
      );
    }
    return v;
  };
}

function stringFormatCheck(type: string, format: (s: string) => DateCheck): Check {
  return (v, p, k) => {
    if (typeof v !== 'string') return invalid(p, k, `: ${type} needs a string, got ${describeRowValue(v)}`);
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
  return (value, p, k) => (typeof value === v ? value : invalid(p, k, `: ${type} needs a ${v}, got ${describeRowValue(value)}`));
}

const anything: Check = (v) => v;

const bytesCheck: Check = (v, p, k) => (typeof v === 'string' && isBase64(v) ? v : invalid(p, k, `: BYTES needs a base64 string, got ${describeRowValue(v)}`));

export function scalarCheck(type: string, field: TableField): Check {
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
export function integerDigits(field: TableField, fallback: number): number {
  if (field.precision === undefined) return fallback;
  const allowed = Number(field.precision) - Number(field.scale ?? 0);
  return Number.isInteger(allowed) && allowed >= 0 ? Math.min(allowed, fallback) : fallback;
}
