import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TributaryError } from '../errors.js';
import type { SchemaRegistry } from '../core/schema-cache.js';
import { isPubSubRevisionId, parsePubSubSchemaName, quoteForMessage, type SchemaReference } from '../core/schema-reference.js';
import { withTimeout } from './with-timeout.js';

/** gRPC status codes the schema service answers with. */
const GRPC_INVALID_ARGUMENT = 3;
const GRPC_NOT_FOUND = 5;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAUTHENTICATED = 16;

/**
 * One schema-service call is cut here (the client would retry on its own for minutes); the
 * schema cache's caller retries with backoff, so a message's worst-case settle time stays bounded.
 */
const SCHEMA_SERVICE_TIMEOUT_MS = 10_000;

/** The part of the schema service's client this registry uses (the real client in production). */
export interface SchemaServiceClient {
  getSchema(request: { name: string; view: 'FULL' }): Promise<[{ type?: unknown; definition?: string | null }, ...unknown[]]>;
}

/** Where the Pub/Sub schema registry finds the schema service and the worker's own project. */
export interface SchemaService {
  /** The worker's project; read after getSchemaClient(), which resolves it from the credentials if unset. */
  readonly projectId: string;
  getSchemaClient(): Promise<SchemaServiceClient>;
}

/**
 * Pub/Sub's schema service: the exact revision a message names.
 *
 * A reference is the message's, so what the service says about it decides between a data error and
 * a configuration fault by whose project it names. A malformed name or revision never reaches the
 * service (data). Another project's schema that is missing or unreadable is a forged or foreign
 * reference: dead-lettered, or it would be redelivered forever. The worker's own project denying a
 * read is the worker's service account lacking `pubsub.schemas.get`: the message is nacked and the
 * fault made loud (REGISTRY_ACCESS_DENIED), never dead-lettered, since every message would follow.
 * A project named by number cannot be told from the worker's own, so it counts as its own.
 */
export class PubSubSchemaRegistry implements SchemaRegistry {
  readonly name = 'pubsub';

  constructor(private readonly pubsub: SchemaService) {}

  async fetch(ref: SchemaReference): Promise<string> {
    if (ref.kind !== 'pubsub') throw new TributaryError('SCHEMA_NOT_FOUND', 'the Pub/Sub schema service only knows Pub/Sub schema revisions');
    const parsed = parsePubSubSchemaName(ref.schema);
    if (parsed === undefined) {
      throw new TributaryError(
        'SCHEMA_NOT_FOUND',
        `schema name ${quoteForMessage(ref.schema)} is not a Pub/Sub schema name (projects/<project>/schemas/<schema>)`,
      );
    }
    if (!isPubSubRevisionId(ref.revisionId)) {
      throw new TributaryError('SCHEMA_NOT_FOUND', `schema revision id ${quoteForMessage(ref.revisionId)} of ${ref.schema} is not a Pub/Sub revision id`);
    }
    const name = `${ref.schema}@${ref.revisionId}`;
    let schema: { type?: unknown; definition?: string | null };
    try {
      const client = await this.pubsub.getSchemaClient();
      [schema] = await withTimeout(
        client.getSchema({ name, view: 'FULL' }),
        SCHEMA_SERVICE_TIMEOUT_MS,
        () => new Error(`no answer within ${SCHEMA_SERVICE_TIMEOUT_MS} ms`),
      );
    } catch (err) {
      throw this.classify(err, name, parsed.project);
    }
    if (schema.type !== 'AVRO' && schema.type !== 1) {
      throw new TributaryError('SCHEMA_INVALID', `schema ${name} is of type ${String(schema.type)}, not AVRO`);
    }
    if (!schema.definition) throw new TributaryError('SCHEMA_INVALID', `schema ${name} has no definition`);
    return schema.definition;
  }

