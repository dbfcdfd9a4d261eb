import { toTributaryError, type TributaryError } from '../../errors.js';
import type { Logger } from '../ports.js';
import type { BackoffPolicy } from '../retry.js';
import { tableHasField, unknownFieldPath } from '../schema-propagation.js';
import type { ReadTableSchema } from '../table-validators.js';
import type { PendingRow } from './pending-row.js';

/**
 * The backoff of rows waiting for a change to reach streaming inserts: from 1 s, doubling up to
 * 30 s, for at most PROPAGATION_WAIT_BOUND_MS (10 minutes) from the first refusal.
 */
export const PROPAGATION_BACKOFF: BackoffPolicy = { initialDelayMs: 1000, maxDelayMs: 30_000 };

/** Rows the destination does not take yet because a table change has not reached it. */
export interface Waiting {
  rows: PendingRow[];
  reason: string;
}

/** A row refused as naming a field the destination does not know, until the fresh schema says why. */
export interface Suspect {
  item: PendingRow;
  error: TributaryError;
}

export interface JudgeSuspectsDeps {
  route: string;
  logger: Logger;
  /** The table's schema read afresh (a change made a moment ago is in it). */
  freshSchema(): Promise<ReadTableSchema>;
  /** The row names a field the table does not have: it can never be written. */
  deadLetter(item: PendingRow, error: TributaryError): Promise<void>;
}

/**
 * Rows refused for a field the destination does not know: when the table, read afresh, has every
 * field of the row, the column was added and has not reached streaming inserts yet, so the row
 * waits; otherwise it is dead-lettered with the destination's reason.
 */
export async function judgeSuspects(suspects: readonly Suspect[], waiting: Waiting, deadLetters: Array<Promise<void>>, deps: JudgeSuspectsDeps): Promise<void> {
  if (suspects.length === 0) return;
  let fresh: ReadTableSchema | undefined;
  try {
    fresh = await deps.freshSchema();
  } catch (err) {
    // The schema cannot be read now: no row is called bad on a guess; the wait is bounded.
    deps.logger.warn(
      { route: deps.route, err: toTributaryError(err).message },
      'Cannot read the table schema to tell a new column from an unknown field; rows wait.',
    );
  }
  for (const { item, error } of suspects) {
    if (fresh === undefined || tableKnowsRow(fresh, item, error.message)) {
      waiting.rows.push(item);
      waiting.reason = `the table has the field but streaming inserts do not see it yet: ${error.message}`;
    } else {
      deadLetters.push(deps.deadLetter(item, error));
    }
  }
}

/**
 * True when the table, as read afresh, has the field the destination called unknown (when its
 * answer names it) and every field of the row: the refusal can only be the schema propagating.
 */
function tableKnowsRow(fresh: ReadTableSchema, item: PendingRow, reason: string): boolean {
  const at = reason.search(/no such field/i);
  const location = /field "([^"]+)": no such field/i.exec(reason)?.[1] ?? '';
  const path = at >= 0 ? unknownFieldPath(reason.slice(at), location) : null;
  if (path !== null && !tableHasField(fresh.schema, path)) return false;
  const check = fresh.validator.validate(item.prepared.row);
  return check.ok && check.dropped.length === 0;
}
