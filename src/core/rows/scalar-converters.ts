import { MAX_SAFE_BIG, MIN_SAFE_BIG } from './calendar-format.js';
import { type Convert, fail } from './conversion.js';
import { describeDecoded, type PathNode } from './value-path.js';

/* Conversions of Avro primitives, and the exact handling of longs beyond 2^53. */

export const convertNull: Convert = () => null;

export const convertBoolean: Convert = (v, p, k) => (typeof v === 'boolean' ? v : fail(p, k, `expected a boolean, got ${describeDecoded(v)}`));

export const convertInt: Convert = (v, p, k) => (typeof v === 'number' ? v : fail(p, k, `expected an int, got ${describeDecoded(v)}`));

export const convertLong: Convert = (v, p, k) => {
  if (typeof v === 'bigint') return v >= MIN_SAFE_BIG && v <= MAX_SAFE_BIG ? Number(v) : v.toString();
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  return fail(p, k, `expected a long, got ${describeDecoded(v)}`);
};

export const convertFloat: Convert = (v, p, k) => {
  if (typeof v !== 'number') return fail(p, k, `expected a number, got ${describeDecoded(v)}`);
  if (Number.isFinite(v)) return v;
  // JSON has no NaN/Infinity; BigQuery accepts these strings for FLOAT64.
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
};

export const convertBytes: Convert = (v, p, k) => (Buffer.isBuffer(v) ? v.toString('base64') : fail(p, k, `expected bytes, got ${describeDecoded(v)}`));

export const convertString: Convert = (v, p, k) => (typeof v === 'string' ? v : fail(p, k, `expected a string, got ${describeDecoded(v)}`));

/** A long as an exact bigint, whichever way avsc was configured to decode it. */
export function longOf(v: unknown, p: PathNode | undefined, k: string | number): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  return fail(p, k, `expected a long, got ${describeDecoded(v)}`);
}
