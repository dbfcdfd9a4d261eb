/* Text forms BigQuery accepts for INT64, NUMERIC/FLOAT64 and BYTES values, checked without a regex. */

const INT64_MAX = 9_223_372_036_854_775_807n;
const INT64_MIN = -9_223_372_036_854_775_808n;

export function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

export function isInt64String(s: string): boolean {
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
export function decimalDigits(s: string): { integer: number; fraction: number } | undefined {
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

export const FLOAT_WORDS: ReadonlySet<string> = new Set(['nan', 'inf', '+inf', '-inf', 'infinity', '+infinity', '-infinity']);

const BASE64: Uint8Array = (() => {
  const table = new Uint8Array(128);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = 1;
  return table;
})();

/** Standard alphabet; padding optional but only at the end. */
export function isBase64(s: string): boolean {
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
