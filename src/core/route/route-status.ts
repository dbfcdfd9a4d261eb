import type { ErrorCode } from '../../errors.js';
import type { RouteStateName } from '../observer.js';
import type { PendingTableChange } from './route-table-changes.js';

/** What `/status` and readiness show of one route. */
export interface RouteStatus {
  route: string;
  table: string;
  state: RouteStateName;
  reason?: { code: ErrorCode; message: string };
  since: number;
  lastSuccessAt?: number;
  lastError?: { code: ErrorCode; message: string; at: number };
  pendingRows: number;
  queuedBatches: number;
  inFlightBatches: number;
  /** The in-flight limit in force: lowered when BigQuery throttles, raised back as inserts succeed. */
  concurrencyLimit: number;
  /** Minimum gap between request starts once a single request in flight still gets throttled. */
  pacingMs: number;
  /** Unsettled rows and no insert for STALL_AFTER_MS: the route has work and makes no progress. */
  stalled: boolean;
  /** Rows held for a change of the table: columns being added, the table being created, or a change not yet visible to inserts. */
  pendingChange?: PendingTableChange;
}

/** A route with work and no successful insert for this long is reported as stalled. */
export const STALL_AFTER_MS = 120_000;
