import type { Row } from '../table-schema.js';
import type { Convert } from './conversion.js';
import type { PathNode } from './value-path.js';

export type RowBuilder = (input: Record<string, unknown>, here: PathNode | undefined) => Row;

/**
 * One record's row as a single object literal, field by field in schema order: V8 then creates
 * every row with its final shape at once, instead of growing an empty object one keyed store at a
 * time. Names are written as JSON string literals (no name can inject code), "__proto__" as a
 * computed key so that it is an own property, like every other field.
 */
export function rowBuilder(names: readonly string[], converters: readonly Convert[]): RowBuilder {
  const key = (name: string): string => (name === '__proto__' ? '["__proto__"]' : JSON.stringify(name));
  const params = converters.map((_, i) => `c${i}`);
  const body = names.map((name, i) => `${key(name)}: c${i}(input[${JSON.stringify(name)}], here, ${JSON.stringify(name)})`).join(',\n');
  const factory = new Function(...params, `return function buildRow(input, here) {\n  return {\n${body}\n  };\n};`) as (...c: Convert[]) => RowBuilder;
  return factory(...converters);
}
