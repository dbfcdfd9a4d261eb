/** Zig-zag varint of a non-negative count, as Avro writes block counts and lengths. */
export function varint(n: number): Buffer {
  const bytes: number[] = [];
  let z = BigInt(n) * 2n;
  do {
    let b = Number(z & 0x7fn);
    z >>= 7n;
    if (z > 0n) b |= 0x80;
    bytes.push(b);
  } while (z > 0n);
  return Buffer.from(bytes);
}
