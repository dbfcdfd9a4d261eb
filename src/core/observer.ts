import type { Framing } from './schema-reference.js';
import type { ErrorCode } from '../errors.js';

export type RouteStateName = 'running' | 'paused' | 'draining' | 'stopped';
export type SettleOutcome = 'acked' | 'nacked' | 'dead-lettered';
/**
 * Why a route holds rows for its table: columns being added, the table being created, or a change
 * made already that streaming inserts do not see yet.
 */
export type TableChangeWaitKind = 'add-columns' | 'create-table' | 'propagation';

/** A settled message as the observer sees it: only its publish time, for the age at settle. */
export interface SettledMessage {
  readonly publishTimeMs: number;
}

/**
 * What the pipeline reports as it works; metrics implement it. One call per batch where one per
 * message is not needed, so the hot path stays cheap.
 */
export interface PipelineObserver {
  /** `framing` says how the message carries its schema; undefined when it carries none we know. */
  received(subscription: string, count: number, bytes: number, framing?: Framing): void;
  /** Bytes a message of this route spent carrying its own schema (a container file's header). */
  embeddedSchemaBytes?(route: string, bytes: number): void;
  /** One call per settled batch; `nowMs` is when it was settled, for each message's age. */
  settled(route: string, outcome: SettleOutcome, code: ErrorCode | undefined, messages: readonly SettledMessage[], nowMs: number): void;
  /** `writeApi` is the sink's name: what the bytes are billed under. */
  rowsInserted(route: string, table: string, rows: number, billedBytes: number, writeApi: string): void;
  insertRequest(route: string, seconds: number, outcome: 'ok' | 'partial' | ErrorCode): void;
  batchFlushed(route: string, rows: number, bytes: number): void;
  retried(route: string, code: ErrorCode): void;
  fieldsDropped(route: string, count: number): void;
  routeState(route: string, state: RouteStateName, code: ErrorCode | undefined): void;
  /** `rows` rows were held `seconds` for a change of their table before going on (or back). */
  tableChangeWait(route: string, kind: TableChangeWaitKind, seconds: number, rows: number): void;
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
  tableChangeWait() {},
};
