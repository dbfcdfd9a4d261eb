import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An in-process stand-in for a Confluent Schema Registry, for tests. It answers the reads a
 * consumer needs, with Confluent's shapes:
 *
 *   GET /schemas/ids/{id}
 *     200 {"schema": "<schema as a JSON string>"}
 *         + "schemaType" only when it is not AVRO, + "references" only when there are some
 *     404 {"error_code": 40403, "message": "Schema 7 not found"}
 *   GET /subjects/{subject}/versions
 *     200 [1, 2, 3]   404 {"error_code": 40401, ...}
 *   GET /subjects/{subject}/versions/{version|latest}
 *     200 {"subject", "version", "id", "schema"} (+ "schemaType", "references" as above)
 *     404 {"error_code": 40401, "message": "Subject 'x' not found."}
 *     404 {"error_code": 40402, "message": "Version 3 not found."}
 *     422 {"error_code": 42202, "message": "The specified version '0' is not a valid version id. ..."}
 *
 * With `setAuth`, a missing or wrong Authorization header answers
 *   401 {"error_code": 401, "message": "Unauthorized"} (and a WWW-Authenticate header).
 * Every answer has Content-Type `application/vnd.schemaregistry.v1+json`.
 */

export const SCHEMA_REGISTRY_CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

export type RegistrySchemaType = 'AVRO' | 'JSON' | 'PROTOBUF';

/** Confluent's reference to another registered schema: `name` as used in the referring schema. */
export interface RegistrySchemaReference {
  name: string;
  subject: string;
  version: number;
}

export interface RegisterOptions {
  /** Default AVRO (and then no `schemaType` in answers, like Confluent). */
  schemaType?: RegistrySchemaType;
  references?: RegistrySchemaReference[];
  /** Also registers the schema as `subject` version `version` (default: next version), for references. */
  subject?: string;
  version?: number;
}

export type RegistryAuth = { username: string; password: string } | { bearer: string } | null;

/**
 * - `true` / `'not-json'`: 200 with an HTML body;
 * - `'wrong-shape'`: 200 with JSON that has no string `schema`;
 * - `'bad-schema'`: 200 `{"schema": "{not json"}`: the right shape, an unparseable schema;
 * - `false`: normal answers.
 */
export type GarbageMode = boolean | 'not-json' | 'wrong-shape' | 'bad-schema';

export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. `/schemas/ids/42`. */
  path: string;
  /** The query string with its `?`, or ''. */
  query: string;
  authorization?: string;
}

export interface ConfluentRegistryServer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string;
  register(id: number, schema: object | string, options?: RegisterOptions): void;
  setAuth(auth: RegistryAuth): void;
  /** The next `n` requests answer `status` (default 500) with a Confluent error body, or drop the connection with `'reset'`. */
  failNext(n: number, status?: number | 'reset'): void;
  /** Delay every answer by `ms`. */
  setLatency(ms: number): void;
  setGarbage(mode: GarbageMode): void;
  /** Every request received, in order (also the failed and unauthorized ones). */
  readonly requests: RecordedRequest[];
  /** Forgets schemas, auth, failures, latency, garbage and recorded requests. */
  reset(): void;
  close(): Promise<void>;
}

export interface StartConfluentRegistryServerOptions {
  /** Default 0: a free port. */
  port?: number;
}

interface StoredSchema {
  id: number;
  schema: string;
  schemaType: RegistrySchemaType;
  references: RegistrySchemaReference[];
}

function schemaBody(stored: StoredSchema): Record<string, unknown> {
  return {
    schema: stored.schema,
    ...(stored.schemaType !== 'AVRO' ? { schemaType: stored.schemaType } : {}),
    ...(stored.references.length > 0 ? { references: stored.references } : {}),
  };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': SCHEMA_REGISTRY_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function errorBody(status: number): { error_code: number; message: string } {
  switch (status) {
    case 500:
      return { error_code: 50001, message: 'Error in the backend data store' };
    case 502:
      return { error_code: 502, message: 'Bad Gateway' };
    case 503:
      return { error_code: 50003, message: 'Error while forwarding the request to the primary' };
    case 429:
      return { error_code: 429, message: 'Too Many Requests' };
    case 401:
      return { error_code: 401, message: 'Unauthorized' };
    case 403:
      return { error_code: 403, message: 'Forbidden' };
    default:
      return { error_code: status, message: `HTTP ${status}` };
  }
}

