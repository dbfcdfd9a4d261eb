import type { AvroSchema } from '../avro-type.js';
import type { TableField } from '../table-schema.js';
import { decimalColumnType } from './avro-decimal.js';
import { type FixedNode, type Mode, type Node, type PrimitiveNode, type RecordNode, modeOf, schemaError, unionFieldNames } from './avro-schema-nodes.js';
import { parseRoot } from './avro-schema-parser.js';

/* Avro schema -> the BigQuery table schema the row converter's rows fit (docs/type-mapping.md). */

/** BigQuery's documented limit on nested RECORD levels. */
const MAX_RECORD_DEPTH = 15;

interface ColumnSpec {
  type: string;
  mode: Mode;
  fields?: TableField[];
  precision?: string;
  scale?: string;
}

function scalarType(node: PrimitiveNode | FixedNode): ColumnSpec {
  const logical = node.logical;
  if (logical !== undefined) {
    switch (logical.kind) {
      case 'timestamp':
        return { type: logical.local ? 'DATETIME' : 'TIMESTAMP', mode: 'REQUIRED' };
      case 'date':
        return { type: 'DATE', mode: 'REQUIRED' };
      case 'time':
        return { type: 'TIME', mode: 'REQUIRED' };
      case 'decimal': {
        const type = decimalColumnType(logical.precision, logical.scale);
        return type === 'STRING' ? { type, mode: 'REQUIRED' } : { type, mode: 'REQUIRED', precision: String(logical.precision), scale: String(logical.scale) };
      }
    }
  }
  switch (node.kind) {
    case 'null':
      return { type: 'STRING', mode: 'NULLABLE' };
    case 'boolean':
      return { type: 'BOOL', mode: 'REQUIRED' };
    case 'int':
    case 'long':
      return { type: 'INT64', mode: 'REQUIRED' };
    case 'float':
    case 'double':
      return { type: 'FLOAT64', mode: 'REQUIRED' };
    case 'bytes':
    case 'fixed':
      return { type: 'BYTES', mode: 'REQUIRED' };
    case 'string':
      return { type: 'STRING', mode: 'REQUIRED' };
  }
}

class FieldBuilder {
  /** Records being expanded, to name the culprit when a recursive schema hits the depth limit. */
  private readonly expanding: RecordNode[] = [];

  fields(node: RecordNode, depth: number, path: string): TableField[] {
    this.expanding.push(node);
    const out = node.fields.map((f) => this.column(f.name, f.type, depth, path === '' ? f.name : `${path}.${f.name}`));
    this.expanding.pop();
    return out;
  }

  private column(name: string, node: Node, depth: number, path: string): TableField {
    const spec = this.spec(node, depth, path);
    const field: TableField = { name, type: spec.type, mode: spec.mode };
    if (spec.fields !== undefined) field.fields = spec.fields;
    if (spec.precision !== undefined) field.precision = spec.precision;
    if (spec.scale !== undefined) field.scale = spec.scale;
    return field;
  }

  /** `depth` is the number of RECORD levels around this column. */
  private spec(node: Node, depth: number, path: string): ColumnSpec {
    switch (node.kind) {
      case 'enum':
        return { type: 'STRING', mode: 'REQUIRED' };
      case 'record': {
        const level = this.enter(depth, path, node);
        return { type: 'RECORD', mode: 'REQUIRED', fields: this.fields(node, level, path) };
      }
      case 'array': {
        if (modeOf(node.items) !== 'REPEATED') return { ...this.spec(node.items, depth, path), mode: 'REPEATED' };
        const level = this.enter(depth, path, undefined);
        return { type: 'RECORD', mode: 'REPEATED', fields: [this.column('value', node.items, level, `${path}.value`)] };
      }
      case 'map': {
        const level = this.enter(depth, path, undefined);
        return {
          type: 'RECORD',
          mode: 'REPEATED',
          fields: [{ name: 'key', type: 'STRING', mode: 'REQUIRED' }, this.column('value', node.values, level, `${path}.value`)],
        };
      }
      case 'union': {
        const nonNull = node.branches.filter((b) => b.kind !== 'null');
        const mode = modeOf(node);
        const only = nonNull.length === 1 ? nonNull[0] : undefined;
        if (nonNull.length === 0) return { type: 'STRING', mode: 'NULLABLE' };
        if (only !== undefined) return { ...this.spec(only, depth, path), mode };
        const level = this.enter(depth, path, undefined);
        const names = unionFieldNames(nonNull);
        const fields = nonNull.map((branch, i) => {
          const name = names[i] ?? '';
          const field = this.column(name, branch, level, `${path}.${name}`);
          if (field.mode !== 'REPEATED') field.mode = 'NULLABLE';
          return field;
        });
        return { type: 'RECORD', mode, fields };
      }
      default:
        return scalarType(node);
    }
  }

  private enter(depth: number, path: string, record: RecordNode | undefined): number {
    const level = depth + 1;
    if (level <= MAX_RECORD_DEPTH) return level;
    const recursive = record !== undefined && this.expanding.includes(record);
    throw schemaError(
      recursive
        ? `recursive record "${record.fullName}" cannot be mapped to a BigQuery table: at "${path}" it exceeds BigQuery's limit of ${MAX_RECORD_DEPTH} nested RECORD levels`
        : `field "${path}" exceeds BigQuery's limit of ${MAX_RECORD_DEPTH} nested RECORD levels`,
    );
  }
}

/**
 * The BigQuery table schema the row converter's output fits. Throws SCHEMA_INVALID for a schema
 * that is not a record or that nests deeper than BigQuery allows (every recursive schema does).
 */
export function bigQueryFieldsFor(schema: AvroSchema): TableField[] {
  return new FieldBuilder().fields(parseRoot(schema), 0, '');
}