  private classify(err: unknown, name: string, project: string): TributaryError {
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : String(err);
    const own = this.pubsub.projectId;
    // Unknown own project (not resolved) or a project number: treated as the worker's own.
    const foreign = own !== '' && !own.startsWith('{{') && project !== own && !/^\d+$/.test(project);
    if (code === GRPC_NOT_FOUND || code === GRPC_INVALID_ARGUMENT) {
      const where = foreign ? ` (in project ${project}, not the worker's project ${own})` : '';
      return new TributaryError('SCHEMA_NOT_FOUND', `Pub/Sub schema revision ${name} not found${where}: ${message}`);
    }
    if (code === GRPC_PERMISSION_DENIED && foreign) {
      return new TributaryError(
        'SCHEMA_NOT_FOUND',
        `Pub/Sub schema revision ${name} is in project ${project}, not the worker's project ${own}, and may not be read there: ${message}`,
      );
    }
    if (code === GRPC_UNAUTHENTICATED) {
      return new TributaryError('REGISTRY_ACCESS_DENIED', `the Pub/Sub schema service refuses the worker's credentials reading ${name}: ${message}`, {
        cause: err,
      });
    }
    if (code === GRPC_PERMISSION_DENIED) {
      return new TributaryError(
        'REGISTRY_ACCESS_DENIED',
        `the Pub/Sub schema service refuses the worker reading ${name} in its own project ${own || project} (it needs pubsub.schemas.get, e.g. roles/pubsub.viewer): ${message}`,
        { cause: err },
      );
    }
    return new TributaryError('REGISTRY_UNAVAILABLE', `Pub/Sub schema service failed for ${name}: ${message}`, { cause: err });
  }
}

export interface ConfluentRegistryOptions {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  bearerToken?: string | undefined;
  timeoutMs: number;
}

/** A schema that references other subjects is resolved this deep at most. */
export const MAX_REFERENCE_DEPTH = 16;
/** And with at most this many referenced schemas in all (a wide graph costs requests too). */
export const MAX_REFERENCES = 256;

interface RegistrySchemaRecord {
  schema: string;
  references: Array<{ name: string; subject: string; version: number | string }>;
}

/**
 * Any Confluent-compatible registry (Confluent, Apicurio's ccompat API, Karapace, Redpanda):
 * `GET /schemas/ids/{id}`. A 404 is an unknown id (data error); a 401 or 403 refuses the worker's
 * credentials (REGISTRY_ACCESS_DENIED: nacked, readiness fails); anything else that is not a usable
 * answer means the registry is unavailable (retryable), garbage included. Schema
 * references (`references`: name/subject/version) are fetched recursively and inlined where each
 * referenced type is first used, as Avro Java writes a schema, so the result stands alone.
 */
