import { TributaryError, toTributaryError } from '../errors.js';
import type { SchemaRegistry } from './schema-cache.js';
import type { SchemaReference } from './schema-reference.js';
import { fingerprintSchema } from './schema-fingerprint.js';

/** A schema the worker knows, with where it came from (for logs and `inspect`). */
export interface KnownSchema {
  /** e.g. `directory:access@1.avsc`, `pubsub:projects/p/schemas/access@abc`, `confluent:access-value/3`. */
  readonly source: string;
  readonly definition: string;
}

/** Lists every schema one registry holds that single-object messages may name. */
export interface SchemaSource {
  readonly name: string;
  list(): Promise<KnownSchema[]>;
}

export interface FingerprintIndexOptions {
  /** Time in ms, from the injected clock. */
  now: () => number;
  /** An unknown fingerprint re-reads the sources at most this often. */
  minRefreshIntervalMs: number;
  /** Called after each refresh: how many schemas are indexed, and those that could not be. */
  onRefresh?: (indexed: number, skipped: ReadonlyArray<{ source: string; reason: string }>) => void;
}

/**
 * Schemas by CRC-64-AVRO fingerprint, for Avro single-object encoding: built from every source at
 * start and rebuilt when a message names a fingerprint it does not hold, at most once per
 * interval, so a producer sending unknown fingerprints cannot turn each message into a registry
 * crawl. A fingerprint still unknown after that is SCHEMA_NOT_FOUND (dead-lettered); a source that
 * cannot answer is REGISTRY_UNAVAILABLE (retried, then nacked).
 */
export class FingerprintIndex {
  private byFingerprint = new Map<string, KnownSchema>();
  private lastAttemptMs: number | undefined;
  private lastFailure: string | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly sources: readonly SchemaSource[],
    private readonly options: FingerprintIndexOptions,
  ) {}

  get size(): number {
    return this.byFingerprint.size;
  }

  /** The schema a fingerprint (8 wire bytes, hex) names; refreshes once if allowed. */
  async lookup(fingerprint: string): Promise<KnownSchema> {
    const known = this.byFingerprint.get(fingerprint);
    if (known) return known;
    const last = this.lastAttemptMs;
    if (this.refreshing || last === undefined || this.options.now() - last >= this.options.minRefreshIntervalMs) {
      await this.refresh();
      const found = this.byFingerprint.get(fingerprint);
      if (found) return found;
    } else if (this.lastFailure) {
      // Not knowing a fingerprint proves nothing while the index could not be read.
      throw new TributaryError('REGISTRY_UNAVAILABLE', this.lastFailure);
    }
    throw new TributaryError(
      'SCHEMA_NOT_FOUND',
      `no known schema has the single-object fingerprint ${fingerprint} (${this.byFingerprint.size} schemas indexed from ${this.sources.map((s) => s.name).join(', ') || 'no source'})`,
    );
  }

  /** Re-reads every source; concurrent callers share one refresh. Throws REGISTRY_UNAVAILABLE when a source cannot answer. */
  refresh(): Promise<void> {
    this.refreshing ??= this.rebuild().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async rebuild(): Promise<void> {
    this.lastAttemptMs = this.options.now();
    let lists: KnownSchema[][];
    try {
      lists = await Promise.all(this.sources.map((source) => source.list()));
    } catch (err) {
      // The index stays as it was; the message waits for the registry like any other.
      this.lastFailure = `cannot index schemas by fingerprint: ${toTributaryError(err).message}`;
      throw new TributaryError('REGISTRY_UNAVAILABLE', this.lastFailure, { cause: err });
    }
    this.lastFailure = undefined;
    const next = new Map<string, KnownSchema>();
    const skipped: Array<{ source: string; reason: string }> = [];
    for (const list of lists) {
      for (const schema of list) {
        try {
          const { hex } = fingerprintSchema(schema.definition);
          // The first source listed wins a (harmless) duplicate: the same canonical form.
          if (!next.has(hex)) next.set(hex, schema);
        } catch (err) {
          skipped.push({ source: schema.source, reason: (err as Error).message });
        }
      }
    }
    this.byFingerprint = next;
    this.options.onRefresh?.(next.size, skipped);
  }
}

/**
 * Answers fingerprint references from the index and hands every other reference to the registry
 * it wraps, so the schema cache and the dispatcher treat single-object messages like any other.
 */
export class FingerprintSchemaRegistry implements SchemaRegistry {
  readonly name: string;

  constructor(
    private readonly inner: SchemaRegistry,
    private readonly index: FingerprintIndex,
  ) {
    this.name = inner.name;
  }

  async fetch(ref: SchemaReference): Promise<string> {
    if (ref.kind !== 'fingerprint') return this.inner.fetch(ref);
    return (await this.index.lookup(ref.fingerprint)).definition;
  }
}
