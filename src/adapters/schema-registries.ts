import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PubSub } from '@google-cloud/pubsub';
import { TributaryError } from '../errors.js';
import type { SchemaRegistry } from '../core/schema-cache.js';
import type { SchemaReference } from '../core/schema-reference.js';
import { withTimeout } from './with-timeout.js';

/** gRPC status codes that mean "this schema revision does not exist". */
const GRPC_NOT_FOUND = 5;
const GRPC_INVALID_ARGUMENT = 3;

/**
 * One schema-service call is cut here (the client would retry on its own for minutes); the
 * schema cache's caller retries with backoff, so a message's worst-case settle time stays bounded.
 */
const SCHEMA_SERVICE_TIMEOUT_MS = 10_000;

/** Pub/Sub's schema service: the exact revision a message names. */
export class PubSubSchemaRegistry implements SchemaRegistry {
  readonly name = 'pubsub';

  constructor(private readonly pubsub: PubSub) {}

  async fetch(ref: SchemaReference): Promise<string> {
    if (ref.kind !== 'pubsub') throw new TributaryError('SCHEMA_NOT_FOUND', 'the Pub/Sub schema service only knows Pub/Sub schema revisions');
    const client = await this.pubsub.getSchemaClient();
    const name = `${ref.schema}@${ref.revisionId}`;
    try {
      const [schema] = await withTimeout(client.getSchema({ name, view: 'FULL' }), SCHEMA_SERVICE_TIMEOUT_MS, () => new Error(`no answer within ${SCHEMA_SERVICE_TIMEOUT_MS} ms`));
      if (schema.type !== 'AVRO' && schema.type !== 1) {
        throw new TributaryError('SCHEMA_INVALID', `schema ${name} is of type ${String(schema.type)}, not AVRO`);
      }
      if (!schema.definition) throw new TributaryError('SCHEMA_INVALID', `schema ${name} has no definition`);
      return schema.definition;
    } catch (err) {
      if (err instanceof TributaryError) throw err;
      const code = (err as { code?: unknown }).code;
      const message = err instanceof Error ? err.message : String(err);
      if (code === GRPC_NOT_FOUND || code === GRPC_INVALID_ARGUMENT) {
        throw new TributaryError('SCHEMA_NOT_FOUND', `Pub/Sub schema revision ${name} not found: ${message}`);
      }
      throw new TributaryError('REGISTRY_UNAVAILABLE', `Pub/Sub schema service failed for ${name}: ${message}`, { cause: err });
    }
  }
}

export interface ConfluentRegistryOptions {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  bearerToken?: string | undefined;
  timeoutMs: number;
}

/**
 * Any Confluent-compatible registry (Confluent, Apicurio's ccompat API, Karapace, Redpanda):
 * `GET /schemas/ids/{id}`. A 404 is an unknown id (data error); anything else that is not a
 * usable answer means the registry is unavailable (retryable), garbage included.
 */
export class ConfluentSchemaRegistry implements SchemaRegistry {
  readonly name = 'confluent';
  private readonly headers: Record<string, string>;
  private readonly base: string;

  constructor(private readonly options: ConfluentRegistryOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.headers = { accept: 'application/vnd.schemaregistry.v1+json, application/json' };
    if (options.bearerToken) this.headers.authorization = `Bearer ${options.bearerToken}`;
    else if (options.username !== undefined) {
      this.headers.authorization = `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64')}`;
    }
  }

  async fetch(ref: SchemaReference): Promise<string> {
    if (ref.kind !== 'confluent') throw new TributaryError('SCHEMA_NOT_FOUND', 'a Confluent registry only knows Confluent schema ids');
    const url = `${this.base}/schemas/ids/${ref.id}`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { headers: this.headers, signal: AbortSignal.timeout(this.options.timeoutMs) });
      text = await response.text();
    } catch (err) {
      const reason = (err as Error).name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs} ms` : describeFetchError(err);
      throw new TributaryError('REGISTRY_UNAVAILABLE', `schema registry ${this.base} unreachable for id ${ref.id}: ${reason}`, { cause: err });
    }
    if (response.status === 404) {
      throw new TributaryError('SCHEMA_NOT_FOUND', `schema id ${ref.id} not found in registry ${this.base}: ${text.slice(0, 200)}`);
    }
    if (!response.ok) {
      throw new TributaryError('REGISTRY_UNAVAILABLE', `schema registry ${this.base} answered ${response.status} for id ${ref.id}: ${text.slice(0, 200)}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new TributaryError('REGISTRY_UNAVAILABLE', `schema registry ${this.base} answered id ${ref.id} with a body that is not JSON`);
    }
    const record = body as { schema?: unknown; schemaType?: unknown; references?: unknown };
    if (typeof record.schema !== 'string') {
      throw new TributaryError('REGISTRY_UNAVAILABLE', `schema registry ${this.base} answered id ${ref.id} without a "schema" string`);
    }
    if (record.schemaType !== undefined && record.schemaType !== 'AVRO') {
      throw new TributaryError('SCHEMA_INVALID', `schema id ${ref.id} is of type ${String(record.schemaType).slice(0, 40)}, not AVRO`);
    }
    if (Array.isArray(record.references) && record.references.length > 0) {
      throw new TributaryError('SCHEMA_INVALID', `schema id ${ref.id} uses schema references, which are not supported; register it self-contained`);
    }
    return record.schema;
  }
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

/**
 * `.avsc` files named after the id: `<confluent id>.avsc` or `<schema name>@<revision>.avsc`
 * (the short schema name, without `projects/…/schemas/`). For development and tests.
 */
export class DirectorySchemaRegistry implements SchemaRegistry {
  readonly name = 'directory';

  constructor(private readonly directory: string) {}

  async fetch(ref: SchemaReference): Promise<string> {
    const file = ref.kind === 'confluent' ? `${ref.id}.avsc` : `${ref.schema.split('/').pop() ?? ref.schema}@${ref.revisionId}.avsc`;
    if (file.includes('..') || file.includes('/')) throw new TributaryError('SCHEMA_NOT_FOUND', `schema file name "${file}" is not allowed`);
    try {
      return await readFile(join(this.directory, file), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new TributaryError('SCHEMA_NOT_FOUND', `no schema file ${file} in ${this.directory}`);
      throw new TributaryError('REGISTRY_UNAVAILABLE', `cannot read schema file ${file}: ${code ?? (err as Error).message}`);
    }
  }
}

/** `auto`: each message's reference picks the registry that can answer it. */
export class AutoSchemaRegistry implements SchemaRegistry {
  readonly name = 'auto';

  constructor(private readonly registries: { pubsub?: SchemaRegistry; confluent?: SchemaRegistry; directory?: SchemaRegistry }) {}

  fetch(ref: SchemaReference): Promise<string> {
    const registry = ref.kind === 'pubsub' ? (this.registries.pubsub ?? this.registries.directory) : (this.registries.confluent ?? this.registries.directory);
    if (!registry) {
      return Promise.reject(new TributaryError('SCHEMA_NOT_FOUND', `no registry configured for ${ref.kind === 'pubsub' ? 'Pub/Sub schema revisions' : 'Confluent schema ids'}`));
    }
    return registry.fetch(ref);
  }
}
