import { TributaryError } from '../../errors.js';
import type { PipelineObserver } from '../observer.js';
import type { Clock, Random } from '../ports.js';
import { retry, type RetryPolicy } from '../retry.js';
import type { RowValidator } from '../rows/row-validator.js';
import type { Sink } from '../sink.js';
import type { TableRef } from '../table-schema.js';
import type { TableValidators } from '../table-validators.js';
import type { PendingRow } from './pending-row.js';
import type { RouteTableChanges } from './route-table-changes.js';

/** Stale table schemas are re-read at most this often when a row names a field the cache lacks. */
const SCHEMA_REFRESH_MIN_INTERVAL_MS = 10_000;

export interface PreValidationDeps {
  route: string;
  table: TableRef;
  unknownFields: 'dead-letter' | 'drop';
  validators: TableValidators;
  sink: Pick<Sink, 'prepare'>;
  observer: PipelineObserver;
  clock: Clock;
  random: Random;
  retry: RetryPolicy;
  signal: AbortSignal;
  changes: RouteTableChanges;
}

/** A row of the batch the table would refuse, with the reason. */
export interface Refused {
  item: PendingRow;
  error: TributaryError;
}

/**
 * Checks a batch against the table's schema before it is sent: a row the destination would refuse
 * never leaves. Reading the schema goes through the retry helper; a destination error (table
 * missing, no permission) is thrown for the route to pause on.
 */
export class PreValidation {
  constructor(private readonly deps: PreValidationDeps) {}

  async check(batch: readonly PendingRow[]): Promise<{ rows: PendingRow[]; refused: Refused[] }> {
    const { deps } = this;
    let validator = await retry(() => deps.validators.get(deps.table, deps.unknownFields), {
      policy: deps.retry,
      clock: deps.clock,
      random: deps.random,
      signal: deps.signal,
      onRetry: (error) => deps.observer.retried(deps.route, error.code),
    });
    let items = batch;
    const refused: Refused[] = [];
    if (deps.changes.evolving) {
      // Rows whose columns the table is not proven to have: their schema may bring new columns or
      // make a REQUIRED one nullable. The evolver settles each schema once; the batch waits for it.
      const unproven = batch.filter((item) => item.shape !== undefined && !validator.proves(item.shape));
      if (unproven.length > 0) {
        const evolution = await deps.changes.evolveFor(unproven);
        if (evolution.refused.size > 0) {
          const unprovenSet = new Set(unproven);
          const kept: PendingRow[] = [];
          for (const item of batch) {
            const error = unprovenSet.has(item) ? evolution.refused.get(item.schemaKey) : undefined;
            if (error) refused.push({ item, error });
            else kept.push(item);
          }
          items = kept;
        }
        if (evolution.settledAt !== undefined) validator = await deps.validators.readSince(deps.table, deps.unknownFields, evolution.settledAt);
      }
    }
    const first = this.apply(validator, items, true);
    if (first !== undefined) return { rows: first.rows, refused: [...refused, ...first.refused] };
    // The table may have gained a column since its schema was cached: re-read it once before
    // calling any row's field unknown.
    const fresh = await deps.validators.refresh(deps.table, deps.unknownFields, SCHEMA_REFRESH_MIN_INTERVAL_MS).catch(() => validator);
    const second = this.apply(fresh, items, false) as { rows: PendingRow[]; refused: Refused[] };
    return { rows: second.rows, refused: [...refused, ...second.refused] };
  }

  /** Undefined when a row has a field the schema lacks and `deferUnknown` asks to re-read first. */
  private apply(validator: RowValidator, batch: readonly PendingRow[], deferUnknown: boolean): { rows: PendingRow[]; refused: Refused[] } | undefined {
    const rows: PendingRow[] = [];
    const refused: Refused[] = [];
    let dropped = 0;
    for (const item of batch) {
      if (item.shape !== undefined && validator.proves(item.shape)) {
        rows.push(item);
        continue;
      }
      const result = validator.validate(item.prepared.row);
      if (result.ok) {
        if (result.dropped.length > 0) {
          dropped += result.dropped.length;
          // Prepared again: what the sink sends must be the row without the dropped fields.
          rows.push({ ...item, prepared: this.deps.sink.prepare(item.prepared.id, result.row) });
        } else {
          rows.push(item);
        }
      } else {
        if (deferUnknown && result.code === 'UNKNOWN_FIELD') return undefined;
        refused.push({ item, error: new TributaryError(result.code, result.message) });
      }
    }
    if (dropped > 0) this.deps.observer.fieldsDropped(this.deps.route, dropped);
    return { rows, refused };
  }
}
