import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PubSub } from '@google-cloud/pubsub';
import { TributaryError } from '../errors.js';
import { FingerprintIndex, FingerprintSchemaRegistry, type KnownSchema, type SchemaSource } from '../core/fingerprint-index.js';
import type { Logger } from '../core/ports.js';
import type { SchemaRegistry } from '../core/schema-cache.js';
import type { ConfluentSchemaRegistry } from './schema-registries.js';
import { withTimeout } from './with-timeout.js';

const LIST_TIMEOUT_MS = 30_000;
const GRPC_NOT_FOUND = 5;

/** Every `.avsc` file of a schema directory. */
export function directorySchemaSource(directory: string): SchemaSource {
  return {
    name: `directory ${directory}`,
    async list(): Promise<KnownSchema[]> {
      let files: string[];
      try {
        files = (await readdir(directory)).filter((f) => f.endsWith('.avsc')).sort();
      } catch (err) {
        throw new TributaryError(
          'REGISTRY_UNAVAILABLE',
          `cannot list schema directory ${directory}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      return Promise.all(files.map(async (file) => ({ source: `directory:${file}`, definition: await readFile(join(directory, file), 'utf8') })));
    },
  };
}

/** Every revision of the named Pub/Sub schemas. */
export function pubsubSchemaSource(pubsub: PubSub, projectId: string, schemas: readonly string[]): SchemaSource {
  return {
    name: 'Pub/Sub schemas',
    async list(): Promise<KnownSchema[]> {
      const client = await pubsub.getSchemaClient();
      const out: KnownSchema[] = [];
      for (const schema of schemas) {
        const name = schema.startsWith('projects/') ? schema : `projects/${projectId}/schemas/${schema}`;
        let revisions;
        try {
          [revisions] = await withTimeout(
            client.listSchemaRevisions({ name, view: 'FULL' }),
            LIST_TIMEOUT_MS,
            () => new Error(`no answer within ${LIST_TIMEOUT_MS} ms`),
          );
        } catch (err) {
          // A schema not created yet holds nothing to match, as a Confluent subject not registered yet.
          if ((err as { code?: unknown }).code === GRPC_NOT_FOUND) continue;
          throw new TributaryError('REGISTRY_UNAVAILABLE', `cannot list the revisions of Pub/Sub schema ${name}: ${(err as Error).message}`, { cause: err });
        }
        for (const revision of revisions) {
          if ((revision.type === 'AVRO' || revision.type === 1) && revision.definition) {
            out.push({ source: `pubsub:${name}@${revision.revisionId ?? '?'}`, definition: revision.definition });
          }
        }
      }
      return out;
    },
  };
}

/** Every version of the named Confluent subjects, references resolved. */
export function confluentSubjectSource(registry: ConfluentSchemaRegistry, subjects: readonly string[]): SchemaSource {
  return {
    name: 'Confluent subjects',
    async list(): Promise<KnownSchema[]> {
      const out: KnownSchema[] = [];
      for (const subject of subjects) {
        let versions: Array<{ version: number; definition: string }>;
        try {
          versions = await registry.subjectSchemas(subject);
        } catch (err) {
          // A subject not registered yet, or one that does not resolve, holds nothing to match;
          // only a registry that cannot answer makes the index unavailable.
          if (err instanceof TributaryError && err.errorClass === 'data') continue;
          throw err;
        }
        for (const { version, definition } of versions) out.push({ source: `confluent:${subject}/${version}`, definition });
      }
      return out;
    },
  };
}

export interface FingerprintSourcesConfig {
  projectId: string;
  directory?: string | undefined;
  pubsubSchemas: readonly string[];
  confluentSubjects: readonly string[];
  minRefreshIntervalMs: number;
}

/**
 * Wraps the configured registry so single-object messages are resolved by fingerprint against
 * every schema the worker knows; starts indexing at once (a failure there is retried by the first
 * message that needs the index).
 */
export function withFingerprintIndex(
  registry: SchemaRegistry,
  config: FingerprintSourcesConfig,
  deps: { pubsub: PubSub; confluent: ConfluentSchemaRegistry | undefined; now: () => number; logger?: Logger },
): { registry: SchemaRegistry; index: FingerprintIndex } {
  const sources: SchemaSource[] = [];
  if (config.directory) sources.push(directorySchemaSource(config.directory));
  if (config.pubsubSchemas.length > 0) sources.push(pubsubSchemaSource(deps.pubsub, config.projectId, config.pubsubSchemas));
  if (config.confluentSubjects.length > 0) {
    if (!deps.confluent) throw new TributaryError('SCHEMA_NOT_FOUND', 'registry.fingerprints.confluentSubjects needs registry.confluent');
    sources.push(confluentSubjectSource(deps.confluent, config.confluentSubjects));
  }
  const logger = deps.logger;
  const index = new FingerprintIndex(sources, {
    now: deps.now,
    minRefreshIntervalMs: config.minRefreshIntervalMs,
    onRefresh: (indexed, skipped) => {
      logger?.info({ schemas: indexed, skipped: skipped.length }, 'Schemas indexed by single-object fingerprint.');
      for (const s of skipped.slice(0, 20)) logger?.warn({ source: s.source, reason: s.reason }, 'Schema not indexed by fingerprint.');
    },
  });
  if (sources.length > 0) index.refresh().catch(() => undefined);
  return { registry: new FingerprintSchemaRegistry(registry, index), index };
}