export class ConfluentSchemaRegistry implements SchemaRegistry {
  readonly name = 'confluent';
  private readonly headers: Record<string, string>;
  private readonly base: string;
  /** Referenced subject versions never change: each is fetched once (a failed fetch is not kept). */
  private readonly versions = new Map<string, Promise<RegistrySchemaRecord>>();

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
    const record = await this.getSchema(`/schemas/ids/${ref.id}`, `id ${ref.id}`);
    return this.resolve(record, `id ${ref.id}`);
  }

  /** Every version of a subject, each self-contained: what single-object fingerprints are matched against. */
  async subjectSchemas(subject: string): Promise<Array<{ version: number; definition: string }>> {
    const what = `subject ${subject}`;
    const body = await this.getJson(`/subjects/${encodeURIComponent(subject)}/versions`, what);
    if (!Array.isArray(body) || !body.every((v) => Number.isSafeInteger(v))) {
      throw new TributaryError(
        'REGISTRY_UNAVAILABLE',
        `schema registry ${this.base} answered the versions of ${what} with something that is not a list of numbers`,
      );
    }
    const out: Array<{ version: number; definition: string }> = [];
    for (const version of body as number[]) {
      const record = await this.subjectVersion(subject, version);
      out.push({ version, definition: await this.resolve(record, `${what} version ${version}`) });
    }
    return out;
  }

  private async resolve(record: RegistrySchemaRecord, what: string): Promise<string> {
    if (record.references.length === 0) return record.schema;
    const named = new Map<string, unknown>();
    let fetched = 0;
    const collect = async (references: RegistrySchemaRecord['references'], path: readonly string[]): Promise<void> => {
      if (path.length > MAX_REFERENCE_DEPTH) {
        throw new TributaryError('SCHEMA_INVALID', `schema ${what} references schemas more than ${MAX_REFERENCE_DEPTH} levels deep (${path.join(' -> ')})`);
      }
      for (const reference of references) {
        const key = `${reference.subject}/${String(reference.version)}`;
        if (path.includes(key)) throw new TributaryError('SCHEMA_INVALID', `schema ${what} has a reference cycle: ${[...path, key].join(' -> ')}`);
        if (named.has(reference.name)) continue;
        if (++fetched > MAX_REFERENCES) throw new TributaryError('SCHEMA_INVALID', `schema ${what} references more than ${MAX_REFERENCES} schemas`);
        const referenced = await this.subjectVersion(reference.subject, reference.version);
        // Its own references first: they are defined before it uses them.
        await collect(referenced.references, [...path, key]);
        named.set(reference.name, parseSchemaJson(referenced.schema, `${reference.subject} version ${String(reference.version)}`));
      }
    };
    await collect(record.references, []);
    return JSON.stringify(inlineReferences(parseSchemaJson(record.schema, what), named, what));
  }

  private subjectVersion(subject: string, version: number | string): Promise<RegistrySchemaRecord> {
    const key = `${subject}/${String(version)}`;
    let pending = this.versions.get(key);
    if (pending === undefined) {
      if (this.versions.size >= 10_000) this.versions.clear();
      pending = this.getSchema(
        `/subjects/${encodeURIComponent(subject)}/versions/${encodeURIComponent(String(version))}`,
        `subject ${subject} version ${String(version)}`,
      );
      pending.catch(() => this.versions.delete(key));
      this.versions.set(key, pending);
    }
    return pending;
  }

  private async getSchema(path: string, what: string): Promise<RegistrySchemaRecord> {
    const record = (await this.getJson(path, what)) as { schema?: unknown; schemaType?: unknown; references?: unknown } | null;
    if (record === null || typeof record !== 'object' || typeof record.schema !== 'string') {
      throw new TributaryError('REGISTRY_UNAVAILABLE', `schema registry ${this.base} answered ${what} without a "schema" string`);
    }
    if (record.schemaType !== undefined && record.schemaType !== 'AVRO') {
      throw new TributaryError('SCHEMA_INVALID', `schema ${what} is of type ${String(record.schemaType).slice(0, 40)}, not AVRO`);
    }
    const references = record.references ?? [];
    if (
      !Array.isArray(references) ||
      !references.every(
        (r: unknown) =>
          r !== null &&
          typeof r === 'object' &&
          typeof (r as { name?: unknown }).name === 'string' &&
          typeof (r as { subject?: unknown }).subject === 'string' &&
          (typeof (r as { version?: unknown }).version === 'number' || typeof (r as { version?: unknown }).version === 'string'),
      )
    ) {
      throw new TributaryError('SCHEMA_INVALID', `schema ${what} has references that are not a list of {name, subject, version}`);
    }
    return { schema: record.schema, references: references as RegistrySchemaRecord['references'] };
  }

  private async getJson(path: string, what: string): Promise<unknown> {
    const url = `${this.base}${path}`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { headers: this.headers, signal: AbortSignal.timeout(this.options.timeoutMs) });
      text = await response.text();
    } catch (err) {
      const reason = (err as Error).name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs} ms` : describeFetchError(err);
      throw new TributaryError('REGISTRY_UNAVAILABLE', `schema registry ${this.base} unreachable for ${what}: ${reason}`, { cause: err });
    }
    if (response.status === 404) {
      throw new TributaryError('SCHEMA_NOT_FOUND', `schema ${what} not found in registry ${this.base}: ${text.slice(0, 200)}`);
    }
    // The registry refuses the worker's credentials, not the message: dead-lettering would empty the stream.
    if (response.status === 401 || response.status === 403) {
      throw new TributaryError(
        'REGISTRY_ACCESS_DENIED',
        `schema registry ${this.base} refuses the worker reading ${what} (${response.status}; check registry.confluent credentials): ${text.slice(0, 200)}`,
      );
    }
    if (!response.ok) {
      throw new TributaryError('REGISTRY_UNAVAILABLE', `schema registry ${this.base} answered ${response.status} for ${what}: ${text.slice(0, 200)}`);
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new TributaryError('REGISTRY_UNAVAILABLE', `schema registry ${this.base} answered ${what} with a body that is not JSON`);
    }
  }
}

function parseSchemaJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TributaryError('SCHEMA_INVALID', `schema ${what} is not valid JSON: ${(err as Error).message}`);
  }
}

const AVRO_PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

/**
 * Replaces the first use of each referenced type name with the referenced schema (itself inlined
 * the same way), and later uses with its full name. A name is matched as written or qualified by
 * the namespace in force where it is used.
 */
function inlineReferences(root: unknown, named: ReadonlyMap<string, unknown>, what: string): unknown {
  const inlined = new Set<string>();
  let budget = 100_000;
  const walk = (node: unknown, namespace: string | undefined, depth: number): unknown => {
    if (depth > 64 || --budget < 0) throw new TributaryError('SCHEMA_INVALID', `schema ${what} is too deep or too large to resolve its references`);
    if (typeof node === 'string') {
      if (AVRO_PRIMITIVES.has(node)) return node;
      const candidates = node.includes('.') || !namespace ? [node] : [`${namespace}.${node}`, node];
      for (const name of candidates) {
        const target = named.get(name);
        if (target === undefined) continue;
        if (inlined.has(name)) return name;
        inlined.add(name);
        return walk(target, undefined, depth + 1);
      }
      return node;
    }
    if (Array.isArray(node)) return node.map((branch) => walk(branch, namespace, depth + 1));
    if (node === null || typeof node !== 'object') return node;
    const o = node as Record<string, unknown>;
    let inner = namespace;
    if (typeof o.name === 'string' && (o.type === 'record' || o.type === 'error' || o.type === 'enum' || o.type === 'fixed')) {
      const dot = o.name.lastIndexOf('.');
      inner = dot > 0 ? o.name.slice(0, dot) : typeof o.namespace === 'string' ? o.namespace || undefined : namespace;
      const full = dot > 0 || inner === undefined ? o.name : `${inner}.${o.name}`;
      // A type the schema defines itself is not replaced by a reference of the same name.
      inlined.add(full);
    }
    const out: Record<string, unknown> = { ...o };
    if (typeof o.type !== 'string' || !['record', 'error', 'enum', 'fixed', 'array', 'map'].includes(o.type)) out.type = walk(o.type, namespace, depth + 1);
    if (Array.isArray(o.fields))
      out.fields = o.fields.map((f: unknown) =>
        f !== null && typeof f === 'object' ? { ...(f as object), type: walk((f as { type?: unknown }).type, inner, depth + 1) } : f,
      );
    if (o.items !== undefined) out.items = walk(o.items, namespace, depth + 1);
    if (o.values !== undefined) out.values = walk(o.values, namespace, depth + 1);
    return out;
  };
  return walk(root, undefined, 0);
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

/** File names are limited to 255 bytes on common file systems; ids are kept well inside it. */
export const MAX_SCHEMA_FILE_NAME_BYTES = 200;

/**
 * `.avsc` files named after the id: `<confluent id>.avsc` or `<schema name>@<revision>.avsc`
 * (the short schema name, without `projects/…/schemas/`). For development and tests.
 *
 * The name comes from the message, so one that cannot be a file name (empty, too long, control
 * bytes, a path separator, `..`) names no schema: a data error, decided before any file-system call
 * that would fail with an error indistinguishable from an unreadable directory.
 */
export class DirectorySchemaRegistry implements SchemaRegistry {
  readonly name = 'directory';

  constructor(private readonly directory: string) {}

  async fetch(ref: SchemaReference): Promise<string> {
    if (ref.kind === 'fingerprint') throw new TributaryError('SCHEMA_NOT_FOUND', 'a schema directory is searched by fingerprint through the fingerprint index');
    const file = ref.kind === 'confluent' ? `${ref.id}.avsc` : pubsubSchemaFile(ref.schema, ref.revisionId);
    try {
      return await readFile(join(this.directory, file), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        // A missing directory is the worker's configuration (or a volume not mounted yet), not every message's.
        const directoryThere = await stat(this.directory).then(
          (s) => s.isDirectory(),
          () => false,
        );
        if (!directoryThere) throw new TributaryError('REGISTRY_UNAVAILABLE', `schema directory ${this.directory} does not exist`);
        throw new TributaryError('SCHEMA_NOT_FOUND', `no schema file ${file} in ${this.directory}`);
      }
      // The name passed the checks above: what the file system says now is about the directory.
      if (code === 'EACCES' || code === 'EPERM')
        throw new TributaryError('REGISTRY_ACCESS_DENIED', `the worker may not read schema file ${file} in ${this.directory}: ${code}`);
      throw new TributaryError('REGISTRY_UNAVAILABLE', `cannot read schema file ${file}: ${code ?? (err as Error).message}`);
    }
  }
}

/** `<short schema name>@<revision>.avsc`, or SCHEMA_NOT_FOUND when the reference cannot be a file name. */
function pubsubSchemaFile(schema: string, revisionId: string): string {
  const short = schema.slice(schema.lastIndexOf('/') + 1);
  const why = invalidFileNamePart(short, 'schema name') ?? invalidFileNamePart(revisionId, 'revision id');
  const file = `${short}@${revisionId}.avsc`;
  if (why === undefined && Buffer.byteLength(file) <= MAX_SCHEMA_FILE_NAME_BYTES) return file;
  throw new TributaryError(
    'SCHEMA_NOT_FOUND',
    `schema reference ${quoteForMessage(`${schema}@${revisionId}`)} names no schema file: ${why ?? `the file name is longer than ${MAX_SCHEMA_FILE_NAME_BYTES} bytes`}`,
  );
}

/** Why a part of a schema reference cannot be part of a file name, or undefined when it can. */
function invalidFileNamePart(part: string, what: string): string | undefined {
  if (part === '') return `the ${what} is empty`;
  if (Buffer.byteLength(part) > MAX_SCHEMA_FILE_NAME_BYTES) return `the ${what} is longer than ${MAX_SCHEMA_FILE_NAME_BYTES} bytes`;
  if (/\p{Cc}/u.test(part)) return `the ${what} contains a control character`;
  if (part.includes('/') || part.includes('\\')) return `the ${what} contains a path separator`;
  if (part.includes('..')) return `the ${what} contains ".."`;
  return undefined;
}

/** `auto`: each message's reference picks the registry that can answer it. */
export class AutoSchemaRegistry implements SchemaRegistry {
  readonly name = 'auto';

  constructor(private readonly registries: { pubsub?: SchemaRegistry; confluent?: SchemaRegistry; directory?: SchemaRegistry }) {}

  fetch(ref: SchemaReference): Promise<string> {
    if (ref.kind === 'fingerprint') {
      return Promise.reject(
        new TributaryError('SCHEMA_NOT_FOUND', 'single-object fingerprints are resolved by the fingerprint index, which is not configured'),
      );
    }
    const registry = ref.kind === 'pubsub' ? (this.registries.pubsub ?? this.registries.directory) : (this.registries.confluent ?? this.registries.directory);
    if (!registry) {
      return Promise.reject(
        new TributaryError('SCHEMA_NOT_FOUND', `no registry configured for ${ref.kind === 'pubsub' ? 'Pub/Sub schema revisions' : 'Confluent schema ids'}`),
      );
    }
    return registry.fetch(ref);
  }
}
