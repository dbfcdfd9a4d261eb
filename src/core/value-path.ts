// Paths into a value being converted or validated, built as linked nodes on the way down and
// formatted only when something fails: the hot path allocates no strings.

/** One level of the value; `map` says its string children are map keys (written `["key"]`). */
export interface PathNode {
  readonly parent: PathNode | undefined;
  readonly key: string | number;
  readonly map?: boolean;
}

/** `request.headers[2]`, `labels["env"]`; the empty string for the record itself. */
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

/**
 * A short, bounded description of a value for an error message. `nullWord` is how null reads:
 * `null` for Avro values, `NULL` for BigQuery rows.
 */
export function describeValue(value: unknown, nullWord = 'null'): string {
  if (value === null) return nullWord;
  if (value === undefined) return 'undefined (missing)';
  if (typeof value === 'bigint') return `${value} (bigint)`;
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
  if (Buffer.isBuffer(value)) return `Buffer(${value.length})`;
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${String(value)} (${typeof value})`;
}
