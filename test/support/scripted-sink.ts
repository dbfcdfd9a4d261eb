import { BigQuerySink } from '../../src/adapters/bigquery-sink.js';
import type { PreparedRow, Sink, SinkLimits, WriteOutcome } from '../../src/core/sink.js';
import type { Row, TableRef, TableSchema } from '../../src/core/table-schema.js';
import { TributaryError } from '../../src/errors.js';

/** One answer of the destination: an outcome, a request-level error, or either computed from the rows. */
export type Answer = Partial<WriteOutcome> | TributaryError | ((rows: readonly PreparedRow[]) => Partial<WriteOutcome> | TributaryError);

const insertAll = new BigQuerySink({ projectId: 'test-project', timeoutMs: 1000 });

/**
 * A destination a unit test scripts request by request: rows are prepared as the insertAll sink
 * prepares them (JSON text, envelope counted), every request is recorded, answers are taken in
 * order (then success), and a test can wait for the n-th request as an event.
 */
export class ScriptedSink implements Sink {
  readonly name = 'scripted';
  readonly limits: SinkLimits = insertAll.limits;
  calls: PreparedRow[][] = [];
  schemaCalls = 0;
  answers: Answer[] = [];
  schemaError: TributaryError | undefined;
  /** When set, each write waits for the test to release it. */
  hold = false;
  private releases: Array<() => void> = [];
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  open = 0;
  peakOpen = 0;

  constructor(private readonly schema: TableSchema) {}

  prepare(id: string, row: Row): PreparedRow {
    return insertAll.prepare(id, row);
  }

  async write(_table: TableRef, rows: readonly PreparedRow[]): Promise<WriteOutcome> {
    this.calls.push([...rows]);
    for (const w of this.waiters.filter((w) => this.calls.length >= w.n)) w.resolve();
    this.waiters = this.waiters.filter((w) => this.calls.length < w.n);
    this.open++;
    this.peakOpen = Math.max(this.peakOpen, this.open);
    try {
      if (this.hold) await new Promise<void>((resolve) => this.releases.push(resolve));
      const next = this.answers.shift() ?? {};
      const answer = typeof next === 'function' ? next(rows) : next;
      if (answer instanceof TributaryError) throw answer;
      return { failures: answer.failures ?? [], billedBytes: answer.billedBytes ?? 0 };
    } finally {
      this.open--;
    }
  }

  async getTableSchema(): Promise<TableSchema> {
    this.schemaCalls++;
    if (this.schemaError) throw this.schemaError;
    return this.schema;
  }

  /** Lets the oldest held write answer. */
  release(): boolean {
    const next = this.releases.shift();
    next?.();
    return next !== undefined;
  }

  get heldWrites(): number {
    return this.releases.length;
  }

  waitForCalls(n: number): Promise<void> {
    if (this.calls.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}