export async function startConfluentRegistryServer(options: StartConfluentRegistryServerOptions = {}): Promise<ConfluentRegistryServer> {
  const byId = new Map<number, StoredSchema>();
  const bySubject = new Map<string, Map<number, StoredSchema>>();
  const requests: RecordedRequest[] = [];
  let auth: RegistryAuth = null;
  let failures: Array<number | 'reset'> = [];
  let latencyMs = 0;
  let garbage: GarbageMode = false;
  const timers = new Set<NodeJS.Timeout>();

  function expectedAuthorization(): string | undefined {
    if (auth === null) return undefined;
    if ('bearer' in auth) return `Bearer ${auth.bearer}`;
    return `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`;
  }

  function answerSubjectVersion(res: ServerResponse, subject: string, version: string): void {
    const versions = bySubject.get(subject);
    if (versions === undefined || versions.size === 0) {
      send(res, 404, { error_code: 40401, message: `Subject '${subject}' not found.` });
      return;
    }
    let number: number;
    if (version === 'latest' || version === '-1') {
      number = Math.max(...versions.keys());
    } else if (/^\d+$/.test(version) && Number(version) >= 1 && Number(version) <= 2 ** 31 - 1) {
      number = Number(version);
    } else {
      send(res, 422, {
        error_code: 42202,
        message: `The specified version '${version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`,
      });
      return;
    }
    const stored = versions.get(number);
    if (stored === undefined) {
      send(res, 404, { error_code: 40402, message: `Version ${number} not found.` });
      return;
    }
    send(res, 200, { subject, version: number, id: stored.id, ...schemaBody(stored) });
  }

  function answer(req: IncomingMessage, res: ServerResponse): void {
    const failure = failures.shift();
    if (failure === 'reset') {
      req.socket.destroy();
      return;
    }
    if (failure !== undefined) {
      send(res, failure, errorBody(failure));
      return;
    }
    const expected = expectedAuthorization();
    if (expected !== undefined && req.headers.authorization !== expected) {
      send(res, 401, errorBody(401), { 'WWW-Authenticate': 'Basic realm="SchemaRegistry"' });
      return;
    }
    if (garbage === true || garbage === 'not-json') {
      send(res, 200, '<html><body>502 Bad Gateway (but with status 200)</body></html>');
      return;
    }
    if (garbage === 'wrong-shape') {
      send(res, 200, { schemas: 42, note: 'no schema here' });
      return;
    }
    if (garbage === 'bad-schema') {
      send(res, 200, { schema: '{not json' });
      return;
    }
    if (req.method !== 'GET') {
      send(res, 405, { error_code: 405, message: 'HTTP 405 Method Not Allowed' });
      return;
    }
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const idMatch = /^\/schemas\/ids\/([^/]+)\/?$/.exec(path);
    if (idMatch) {
      const raw = decodeURIComponent(idMatch[1] ?? '');
      const stored = /^-?\d+$/.test(raw) ? byId.get(Number(raw)) : undefined;
      if (stored === undefined) {
        send(res, 404, { error_code: 40403, message: `Schema ${raw} not found` });
      } else {
        send(res, 200, schemaBody(stored));
      }
      return;
    }
    const listMatch = /^\/subjects\/([^/]+)\/versions\/?$/.exec(path);
    if (listMatch) {
      const subject = decodeURIComponent(listMatch[1] ?? '');
      const versions = bySubject.get(subject);
      if (versions === undefined || versions.size === 0) send(res, 404, { error_code: 40401, message: `Subject '${subject}' not found.` });
      else
        send(
          res,
          200,
          [...versions.keys()].sort((a, b) => a - b),
        );
      return;
    }
    const versionMatch = /^\/subjects\/([^/]+)\/versions\/([^/]+)\/?$/.exec(path);
    if (versionMatch) {
      answerSubjectVersion(res, decodeURIComponent(versionMatch[1] ?? ''), decodeURIComponent(versionMatch[2] ?? ''));
      return;
    }
    send(res, 404, { error_code: 404, message: 'HTTP 404 Not Found' });
  }

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    requests.push({
      method: req.method ?? 'GET',
      path: queryAt < 0 ? url : url.slice(0, queryAt),
      query: queryAt < 0 ? '' : url.slice(queryAt),
      ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
    });
    // Read (and drop) any body before answering.
    req.resume();
    if (latencyMs > 0) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!res.destroyed) answer(req, res);
      }, latencyMs);
      timers.add(timer);
    } else {
      answer(req, res);
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    register(id, schema, registerOptions = {}) {
      if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError(`schema id must be a 32-bit unsigned integer, got ${id}`);
      const stored: StoredSchema = {
        id,
        schema: typeof schema === 'string' ? schema : JSON.stringify(schema),
        schemaType: registerOptions.schemaType ?? 'AVRO',
        references: registerOptions.references ?? [],
      };
      byId.set(id, stored);
      if (registerOptions.subject !== undefined) {
        let versions = bySubject.get(registerOptions.subject);
        if (versions === undefined) {
          versions = new Map();
          bySubject.set(registerOptions.subject, versions);
        }
        const version = registerOptions.version ?? (versions.size === 0 ? 1 : Math.max(...versions.keys()) + 1);
        versions.set(version, stored);
      }
    },
    setAuth(next) {
      auth = next;
    },
    failNext(n, status = 500) {
      for (let i = 0; i < n; i++) failures.push(status);
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    setGarbage(mode) {
      garbage = mode;
    },
    reset() {
      byId.clear();
      bySubject.clear();
      requests.length = 0;
      auth = null;
      failures = [];
      latencyMs = 0;
      garbage = false;
    },
    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
