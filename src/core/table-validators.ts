import type { Sink } from './sink.js';
import { createRowValidator, type RowValidator } from './rows/row-validator.js';
import { formatTableRef, type TableRef } from './table-schema.js';

type UnknownFields = 'dead-letter' | 'drop';

interface Entry {
  validator: RowValidator;
  fetchedAt: number;
}

/**
 * Table schemas, read from the destination and compiled into validators. Re-read after `ttlMs`,
 * on demand when a row names a field the cached schema lacks, and after BigQuery reports one.
 * Concurrent reads of one table share a request.
 */
export class TableValidators {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<RowValidator>>();

  constructor(
    private readonly sink: Pick<Sink, 'getTableSchema'>,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  get(table: TableRef, unknownFields: UnknownFields): Promise<RowValidator> {
    const key = `${formatTableRef(table)}|${unknownFields}`;
    const entry = this.entries.get(key);
    if (entry && this.now() - entry.fetchedAt < this.ttlMs) return Promise.resolve(entry.validator);
    return this.load(key, table, unknownFields);
  }

  /** Re-reads the schema unless it was read less than `minAgeMs` ago. */
  refresh(table: TableRef, unknownFields: UnknownFields, minAgeMs: number): Promise<RowValidator> {
    const key = `${formatTableRef(table)}|${unknownFields}`;
    const entry = this.entries.get(key);
    if (entry && this.now() - entry.fetchedAt < minAgeMs) return Promise.resolve(entry.validator);
    return this.load(key, table, unknownFields);
  }

  invalidate(table: TableRef): void {
    const prefix = `${formatTableRef(table)}|`;
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.entries.delete(key);
  }

  private load(key: string, table: TableRef, unknownFields: UnknownFields): Promise<RowValidator> {
    const pending = this.loading.get(key);
    if (pending) return pending;
    const promise = this.sink
      .getTableSchema(table)
      .then((schema) => {
        const validator = createRowValidator(schema, { unknownFields });
        this.entries.set(key, { validator, fetchedAt: this.now() });
        return validator;
      })
      .finally(() => this.loading.delete(key));
    this.loading.set(key, promise);
    return promise;
  }
}
