import type { Row, TableField, TableSchema } from '../table-schema.js';
import { type Context, Invalid } from './row-check.js';
import { compileRecord } from './record-checks.js';
import { fieldsFit } from './row-shape-proof.js';
import { describeRowValue, formatPath, type PathNode } from './value-path.js';

/*
 * Checks a converted row against the destination table's schema before it is sent, so a row
 * BigQuery would reject is dead-lettered with a precise reason instead of failing a whole request.
 * The schema is compiled once into closures; a valid row costs one pass and no allocation beyond
 * one small path node per RECORD/REPEATED value.
 */

export type RowValidation = { ok: true; row: Row; dropped: string[] } | { ok: false; code: 'ROW_INVALID' | 'UNKNOWN_FIELD'; field: string; message: string };

export interface RowValidator {
  validate(row: Row): RowValidation;
  /**
   * True when every row shaped by `fields` (the columns a row converter produces, with their types
   * and modes) passes validate(): the check is then made once per schema instead of once per row.
   * False means "not proven", never "invalid".
   */
  proves(fields: readonly TableField[]): boolean;
}

export interface RowValidatorOptions {
  /** `drop` removes fields the table lacks (reporting their paths); `dead-letter` rejects the row. */
  unknownFields: 'dead-letter' | 'drop';
}

/**
 * Compiles a validator for rows bound for a table with this schema. Compile once per table schema
 * and reuse; validate() is synchronous and does not retain the row.
 */
export function createRowValidator(schema: TableSchema, options: RowValidatorOptions): RowValidator {
  const record = compileRecord(schema.fields);
  const root: PathNode = { parent: undefined, key: '' };
  const ctx: Context = { unknownFields: options.unknownFields, dropped: undefined };
  const proofs = new WeakMap<readonly TableField[], boolean>();
  return {
    proves(fields: readonly TableField[]): boolean {
      let proven = proofs.get(fields);
      if (proven === undefined) {
        proven = fieldsFit(fields, schema.fields);
        proofs.set(fields, proven);
      }
      return proven;
    },
    validate(row: Row): RowValidation {
      if (typeof row !== 'object' || row === null || Array.isArray(row)) {
        return { ok: false, code: 'ROW_INVALID', field: '', message: `a row must be an object, got ${describeRowValue(row)}` };
      }
      ctx.dropped = undefined;
      try {
        const checked = record(row, root, ctx) as Row;
        return { ok: true, row: checked, dropped: ctx.dropped ?? [] };
      } catch (err) {
        if (!(err instanceof Invalid)) throw err;
        const field = formatPath(err.parent, err.key);
        return { ok: false, code: err.code, field, message: `field "${field}"${err.problem}` };
      } finally {
        ctx.dropped = undefined;
      }
    },
  };
}
