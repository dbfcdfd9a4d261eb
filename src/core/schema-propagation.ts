import { backoffDelay, type BackoffPolicy } from './retry.js';
import type { TableField, TableSchema } from './table-schema.js';

/*
 * After a column is added, tables.get shows it at once while insertAll may keep refusing it as
 * `invalid` "no such field" for seconds to minutes. Such a row is not bad: when the freshly read
 * table has the field, the row waits (SCHEMA_PROPAGATING) instead of being dead-lettered.
 */

/** Default bound of the wait: BigQuery documents no maximum; users report minutes. */
export const PROPAGATION_WAIT_BOUND_MS = 10 * 60_000;

const NO_SUCH_FIELD = /^no such field:?\s*(.*?)\.?$/i;

/**
 * The dotted field path of an insertAll "no such field" error (`location` `source.zone`, or the
 * message `no such field: source.zone.`), array indexes removed; null for any other error.
 */
export function unknownFieldPath(message: string, location: string): string | null {
  const match = NO_SUCH_FIELD.exec(message.trim());
  if (!match) return null;
  const path = (location.trim() !== '' ? location : (match[1] ?? '')).replace(/\[\d+\]/g, '').trim();
  return path === '' ? null : path;
}

/** True when the table has the field at this dotted path (names matched case-insensitively). */
export function tableHasField(schema: TableSchema, path: string): boolean {
  let level: readonly TableField[] = schema.fields;
  const names = path.split('.');
  for (let i = 0; i < names.length; i++) {
    const name = (names[i] ?? '').toLowerCase();
    const field = level.find((f) => f.name.toLowerCase() === name);
    if (field === undefined) return false;
    if (i < names.length - 1) level = field.fields ?? [];
  }
  return true;
}

/**
 * The delay before the next insert attempt of rows waiting for a column to propagate, or null when
 * the wait has lasted `boundMs` and the rows should go back (nack) rather than wait longer.
 */
export function propagationDelay(
  policy: BackoffPolicy,
  attempt: number,
  waitedMs: number,
  boundMs = PROPAGATION_WAIT_BOUND_MS,
  random: () => number = Math.random,
): number | null {
  if (waitedMs >= boundMs) return null;
  return Math.min(boundMs - waitedMs, Math.max(policy.initialDelayMs, backoffDelay(policy, attempt, random)));
}
