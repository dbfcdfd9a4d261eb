import type { Sink } from './sink.js';
import { createRowValidator, type RowValidator } from './rows/row-validator.js';
import { formatTableRef, type TableRef, type TableSchema } from './table-schema.js';

type UnknownFields = 'dead-letter' | 'drop';

interface Entry {
  validator: RowValidator;
  schema: TableSchema;
  fetchedAt: number;
}

/** A table's schema as read, with its compiled validator. */
export interface ReadTableSchema {
  validator: RowValidator;
  schema: TableSchema;
}

/**
 * Table schemas, read from the destination and compiled into validators. Re-read after `ttlMs`,
 * on demand when a row names a field the cached schema lacks, and after BigQuery reports one.
 * Concurrent reads of one table share a request.
 */
export class TableValidators {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, { promise: Promise<Entry>; startedAt: number }>();

  constructor(
    private readonly sink: Pick<Sink, 'getTableSchema'>,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  get(table: TableRef, unknownFields: UnknownFields): Promise<RowValidator> {
    const key = `${formatTableRef(table)}|${unknownFields}`;
    const entry = this.entries.get(key);
    if (entry && this.now() - entry.fetchedAt < this.ttlMs) return Promise.resolve(entry.validator);
    return this.load(key, table, unknownFields).then((e) => e.validator);
  }

  /** Re-reads the schema unless it was read less than `minAgeMs` ago. */
  refresh(table: TableRef, unknownFields: UnknownFields, minAgeMs: number): Promise<RowValidator> {
    const key = `${formatTableRef(table)}|${unknownFields}`;
    const entry = this.entries.get(key);
    if (entry && this.now() - entry.fetchedAt < minAgeMs) return Promise.resolve(entry.validator);
    return this.load(key, table, unknownFields).then((e) => e.validator);
  }

  /** The schema and its validator, read again unless the cached read is younger than `maxAgeMs`. */
  fresh(table: TableRef, unknownFields: UnknownFields, maxAgeMs: number): Promise<ReadTableSchema> {
    const key = `${formatTableRef(table)}|${unknownFields}`;
    const entry = this.entries.get(key);
    if (entry && this.now() - entry.fetchedAt < maxAgeMs) return Promise.resolve(entry);
    return this.load(key, table, unknownFields);
  }

  /** Re-reads the schema unless the read began after `since` (a change made then must be in it). */
  readSince(table: TableRef, unknownFields: UnknownFields, since: number): Promise<RowValidator> {
    const key = `${formatTableRef(table)}|${unknownFields}`;
    const entry = this.entries.get(key);
    if (entry && entry.fetchedAt > since) return Promise.resolve(entry.validator);
    return this.load(key, table, unknownFields, since).then((e) => e.validator);
  }

  invalidate(table: TableRef): void {
    const prefix = `${formatTableRef(table)}|`;
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.entries.delete(key);
  }

  private load(key: string, table: TableRef, unknownFields: UnknownFields, notBefore?: number): Promise<Entry> {
    const pending = this.loading.get(key);
    if (pending && (notBefore === undefined || pending.startedAt > notBefore)) return pending.promise;
    // The schema is as old as the request that read it: a change made during the read may be missing.
    const startedAt = this.now();
    const promise = this.sink
      .getTableSchema(table)
      .then((schema) => {
        const read: Entry = { validator: createRowValidator(schema, { unknownFields }), schema, fetchedAt: startedAt };
        const entry = this.entries.get(key);
        if (entry === undefined || entry.fetchedAt <= startedAt) this.entries.set(key, read);
        return read;
      })
      .finally(() => {
        if (this.loading.get(key)?.promise === promise) this.loading.delete(key);
      });
    this.loading.set(key, { promise, startedAt });
    return promise;
  }
}
