import { TributaryError } from '../../errors.js';
import type { AvroSchema } from '../avro-type.js';
import type { Row, RowValue } from '../table-schema.js';
import {
  type ArrayNode,
  branchKey,
  type FixedNode,
  type MapNode,
  modeOf,
  type Node,
  type PrimitiveNode,
  type RecordNode,
  type UnionNode,
  unionFieldNames,
} from './avro-schema-nodes.js';
import { parseRoot } from './avro-schema-parser.js';
import { type Convert, fail } from './conversion.js';
import { convertDate, decimalConverter, timeConverter, timestampConverter } from './logical-converters.js';
import { type RowBuilder, rowBuilder } from './row-builder.js';
import { convertBoolean, convertBytes, convertFloat, convertInt, convertLong, convertNull, convertString } from './scalar-converters.js';
import { describeDecoded, type PathNode } from './value-path.js';

/*
 * Avro value -> BigQuery JSON row. docs/type-mapping.md is the user-facing contract; keep them in step.
 *
 * The schema is parsed once into a node graph (named types resolved, logical types validated), then
 * compiled into one closure per node. Records register their closure before their fields compile, so
 * a recursive reference finds the closure instead of recursing forever.
 */

class Compiler {
  private readonly cache = new Map<Node, Convert>();

  /**
   * @param tracked whether records, arrays and maps pass their path down to name a failing field.
   *   Untracked converters allocate no path per value; they are the ones that run, and a failure is
   *   converted once more by tracked ones only to be described.
   */
  constructor(private readonly tracked: boolean) {}

  compile(node: Node): Convert {
    const cached = this.cache.get(node);
    if (cached !== undefined) return cached;
    const convert = this.build(node);
    this.cache.set(node, convert);
    return convert;
  }

  private build(node: Node): Convert {
    switch (node.kind) {
      case 'record':
        return this.record(node);
      case 'array':
        return this.array(node);
      case 'map':
        return this.map(node);
      case 'union':
        return this.union(node);
      case 'enum':
        return convertString;
      default:
        return this.scalar(node);
    }
  }

  private scalar(node: PrimitiveNode | FixedNode): Convert {
    const logical = node.logical;
    if (logical !== undefined) {
      switch (logical.kind) {
        case 'timestamp':
          return timestampConverter(logical);
        case 'date':
          return convertDate;
        case 'time':
          return timeConverter(logical);
        case 'decimal':
          return decimalConverter(logical);
      }
    }
    switch (node.kind) {
      case 'null':
        return convertNull;
      case 'boolean':
        return convertBoolean;
      case 'int':
        return convertInt;
      case 'long':
        return convertLong;
      case 'float':
      case 'double':
        return convertFloat;
      case 'bytes':
      case 'fixed':
        return convertBytes;
      case 'string':
        return convertString;
    }
  }

  private record(node: RecordNode): Convert {
    const tracked = this.tracked;
    const converters: Convert[] = [];
    let build: RowBuilder | undefined;
    const convert: Convert = (v, p, k) => {
      if (typeof v !== 'object' || v === null) return fail(p, k, `expected a record, got ${describeDecoded(v)}`);
      const here: PathNode | undefined = tracked ? { parent: p, key: k, map: false } : undefined;
      return (build as RowBuilder)(v as Record<string, unknown>, here);
    };
    // Registered before the fields compile: a recursive field type then finds this closure.
    this.cache.set(node, convert);
    for (const field of node.fields) converters.push(this.compile(field.type));
    build = rowBuilder(
      node.fields.map((f) => f.name),
      converters,
    );
    return convert;
  }

  private array(node: ArrayNode): Convert {
    const tracked = this.tracked;
    const item = this.compile(node.items);
    // BigQuery has no arrays of arrays: a repeated item is wrapped in a RECORD with one `value` field.
    const wrap = modeOf(node.items) === 'REPEATED';
    return (v, p, k) => {
      if (!Array.isArray(v)) return fail(p, k, `expected an array, got ${describeDecoded(v)}`);
      const here: PathNode | undefined = tracked ? { parent: p, key: k, map: false } : undefined;
      const count = v.length;
      const out: RowValue[] = [];
      for (let i = 0; i < count; i++) {
        const converted = item(v[i], here, i);
        if (converted === null) return fail(here, i, 'arrays cannot hold NULL (BigQuery REPEATED fields have no NULL elements)');
        out.push(wrap ? { value: converted } : converted);
      }
      return out;
    };
  }

