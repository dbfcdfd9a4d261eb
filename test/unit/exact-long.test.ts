import avro from 'avsc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createAvroType } from '../../src/core/avro-type.js';

const MIN_LONG = -(2n ** 63n);
const MAX_LONG = 2n ** 63n - 1n;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Zigzag varint of a long, written independently of avsc and of the code under test. */
function varint(value: bigint, padding = 0): Buffer {
  let n = value >= 0n ? value * 2n : -value * 2n - 1n;
  const bytes: number[] = [];
  do {
    const low = Number(n & 0x7fn);
    n >>= 7n;
    bytes.push(n > 0n || padding > 0 ? low | 0x80 : low);
  } while (n > 0n);
  // Non-canonical: the same value with extra continuation bytes of zero bits.
  for (let i = 0; i < padding; i++) bytes.push(i === padding - 1 ? 0 : 0x80);
  return Buffer.from(bytes);
}

const record = createAvroType({ type: 'record', name: 'L', fields: [{ name: 'n', type: 'long' }] });

function decodeLong(bytes: Buffer): unknown {
  return (record.fromBuffer(bytes) as { n: unknown }).n;
}

/** The promised shape: a number exactly when the value is a safe integer, a bigint beyond. */
function expectExact(decoded: unknown, value: bigint): void {
  if (value >= -SAFE && value <= SAFE) {
    expect(decoded).toBe(Number(value));
  } else {
    expect(decoded).toBe(value);
  }
}

describe('exact long decoding', () => {
  const edges = [
    0n,
    1n,
    -1n,
    63n,
    -64n,
    64n,
    2n ** 24n,
    2n ** 47n,
    -(2n ** 48n),
    2n ** 48n,
    // The eighth varint byte: below 2^52 of magnitude (zigzag below 2^53) it stays a number.
    2n ** 52n - 1n,
    -(2n ** 52n),
    2n ** 52n,
    SAFE,
    -SAFE,
    SAFE + 1n,
    -SAFE - 1n,
    // A timestamp in microseconds of this century, and the TIMESTAMP bounds.
    1_796_000_000_000_000n,
    253_402_300_799_999_999n,
    -62_135_596_800_000_000n,
    MAX_LONG,
    MIN_LONG,
  ];

  it.each(edges.map((v) => [v]))('%s decodes exactly, as a number only when safe', (value) => {
    expectExact(decodeLong(varint(value)), value);
    // and what this type encodes is the canonical varint
    expect(record.toBuffer({ n: value })).toEqual(varint(value));
  });

  it('any long, canonical or padded with zero continuation bytes, decodes exactly', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: MIN_LONG, max: MAX_LONG }), fc.nat({ max: 2 }), (value, padding) => {
        const bytes = varint(value, padding);
        if (bytes.length > 10) return; // beyond the 10 bytes a long may take
        expectExact(decodeLong(bytes), value);
      }),
      { numRuns: 5_000 },
    );
  });

  it('a truncated varint fails to decode instead of yielding a value', () => {
    for (const value of [300n, 2n ** 40n, 2n ** 60n]) {
      const bytes = varint(value);
      for (let cut = 1; cut < bytes.length; cut++) {
        expect(() => record.fromBuffer(bytes.subarray(0, cut))).toThrow(/truncated/);
      }
    }
  });

  it('agrees with avsc reading the same bytes into a BigInt, longs inside records, arrays and unions', () => {
    const schema: avro.Schema = {
      type: 'record',
      name: 'R',
      fields: [
        { name: 'a', type: 'long' },
        { name: 'b', type: { type: 'array', items: 'long' } },
        { name: 'c', type: ['null', 'long'] },
      ],
    };
    const ours = createAvroType(schema);
    const reference = avro.Type.forSchema(schema, {
      wrapUnions: true,
      registry: {
        long: avro.types.LongType.__with({
          fromBuffer: (b: Buffer) => b.readBigInt64LE(),
          toBuffer: () => Buffer.alloc(8),
          fromJSON: BigInt,
          toJSON: String,
          isValid: () => true,
          compare: () => 0,
        }),
      },
    });
    const long = fc.bigInt({ min: MIN_LONG, max: MAX_LONG });
    fc.assert(
      fc.property(long, fc.array(long, { maxLength: 5 }), fc.option(long), (a, b, c) => {
        const bytes = Buffer.concat([
          varint(a),
          b.length > 0 ? Buffer.concat([varint(BigInt(b.length)), ...b.map((x) => varint(x))]) : Buffer.alloc(0),
          varint(0n),
          c === null ? varint(0n) : Buffer.concat([varint(1n), varint(c)]),
        ]);
        const got = ours.fromBuffer(bytes) as { a: unknown; b: unknown[]; c: { long: unknown } | null };
        const want = reference.fromBuffer(bytes) as { a: bigint; b: bigint[]; c: { long: bigint } | null };
        expect(BigInt(got.a as number | bigint)).toBe(want.a);
        expect(got.b.map((x) => BigInt(x as number | bigint))).toEqual(want.b);
        expect(got.c === null ? null : BigInt(got.c.long as number | bigint)).toBe(want.c === null ? null : want.c.long);
      }),
      { numRuns: 2_000 },
    );
  });
});
