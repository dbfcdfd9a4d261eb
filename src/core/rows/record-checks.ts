import type { TableField } from '../table-schema.js';
import { type Check, type Context, Invalid, invalid } from './row-check.js';
import { scalarCheck } from './scalar-checks.js';
import { describeRowValue, formatPath, type PathNode } from './value-path.js';

/* The row validator's checks of RECORD columns and of each column's mode (REQUIRED, REPEATED, NULLABLE). */

interface Column {
  name: string;
  required: boolean;
  check: Check;
  /** The visit stamp of the record visit that last saw this column: detects case-variant duplicates. */
  stamp: number;
}

export type RecordCheck = (value: Record<string, unknown>, here: PathNode, ctx: Context) => Record<string, unknown>;

const DROP = Symbol('drop');

export function compileRecord(fields: readonly TableField[]): RecordCheck {
  const exact = new Map<string, Column>();
  const lower = new Map<string, Column>();
  const required: Column[] = [];
  for (const field of fields) {
    const column: Column = { name: field.name, required: field.mode === 'REQUIRED', check: compileColumn(field), stamp: 0 };
    exact.set(field.name, column);
    lower.set(field.name.toLowerCase(), column);
    if (column.required) required.push(column);
  }
  const requiredCount = required.length;
  let visits = 0;

  return (input, here, ctx) => {
    const stamp = ++visits;
    let seenRequired = 0;
    let changes: Map<string, unknown> | undefined;
    for (const key in input) {
      const value = input[key];
      const column = exact.get(key) ?? lower.get(key.toLowerCase());
      if (column === undefined) {
        // JSON.stringify omits undefined, so such a field never reaches BigQuery.
        if (value === undefined) continue;
        if (ctx.unknownFields === 'dead-letter') {
          throw new Invalid('UNKNOWN_FIELD', here, key, ' is not in table schema (unknownFields: dead-letter)');
        }
        (ctx.dropped ??= []).push(formatPath(here, key));
        (changes ??= new Map()).set(key, DROP);
        continue;
      }
      if (column.stamp === stamp) {
        invalid(here, key, `: duplicates column "${column.name}" (BigQuery column names are case-insensitive)`);
      }
      column.stamp = stamp;
      if (column.required) seenRequired++;
      const checked = column.check(value, here, key, ctx);
      if (checked !== value) (changes ??= new Map()).set(key, checked);
    }
    if (seenRequired !== requiredCount) {
      // A required column seen with an undefined or null value has already failed its own check.
      for (const column of required) if (column.stamp !== stamp) invalid(here, column.name, ' is REQUIRED but missing');
    }
    if (changes === undefined) return input;
    const out: Record<string, unknown> = {};
    for (const key in input) {
      const change = changes.has(key) ? changes.get(key) : input[key];
      if (change !== DROP) out[key] = change;
    }
    return out;
  };
}

function compileColumn(field: TableField): Check {
  const type = field.type.toUpperCase();
  let base: Check;
  if (type === 'RECORD' || type === 'STRUCT') {
    const record = compileRecord(field.fields ?? []);
    base = (v, p, k, ctx) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return invalid(p, k, `: ${type} needs an object, got ${describeRowValue(v)}`);
      return record(v as Record<string, unknown>, { parent: p, key: k }, ctx);
    };
  } else {
    base = scalarCheck(type, field);
  }

  switch (field.mode) {
    case 'REQUIRED':
      return (v, p, k, ctx) => {
        if (v === null) return invalid(p, k, ' is REQUIRED but the value is NULL');
        if (v === undefined) return invalid(p, k, ' is REQUIRED but missing');
        return base(v, p, k, ctx);
      };
    case 'REPEATED':
      // A NULL or missing repeated field is written as an empty array.
      return (v, p, k, ctx) => {
        if (v === null || v === undefined) return v;
        if (!Array.isArray(v)) return invalid(p, k, `: REPEATED ${type} needs an array, got ${describeRowValue(v)}`);
        const here: PathNode = { parent: p, key: k };
        let copy: unknown[] | undefined;
        const length = v.length;
        for (let i = 0; i < length; i++) {
          const item: unknown = v[i];
          if (item === null || item === undefined) return invalid(here, i, ': arrays cannot hold NULL');
          const checked = base(item, here, i, ctx);
          if (checked !== item) (copy ??= v.slice())[i] = checked;
        }
        return copy ?? v;
      };
    default:
      return (v, p, k, ctx) => (v === null || v === undefined ? v : base(v, p, k, ctx));
  }
}