  private map(node: MapNode): Convert {
    const tracked = this.tracked;
    const value = this.compile(node.values);
    return (v, p, k) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(p, k, `expected a map, got ${describeDecoded(v)}`);
      const input = v as Record<string, unknown>;
      const here: PathNode | undefined = tracked ? { parent: p, key: k, map: true } : undefined;
      const out: RowValue[] = [];
      for (const key in input) out.push({ key, value: value(input[key], here, key) });
      return out;
    };
  }

  private union(node: UnionNode): Convert {
    const tracked = this.tracked;
    const nonNull = node.branches.filter((b) => b.kind !== 'null');
    const hasNull = nonNull.length !== node.branches.length;
    if (nonNull.length === 0) return convertNull;
    const keys = nonNull.map(branchKey);
    // avsc's branch objects inherit methods (unwrap, unwrapped, Object.prototype's): for a branch with
    // such a name, only an own property means "this branch".
    const guarded = keys.some((key) => key in Object.prototype || key === 'unwrap' || key === 'unwrapped');
    const read = (input: Record<string, unknown>, key: string): unknown => (guarded && !Object.hasOwn(input, key) ? undefined : input[key]);
    const expected = keys.map((key) => JSON.stringify(key)).join(', ');
    const notNull = (p: PathNode | undefined, k: string | number): never => fail(p, k, `null is not a branch of the union [${expected}]`);
    const noBranch = (v: unknown, p: PathNode | undefined, k: string | number): never =>
      fail(p, k, `expected a wrapped union value with one of the keys ${expected}, got ${describeDecoded(v)}`);
    const only = nonNull.length === 1 ? nonNull[0] : undefined;

    if (only !== undefined) {
      const key = keys[0] as string;
      const inner = this.compile(only);
      const empty = modeOf(only) === 'REPEATED';
      return (v, p, k) => {
        if (v === null) return hasNull ? (empty ? [] : null) : notNull(p, k);
        if (typeof v !== 'object') return noBranch(v, p, k);
        const branch = read(v as Record<string, unknown>, key);
        return branch === undefined ? noBranch(v, p, k) : inner(branch, p, k);
      };
    }

    const fields = unionFieldNames(nonNull);
    const converters = nonNull.map((b) => this.compile(b));
    const repeated = nonNull.map((b) => modeOf(b) === 'REPEATED');
    const count = keys.length;
    return (v, p, k) => {
      if (v === null) return hasNull ? null : notNull(p, k);
      if (typeof v !== 'object') return noBranch(v, p, k);
      const input = v as Record<string, unknown>;
      for (let i = 0; i < count; i++) {
        const branch = read(input, keys[i] as string);
        if (branch === undefined) continue;
        const here: PathNode | undefined = tracked ? { parent: p, key: k, map: false } : undefined;
        const out: Row = {};
        for (let j = 0; j < count; j++) {
          const field = fields[j] as string;
          out[field] = j === i ? (converters[j] as Convert)(branch, here, field) : repeated[j] ? [] : null;
        }
        return out;
      }
      return noBranch(v, p, k);
    };
  }
}

/**
 * Compiles the conversion of decoded Avro values (as createAvroType decodes them) into BigQuery JSON
 * rows. Compile once per schema and reuse. The returned function throws CONVERSION_FAILED, naming
 * the field path, for a value BigQuery cannot hold.
 */
export function createRowConverter(schema: AvroSchema): (value: unknown) => Row {
  const root = parseRoot(schema);
  const convert = new Compiler(false).compile(root);
  let described: Convert | undefined;
  return (value) => {
    try {
      return convert(value, undefined, '') as Row;
    } catch (err) {
      if (!(err instanceof TributaryError)) throw err;
      // The same conversion with paths, so the error names the field; it fails the same way.
      described ??= new Compiler(true).compile(root);
      return described(value, undefined, '') as Row;
    }
  };
}
