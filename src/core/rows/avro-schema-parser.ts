import avro from 'avsc';
import type { AvroSchema } from '../avro-type.js';
import {
  type EnumNode,
  type FixedNode,
  type Logical,
  type NamedNode,
  type Node,
  type PrimitiveKind,
  type RecordNode,
  type UnionNode,
  branchKey,
  schemaError,
  shortName,
} from './avro-schema-nodes.js';

const PRIMITIVES: ReadonlySet<string> = new Set<PrimitiveKind>(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPrimitiveKind(name: string): name is PrimitiveKind {
  return PRIMITIVES.has(name);
}

/** Same qualification rules as avsc, so our names match the branch keys avsc decodes unions with. */
function qualify(name: string, namespace: string | undefined): string {
  if (name.includes('.')) return name.startsWith('.') ? name.slice(1) : name;
  return namespace ? `${namespace}.${name}` : name;
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Largest number of decimal digits a two's-complement fixed of this size can always hold. */
function maxDecimalDigits(size: number): number {
  return ((1n << BigInt(8 * size - 1)) - 1n).toString().length - 1;
}

/** Per the Avro spec, a logical type that does not fit its underlying type is ignored, not an error. */
function parseLogical(schema: Record<string, unknown>, underlying: PrimitiveKind | 'fixed', size: number): Logical | undefined {
  const name = schema.logicalType;
  switch (name) {
    case 'timestamp-millis':
    case 'timestamp-micros':
    case 'local-timestamp-millis':
    case 'local-timestamp-micros':
      return underlying === 'long' ? { kind: 'timestamp', name, local: name.startsWith('local-'), micros: name.endsWith('micros') } : undefined;
    case 'date':
      return underlying === 'int' ? { kind: 'date' } : undefined;
    case 'time-millis':
      return underlying === 'int' ? { kind: 'time', name, micros: false } : undefined;
    case 'time-micros':
      return underlying === 'long' ? { kind: 'time', name, micros: true } : undefined;
    case 'decimal': {
      if (underlying !== 'bytes' && underlying !== 'fixed') return undefined;
      const precision = schema.precision;
      const scale = schema.scale === undefined ? 0 : schema.scale;
      if (!isNonNegativeInteger(precision) || precision < 1 || !isNonNegativeInteger(scale) || scale > precision) return undefined;
      if (underlying === 'fixed' && (size < 1 || precision > maxDecimalDigits(size))) return undefined;
      return { kind: 'decimal', precision, scale };
    }
    default:
      return undefined;
  }
}

class SchemaParser {
  private readonly registry = new Map<string, NamedNode>();

  parse(schema: unknown, namespace: string | undefined): Node {
    if (typeof schema === 'string') return this.resolve(schema, namespace);
    if (Array.isArray(schema)) return this.parseUnion(schema, namespace);
    if (!isObject(schema)) throw schemaError(`invalid Avro schema element: ${JSON.stringify(schema)}`);
    const type = schema.type;
    if (typeof type !== 'string') throw schemaError(`invalid Avro schema: "type" must be a string in ${JSON.stringify(schema)}`);
    if (isPrimitiveKind(type)) return { kind: type, logical: parseLogical(schema, type, 0) };
    switch (type) {
      case 'record':
      case 'error':
        return this.parseRecord(schema, namespace);
      case 'enum': {
        const node: EnumNode = { kind: 'enum', fullName: this.nameOf(schema, namespace) };
        this.register(node);
        return node;
      }
      case 'fixed': {
        const size = schema.size;
        if (!isNonNegativeInteger(size)) throw schemaError(`fixed type has an invalid size: ${JSON.stringify(schema)}`);
        const node: FixedNode = { kind: 'fixed', fullName: this.nameOf(schema, namespace), size, logical: parseLogical(schema, 'fixed', size) };
        this.register(node);
        return node;
      }
      case 'array':
        return { kind: 'array', items: this.parse(schema.items, namespace) };
      case 'map':
        return { kind: 'map', values: this.parse(schema.values, namespace) };
      default:
        throw schemaError(`unknown Avro type "${type}"`);
    }
  }

  private resolve(name: string, namespace: string | undefined): Node {
    // avsc treats a primitive's name as global even when qualified; mirror it so lookups agree.
    const last = shortName(name);
    if (isPrimitiveKind(last)) return { kind: last, logical: undefined };
    const fullName = qualify(name, namespace);
    const node = this.registry.get(fullName);
    if (node === undefined) throw schemaError(`undefined Avro type name "${fullName}"`);
    return node;
  }

  private nameOf(schema: Record<string, unknown>, namespace: string | undefined): string {
    const name = schema.name;
    if (typeof name !== 'string' || name === '') throw schemaError(`named Avro type without a name: ${JSON.stringify(schema)}`);
    const own = schema.namespace;
    return qualify(name, own === undefined ? namespace : typeof own === 'string' ? own : undefined);
  }

  private register(node: NamedNode): void {
    if (isPrimitiveKind(shortName(node.fullName))) throw schemaError(`cannot redefine primitive type "${node.fullName}"`);
    if (this.registry.has(node.fullName)) throw schemaError(`duplicate Avro type name "${node.fullName}"`);
    this.registry.set(node.fullName, node);
  }

  private parseRecord(schema: Record<string, unknown>, namespace: string | undefined): RecordNode {
    const node: RecordNode = { kind: 'record', fullName: this.nameOf(schema, namespace), fields: [] };
    this.register(node);
    // Fields resolve names in the record's namespace: explicit attribute, else the one its full name implies.
    const own = schema.namespace;
    let inner = namespace;
    if (own !== undefined) inner = typeof own === 'string' ? own : undefined;
    else if (node.fullName.includes('.')) inner = node.fullName.slice(0, node.fullName.lastIndexOf('.'));
    const fields = schema.fields;
    if (!Array.isArray(fields)) throw schemaError(`record "${node.fullName}" has no fields array`);
    const seen = new Map<string, string>();
    for (const field of fields) {
      if (!isObject(field) || typeof field.name !== 'string' || field.name === '') {
        throw schemaError(`record "${node.fullName}" has an invalid field: ${JSON.stringify(field)}`);
      }
      // BigQuery column names are case-insensitive, so "id" and "ID" cannot both be columns.
      const lower = field.name.toLowerCase();
      const clash = seen.get(lower);
      if (clash !== undefined) {
        throw schemaError(`record "${node.fullName}" has fields "${clash}" and "${field.name}", which BigQuery treats as the same column`);
      }
      seen.set(lower, field.name);
      node.fields.push({ name: field.name, type: this.parse(field.type, inner) });
    }
    return node;
  }

  private parseUnion(schema: unknown[], namespace: string | undefined): UnionNode {
    const branches = schema.map((branch) => this.parse(branch, namespace));
    const keys = new Set<string>();
    for (const branch of branches) {
      if (branch.kind === 'union') throw schemaError('a union cannot directly contain another union');
      const key = branchKey(branch);
      if (keys.has(key)) throw schemaError(`union has more than one "${key}" branch`);
      keys.add(key);
    }
    return { kind: 'union', branches };
  }
}

export function parseRoot(schema: AvroSchema): RecordNode {
  const json: unknown = avro.Type.isType(schema) ? (schema as avro.Type).schema({ exportAttrs: true }) : schema;
  const root = new SchemaParser().parse(json, undefined);
  if (root.kind !== 'record') throw schemaError(`the top-level Avro schema must be a record, got ${root.kind}`);
  return root;
}
