/* Avro decimals: their two's-complement bytes, their text, and the BigQuery column that holds them. */

/** Big-endian two's complement -> BigInt. */
export function unscaledOf(buf: Buffer): bigint {
  const length = buf.length;
  if (length === 0) return 0n;
  if (length <= 6) return BigInt(buf.readIntBE(0, length));
  const unsigned = BigInt(`0x${buf.toString('hex')}`);
  return (buf[0] ?? 0) & 0x80 ? unsigned - (1n << BigInt(8 * length)) : unsigned;
}

export function decimalString(digits: string, negative: boolean, scale: number): string {
  const sign = negative ? '-' : '';
  if (scale === 0) return sign + digits;
  const padded = digits.length > scale ? digits : '0'.repeat(scale - digits.length + 1) + digits;
  const point = padded.length - scale;
  return `${sign}${padded.slice(0, point)}.${padded.slice(point)}`;
}

/** NUMERIC(P,S) needs S <= 9 and P - S <= 29; BIGNUMERIC(P,S) S <= 38 and P - S <= 38. */
export function decimalColumnType(precision: number, scale: number): 'NUMERIC' | 'BIGNUMERIC' | 'STRING' {
  if (scale <= 9 && precision - scale <= 29) return 'NUMERIC';
  if (scale <= 38 && precision - scale <= 38) return 'BIGNUMERIC';
  return 'STRING';
}
