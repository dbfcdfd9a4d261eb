import type { RowValue } from './table-schema.js';

/*
 * The UTF-8 size of a row as JSON, without building the JSON: every row is serialized by the
 * BigQuery client when its batch is sent, and serializing it a second time just to size the batch
 * cost as much as decoding it. Exact, so batch limits and billing estimates are unchanged.
 */

/** Characters JSON.stringify escapes, and every non-ASCII one: those strings take the slow path. */
const NOT_PLAIN = /[\u0000-\u001f"\\\u0080-\uffff]/;

function stringBytes(s: string): number {
  return NOT_PLAIN.test(s) ? Buffer.byteLength(JSON.stringify(s)) : s.length + 2;
}

function numberBytes(n: number): number {
  if (!Number.isFinite(n)) return 4; // null
  if (Number.isSafeInteger(n)) {
    let digits = n < 0 ? 2 : 1;
    for (let x = Math.abs(n); x >= 10; x = Math.floor(x / 10)) digits++;
    return digits;
  }
  return String(n).length;
}

/** Bytes of `Buffer.byteLength(JSON.stringify(value))` for a JSON-ready row value. */
export function jsonByteLength(value: RowValue | undefined): number {
  switch (typeof value) {
    case 'string':
      return stringBytes(value);
    case 'number':
      return numberBytes(value);
    case 'boolean':
      return value ? 4 : 5;
    case 'object': {
      if (value === null) return 4;
      if (Array.isArray(value)) {
        let bytes = 2 + Math.max(0, value.length - 1);
        for (const item of value) bytes += item === undefined ? 4 : jsonByteLength(item);
        return bytes;
      }
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return Buffer.byteLength(JSON.stringify(value));
      let bytes = 2;
      let first = true;
      for (const key in value) {
        if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
        const item = value[key];
        if (item === undefined) continue;
        bytes += (first ? 0 : 1) + stringBytes(key) + 1 + jsonByteLength(item);
        first = false;
      }
      return bytes;
    }
    default:
      // Not a row value (undefined at the top level, a bigint): let JSON.stringify decide.
      return Buffer.byteLength(JSON.stringify(value) ?? '');
  }
}
