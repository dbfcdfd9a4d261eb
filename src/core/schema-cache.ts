import { TributaryError, toTributaryError } from '../errors.js';
import { createAvroType, type AvroSchema, type AvroType } from './avro-type.js';
import { RegistryHealth, type RegistryHealthState } from './registry-health.js';
import { createRowConverter } from './rows/row-converter.js';
import type { SchemaReference } from './schema-reference.js';
import { schemaKey } from './schema-reference.js';
import type { Row } from './table-schema.js';

/**
 * Fetches a schema definition (Avro JSON text). Throws TributaryError: SCHEMA_NOT_FOUND when the
 * registry says the id does not exist (or the reference could never name one), REGISTRY_UNAVAILABLE
 * when it cannot answer, REGISTRY_ACCESS_DENIED when it refuses the worker itself.
 */
export interface SchemaRegistry {
  readonly name: string;
  fetch(ref: SchemaReference): Promise<string>;
}

export interface CompiledSchema {
  readonly key: string;
  readonly type: AvroType;
  readonly toRow: (value: unknown) => Row;
  /** Full name of the top-level record. */
  readonly recordName: string;
  /** The schema as the registry gave it (the compiled type does not keep every attribute). */
  readonly definition: AvroSchema;
}

export interface SchemaCacheEvents {
  hit(): void;
  miss(): void;
  fetched(registry: string, seconds: number, ok: boolean): void;
  /** The registry refuses the worker (REGISTRY_ACCESS_DENIED): at most once per report period. */
  registryFault?(error: TributaryError): void;
  /** A schema read succeeded after such a fault. */
  registryRecovered?(): void;
}

export function compileSchema(key: string, definition: string): CompiledSchema {
  let schema: AvroSchema;
  try {
    schema = JSON.parse(definition) as AvroSchema;
  } catch (err) {
    throw new TributaryError('SCHEMA_INVALID', `schema ${key} is not valid JSON: ${(err as Error).message}`);
  }
  try {
    const type = createAvroType(schema);
    if (type.typeName !== 'record' && type.typeName !== 'error') {
      throw new Error(`the top-level type is ${type.typeName}, not a record`);
    }
    return { key, type, toRow: createRowConverter(schema), recordName: type.name ?? '', definition: schema };
  } catch (err) {
    if (err instanceof TributaryError) throw err;
    throw new TributaryError('SCHEMA_INVALID', `schema ${key} is not a usable Avro record schema: ${(err as Error).message}`);
  }
}

/**
 * Schemas and their compiled types, per schema id. Concurrent misses share one fetch; a failed
 * fetch is not cached (the next message tries again); a schema that does not compile is cached as
 * such, since a registry id never changes its content.
 */
export class SchemaCache {
  private readonly compiled = new Map<string, CompiledSchema | TributaryError>();
  private readonly loading = new Map<string, Promise<CompiledSchema>>();
  private readonly health: RegistryHealth;

  constructor(
    private readonly registry: SchemaRegistry,
    private readonly maxEntries: number,
    private readonly events: SchemaCacheEvents,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.health = new RegistryHealth(now);
  }

  /** Whether the registry lets the worker read schemas: what readiness consults. */
  registryHealth(): RegistryHealthState {
    return this.health.state();
  }

  /** The hot path: a cached schema without a promise. Throws a cached compile failure. */
  getCached(key: string): CompiledSchema | undefined {
    const entry = this.compiled.get(key);
    if (entry === undefined) return undefined;
    this.events.hit();
    if (entry instanceof TributaryError) throw entry;
    return entry;
  }

  get(ref: SchemaReference): Promise<CompiledSchema> {
    const key = schemaKey(ref);
    let cached: CompiledSchema | undefined;
    try {
      cached = this.getCached(key);
    } catch (err) {
      return Promise.reject(err);
    }
    if (cached) return Promise.resolve(cached);
    // A lookup that waits on another's fetch is a miss too: hits + misses = lookups.
    this.events.miss();
    const pending = this.loading.get(key);
    if (pending) return pending;
    const promise = this.load(key, ref).finally(() => this.loading.delete(key));
    this.loading.set(key, promise);
    return promise;
  }

  get size(): number {
    return this.compiled.size;
  }

  private async load(key: string, ref: SchemaReference): Promise<CompiledSchema> {
    const started = this.now();
    let definition: string;
    try {
      definition = await this.registry.fetch(ref);
      this.events.fetched(this.registry.name, (this.now() - started) / 1000, true);
    } catch (err) {
      this.events.fetched(this.registry.name, (this.now() - started) / 1000, false);
      const error = toTributaryError(err);
      if (this.health.failed(error)) this.events.registryFault?.(error);
      throw error;
    }
    if (this.health.succeeded()) this.events.registryRecovered?.();
    let result: CompiledSchema | TributaryError;
    try {
      result = compileSchema(key, definition);
    } catch (err) {
      result = toTributaryError(err);
    }
    this.remember(key, result);
    if (result instanceof TributaryError) throw result;
    return result;
  }

  private remember(key: string, entry: CompiledSchema | TributaryError): void {
    if (this.compiled.size >= this.maxEntries) {
      const oldest = this.compiled.keys().next();
      if (!oldest.done) this.compiled.delete(oldest.value);
    }
    this.compiled.set(key, entry);
  }
}
