import { TributaryError } from '../../errors.js';

/*
 * The parsed form of an Avro schema that the row converter and the BigQuery field mapping both walk:
 * named types resolved, logical types validated. Parsed by avro-schema-parser.ts.
 */

export type Mode = 'NULLABLE' | 'REQUIRED' | 'REPEATED';

export type Logical =
  | { kind: 'timestamp'; name: string; local: boolean; micros: boolean }
  | { kind: 'date' }
  | { kind: 'time'; name: string; micros: boolean }
  | { kind: 'decimal'; precision: number; scale: number };

export type PrimitiveKind = 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'bytes' | 'string';

export interface PrimitiveNode {
  kind: PrimitiveKind;
  logical: Logical | undefined;
}
export interface FixedNode {
  kind: 'fixed';
  fullName: string;
  size: number;
  logical: Logical | undefined;
}
export interface EnumNode {
  kind: 'enum';
  fullName: string;
}
export interface RecordNode {
  kind: 'record';
  fullName: string;
  /** Filled after the node is registered, so recursive references can point at it. */
  fields: { name: string; type: Node }[];
}
export interface ArrayNode {
  kind: 'array';
  items: Node;
}
export interface MapNode {
  kind: 'map';
  values: Node;
}
export interface UnionNode {
  kind: 'union';
  branches: Node[];
}
export type Node = PrimitiveNode | FixedNode | EnumNode | RecordNode | ArrayNode | MapNode | UnionNode;
export type NamedNode = FixedNode | EnumNode | RecordNode;

export function schemaError(message: string): TributaryError {
  return new TributaryError('SCHEMA_INVALID', message);
}

export function shortName(fullName: string): string {
  return fullName.slice(fullName.lastIndexOf('.') + 1);
}

export function isNamed(node: Node): node is NamedNode {
  return node.kind === 'record' || node.kind === 'enum' || node.kind === 'fixed';
}

/** The key avsc uses for this branch of a wrapped union. */
export function branchKey(node: Node): string {
  return isNamed(node) ? node.fullName : node.kind;
}

export function modeOf(node: Node): Mode {
  switch (node.kind) {
    case 'array':
    case 'map':
      return 'REPEATED';
    case 'null':
      return 'NULLABLE';
    case 'union': {
      const nonNull = node.branches.filter((b) => b.kind !== 'null');
      const hasNull = nonNull.length !== node.branches.length;
      const only = nonNull.length === 1 ? nonNull[0] : undefined;
      if (only === undefined) return nonNull.length === 0 || hasNull ? 'NULLABLE' : 'REQUIRED';
      const inner = modeOf(only);
      // BigQuery has no NULL repeated field, so a nullable array stays REPEATED (null becomes []).
      return inner === 'REPEATED' ? 'REPEATED' : hasNull ? 'NULLABLE' : inner;
    }
    default:
      return 'REQUIRED';
  }
}

/** Field names of a multi-branch union's RECORD, in branch order (null excluded). */
export function unionFieldNames(branches: Node[]): string[] {
  const short = branches.map((b) => (isNamed(b) ? shortName(b.fullName) : b.kind));
  const counts = new Map<string, number>();
  for (const name of short) counts.set(name.toLowerCase(), (counts.get(name.toLowerCase()) ?? 0) + 1);
  const names = branches.map((b, i) => {
    const name = short[i] ?? '';
    return (counts.get(name.toLowerCase()) ?? 0) > 1 ? branchKey(b).replace(/\./g, '_') : name;
  });
  const unique = new Set(names.map((n) => n.toLowerCase()));
  if (unique.size !== names.length) throw schemaError(`union branches ${JSON.stringify(branches.map(branchKey))} cannot be given distinct column names`);
  return names;
}
