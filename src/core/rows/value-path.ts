/*
 * Naming the value that failed, for the row converter and the row validator alike. Paths are linked
 * nodes built while walking a value and formatted only when an error or a dropped field needs one.
 */

/** One level of the value being walked; `map` says its string children are map keys. */
export interface PathNode {
  readonly parent: PathNode | undefined;
  readonly key: string | number;
  /** Absent means false: the validator's rows have no maps, and its nodes stay two fields. */
  readonly map?: boolean;
}

/** `a.b[2]["key"].c`: record fields dotted, array indexes and map keys in brackets, the root unnamed. */
export function formatPath(parent: PathNode | undefined, key: string | number): string {
  const keys: (string | number)[] = [key];
  const inMap: boolean[] = [parent?.map ?? false];
  for (let node = parent; node !== undefined; node = node.parent) {
    keys.push(node.key);
    inMap.push(node.parent?.map ?? false);
  }
  let out = '';
  for (let i = keys.length - 1; i >= 0; i--) {
    const k = keys[i] ?? '';
    if (typeof k === 'number') out += `[${k}]`;
    else if (inMap[i] === true) out += `[${JSON.stringify(k)}]`;
    else if (k !== '') out += out === '' ? k : `.${k}`;
  }
  return out;
}

/** A string as an error message quotes it: JSON-escaped, cut after 64 characters. */
function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
}

/** A decoded Avro value in a conversion error (avsc's longs may be bigints, bytes are Buffers). */
export function describeDecoded(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined (missing)';
  if (typeof value === 'bigint') return `${value} (bigint)`;
  if (typeof value === 'string') return quote(value);
  if (Buffer.isBuffer(value)) return `Buffer(${value.length})`;
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${String(value)} (${typeof value})`;
}

/** A JSON row value in a validation error, in BigQuery's words (NULL). */
export function describeRowValue(value: unknown): string {
  if (value === null) return 'NULL';
  if (typeof value === 'string') return quote(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' || typeof value === 'boolean') return `${String(value)} (${typeof value})`;
  return typeof value;
}
