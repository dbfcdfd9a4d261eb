import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DirectorySchemaRegistry, MAX_SCHEMA_FILE_NAME_BYTES, PubSubSchemaRegistry, type SchemaService } from '../../src/adapters/schema-registries.js';
import type { SchemaReference } from '../../src/core/schema-reference.js';
import { actionFor } from '../../src/core/failure-policy.js';
import { TributaryError } from '../../src/errors.js';

const definition = JSON.stringify({ type: 'record', name: 'Access', fields: [{ name: 'path', type: 'string' }] });

async function failure(promise: Promise<unknown>): Promise<TributaryError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof TributaryError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

const pubsubRef = (schema: string, revisionId = 'a1b2c3d4'): SchemaReference => ({ kind: 'pubsub', schema, revisionId, encoding: 'BINARY' });

describe('DirectorySchemaRegistry: ids that cannot be file names are data errors, decided before the file system', () => {
  // A regular file as the directory: any read under it fails with ENOTDIR, which the registry
  // reports as REGISTRY_UNAVAILABLE. A SCHEMA_NOT_FOUND here therefore proves no read was tried.
  const notADirectory = fileURLToPath(import.meta.url);
  const registry = new DirectorySchemaRegistry(notADirectory);

  it.each([
    ['an over-long schema name', pubsubRef(`projects/p/schemas/${'s'.repeat(MAX_SCHEMA_FILE_NAME_BYTES + 1)}`), 'longer than'],
    ['a file name over the limit from two parts within it', pubsubRef(`projects/p/schemas/${'s'.repeat(150)}`, 'r'.repeat(60)), 'longer than'],
    ['a NUL byte in the schema name', pubsubRef('projects/p/schemas/logs\u0000x'), 'control character'],
    ['a NUL byte in the revision id', pubsubRef('projects/p/schemas/logs', 'r1\u0000'), 'control character'],
    ['a newline in the revision id', pubsubRef('projects/p/schemas/logs', 'r1\nr2'), 'control character'],
    ['a DEL in the schema name', pubsubRef('projects/p/schemas/lo\u007fgs'), 'control character'],
    ['a path separator in the revision id', pubsubRef('projects/p/schemas/logs', '../../etc/passwd'), 'path separator'],
    ['a backslash in the schema name', pubsubRef('projects/p/schemas/..\\..\\x'), 'path separator'],
    ['".." as the schema name', pubsubRef('projects/p/schemas/..'), '".."'],
    ['an empty schema name', pubsubRef('projects/p/schemas/'), 'empty'],
    ['an empty revision id', pubsubRef('projects/p/schemas/logs', ''), 'empty'],
  ])('%s → SCHEMA_NOT_FOUND, dead-lettered', async (_what, ref, why) => {
    const error = await failure(registry.fetch(ref));
    expect(error.code).toBe('SCHEMA_NOT_FOUND');
    expect(error.message).toContain('names no schema file');
    expect(error.message).toContain(why);
    expect(actionFor(error)).toBe('dead-letter');
    // Control bytes are escaped in the message, never written raw into a log line or attribute.
    expect(error.message).not.toMatch(/\p{Cc}/u);
  });

  it('a valid name reaches the file system: a directory that cannot be read is REGISTRY_UNAVAILABLE, not a data error', async () => {
    const error = await failure(registry.fetch(pubsubRef('projects/p/schemas/logs', 'abc123')));
    expect(error.code).toBe('REGISTRY_UNAVAILABLE');
    expect(error.message).toContain('ENOTDIR');
  });

  it('reads a schema file named after the id, and a missing one is SCHEMA_NOT_FOUND', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tributary-directory-'));
    await writeFile(join(dir, 'logs@abc123.avsc'), definition);
    await writeFile(join(dir, '7.avsc'), definition);
    const ok = new DirectorySchemaRegistry(dir);
    await expect(ok.fetch(pubsubRef('projects/p/schemas/logs', 'abc123'))).resolves.toBe(definition);
    await expect(ok.fetch({ kind: 'confluent', id: 7 })).resolves.toBe(definition);
    const missing = await failure(ok.fetch(pubsubRef('projects/p/schemas/logs', 'zzz')));
    expect(missing.code).toBe('SCHEMA_NOT_FOUND');
    expect(missing.message).toContain('no schema file logs@zzz.avsc');
  });

  it('a schema directory that does not exist is the configuration, not the message: REGISTRY_UNAVAILABLE, never dead-lettered', async () => {
    const gone = new DirectorySchemaRegistry(join(tmpdir(), 'tributary-no-such-directory', 'schemas'));
    const error = await failure(gone.fetch({ kind: 'confluent', id: 7 }));
    expect(error.code).toBe('REGISTRY_UNAVAILABLE');
    expect(error.message).toContain('does not exist');
  });
});

