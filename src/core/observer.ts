import type { ErrorCode } from '../errors.js';

export type RouteStateName = 'running' | 'paused' | 'draining' | 'stopped';
export type SettleOutcome = 'acked' | 'nacked' | 'dead-lettered';

/**
 * What the pipeline reports as it works; metrics implement it. One call per batch where one per
 * message is not needed, so the hot path stays cheap.
 */
export interface PipelineObserver {
  received(subscription: string, count: number, bytes: number): void;
  settled(route: string, outcome: SettleOutcome, code: ErrorCode | undefined, count: number, ageMs: number): void;
  rowsInserted(route: string, table: string, rows: number, billedBytes: number): void;
  insertRequest(route: string, seconds: number, outcome: 'ok' | 'partial' | ErrorCode): void;
  batchFlushed(route: string, rows: number, bytes: number): void;
  retried(route: string, code: ErrorCode): void;
  fieldsDropped(route: string, count: number): void;
  routeState(route: string, state: RouteStateName, code: ErrorCode | undefined): void;
}

export const noopObserver: PipelineObserver = {
  received() {},
  settled() {},
  rowsInserted() {},
  insertRequest() {},
  batchFlushed() {},
  retried() {},
  fieldsDropped() {},
  routeState() {},
};