/** A gRPC error as google-gax rejects with it: an Error with a numeric `code` and the status in the message. */
function grpcError(code: number, status: string, details: string): Error {
  return Object.assign(new Error(`${code} ${status}: ${details}`), { code, details });
}

/** The schema service as the registry reaches it; `projectId` resolves on the first client, like the real client's. */
function schemaService(
  answer: (name: string) => Promise<{ type?: unknown; definition?: string | null }>,
  projectId = 'worker-project',
): SchemaService & { names: string[] } {
  const names: string[] = [];
  const service = {
    projectId: '{{projectId}}',
    names,
    async getSchemaClient() {
      service.projectId = projectId;
      return {
        async getSchema(request: { name: string; view: 'FULL' }): Promise<[{ type?: unknown; definition?: string | null }]> {
          names.push(request.name);
          return [await answer(request.name)];
        },
      };
    },
  };
  return service;
}

const denied = (): Promise<never> => Promise.reject(grpcError(7, 'PERMISSION_DENIED', 'User not authorized to perform this action.'));
const notFound = (): Promise<never> => Promise.reject(grpcError(5, 'NOT_FOUND', 'Resource not found (resource=logs).'));

describe('PubSubSchemaRegistry: data error or configuration fault, by whose project the reference names', () => {
  it('reads the exact revision a message names', async () => {
    const service = schemaService(async () => ({ type: 'AVRO', definition }));
    await expect(new PubSubSchemaRegistry(service).fetch(pubsubRef('projects/worker-project/schemas/logs', 'a1b2c3d4'))).resolves.toBe(definition);
    expect(service.names).toEqual(['projects/worker-project/schemas/logs@a1b2c3d4']);
  });

  it.each([
    ['a bare schema id', pubsubRef('logs')],
    ['a topic instead of a schema', pubsubRef('projects/worker-project/topics/logs')],
    ['an empty schema id', pubsubRef('projects/worker-project/schemas/')],
    ['an extra path segment', pubsubRef('projects/worker-project/schemas/logs/extra')],
    ['an empty project', pubsubRef('projects//schemas/logs')],
    ['a space', pubsubRef('projects/worker-project/schemas/lo gs')],
    ['a NUL byte', pubsubRef('projects/worker-project/schemas/logs\u0000')],
    ['a revision that names another', pubsubRef('projects/worker-project/schemas/logs', 'a1@b2')],
    ['a revision with a path', pubsubRef('projects/worker-project/schemas/logs', '../x')],
    ['an over-long revision', pubsubRef('projects/worker-project/schemas/logs', 'r'.repeat(65))],
  ])('a malformed reference (%s) is SCHEMA_NOT_FOUND without asking the service', async (_what, ref) => {
    const service = schemaService(async () => ({ type: 'AVRO', definition }));
    const error = await failure(new PubSubSchemaRegistry(service).fetch(ref));
    expect(error.code).toBe('SCHEMA_NOT_FOUND');
    expect(error.message).toMatch(/is not a Pub\/Sub (schema name|revision id)/);
    expect(actionFor(error)).toBe('dead-letter');
    expect(service.names).toEqual([]);
  });

  it("PERMISSION_DENIED for another project's schema is a forged or foreign reference: SCHEMA_NOT_FOUND naming the project, dead-lettered", async () => {
    const error = await failure(new PubSubSchemaRegistry(schemaService(denied)).fetch(pubsubRef('projects/someone-else/schemas/logs')));
    expect(error.code).toBe('SCHEMA_NOT_FOUND');
    expect(error.message).toContain('in project someone-else');
    expect(error.message).toContain("not the worker's project worker-project");
    expect(error.message).toContain('PERMISSION_DENIED');
    expect(actionFor(error)).toBe('dead-letter');
  });

  it("NOT_FOUND for another project's schema is SCHEMA_NOT_FOUND naming the project", async () => {
    const error = await failure(new PubSubSchemaRegistry(schemaService(notFound)).fetch(pubsubRef('projects/someone-else/schemas/logs')));
    expect(error.code).toBe('SCHEMA_NOT_FOUND');
    expect(error.message).toContain('in project someone-else');
  });

  it("NOT_FOUND in the worker's own project is SCHEMA_NOT_FOUND", async () => {
    const error = await failure(new PubSubSchemaRegistry(schemaService(notFound)).fetch(pubsubRef('projects/worker-project/schemas/logs')));
    expect(error.code).toBe('SCHEMA_NOT_FOUND');
  });

  it("PERMISSION_DENIED in the worker's own project is its service account lacking pubsub.schemas.get: REGISTRY_ACCESS_DENIED, nacked, never dead-lettered", async () => {
    const error = await failure(new PubSubSchemaRegistry(schemaService(denied)).fetch(pubsubRef('projects/worker-project/schemas/logs')));
    expect(error.code).toBe('REGISTRY_ACCESS_DENIED');
    expect(error.message).toContain('own project worker-project');
    expect(error.message).toContain('pubsub.schemas.get');
    expect(actionFor(error)).toBe('retry');
  });

  it('the own project is the one the client resolved, read after the client exists', async () => {
    // The service resolves the project id on the first client; before it, the placeholder would make every project foreign.
    const error = await failure(new PubSubSchemaRegistry(schemaService(denied, 'resolved-project')).fetch(pubsubRef('projects/resolved-project/schemas/logs')));
    expect(error.code).toBe('REGISTRY_ACCESS_DENIED');
  });

  it('a project named by number cannot be told from the own one: a denial is a configuration fault', async () => {
    const error = await failure(new PubSubSchemaRegistry(schemaService(denied)).fetch(pubsubRef('projects/123456789012/schemas/logs')));
    expect(error.code).toBe('REGISTRY_ACCESS_DENIED');
  });

  it('an own project the client could not resolve makes every denial a configuration fault', async () => {
    const error = await failure(new PubSubSchemaRegistry(schemaService(denied, '')).fetch(pubsubRef('projects/someone-else/schemas/logs')));
    expect(error.code).toBe('REGISTRY_ACCESS_DENIED');
  });

  it("UNAUTHENTICATED is the worker's credentials: REGISTRY_ACCESS_DENIED whatever the project", async () => {
    const unauthenticated = (): Promise<never> => Promise.reject(grpcError(16, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.'));
    const error = await failure(new PubSubSchemaRegistry(schemaService(unauthenticated)).fetch(pubsubRef('projects/someone-else/schemas/logs')));
    expect(error.code).toBe('REGISTRY_ACCESS_DENIED');
  });

  it('UNAVAILABLE and other failures stay REGISTRY_UNAVAILABLE', async () => {
    const unavailable = (): Promise<never> => Promise.reject(grpcError(14, 'UNAVAILABLE', 'No connection established.'));
    const error = await failure(new PubSubSchemaRegistry(schemaService(unavailable)).fetch(pubsubRef('projects/someone-else/schemas/logs')));
    expect(error.code).toBe('REGISTRY_UNAVAILABLE');
  });

  it('a schema that is not Avro is SCHEMA_INVALID', async () => {
    const error = await failure(
      new PubSubSchemaRegistry(schemaService(async () => ({ type: 'PROTOCOL_BUFFER', definition: 'syntax = "proto3";' }))).fetch(
        pubsubRef('projects/worker-project/schemas/logs'),
      ),
    );
    expect(error.code).toBe('SCHEMA_INVALID');
  });
});
