import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PubSub } from '@google-cloud/pubsub';

/** `examples/demo/pubsub.json`: what the demo creates in the emulator. */
export interface PubSubManifest {
  schemas: Array<{ name: string; revisions: string[] }>;
  topics: Array<{ name: string; schema?: string; encoding?: 'BINARY' | 'JSON'; subscriptions: string[] }>;
}

export interface Provisioned {
  /** Schema name -> revision ids in the order of the manifest's files. */
  revisions: Map<string, string[]>;
  /** Schema name -> Avro definitions (JSON text) in the same order. */
  definitions: Map<string, string[]>;
}

const NOT_FOUND = 5;

async function ignoreNotFound(operation: Promise<unknown>): Promise<void> {
  try {
    await operation;
  } catch (err) {
    if ((err as { code?: number }).code !== NOT_FOUND) throw err;
  }
}

/**
 * Creates the manifest's schemas (each revision committed in order), topics and subscriptions,
 * after deleting any left by an earlier run against the same emulator: every run starts empty.
 */
export async function provision(
  pubsub: PubSub,
  manifestPath: string,
  projectId: string,
  extraSubscriptions: Array<{ topic: string; name: string }>,
): Promise<Provisioned> {
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as PubSubManifest;
  const base = join(manifestPath, '..');
  const subscriptions = [...manifest.topics.flatMap((t) => t.subscriptions.map((name) => ({ topic: t.name, name }))), ...extraSubscriptions];
  await Promise.all(subscriptions.map((s) => ignoreNotFound(pubsub.subscription(s.name).delete())));
  await Promise.all(manifest.topics.map((t) => ignoreNotFound(pubsub.topic(t.name).delete())));
  const schemaClient = await pubsub.getSchemaClient();
  const revisions = new Map<string, string[]>();
  const definitions = new Map<string, string[]>();
  for (const schema of manifest.schemas) {
    const path = `projects/${projectId}/schemas/${schema.name}`;
    await ignoreNotFound(schemaClient.deleteSchema({ name: path }));
    const ids: string[] = [];
    const texts: string[] = [];
    for (const [i, file] of schema.revisions.entries()) {
      const definition = await readFile(join(base, file), 'utf8');
      const [created] =
        i === 0
          ? await schemaClient.createSchema({ parent: `projects/${projectId}`, schemaId: schema.name, schema: { type: 'AVRO', definition } })
          : await schemaClient.commitSchema({ name: path, schema: { name: path, type: 'AVRO', definition } });
      if (!created.revisionId) throw new Error(`the schema service returned no revision id for ${schema.name}`);
      ids.push(created.revisionId);
      texts.push(definition);
    }
    revisions.set(schema.name, ids);
    definitions.set(schema.name, texts);
  }
  for (const topic of manifest.topics) {
    const ids = topic.schema !== undefined ? revisions.get(topic.schema) : undefined;
    await pubsub.createTopic({
      name: topic.name,
      ...(topic.schema !== undefined
        ? {
            schemaSettings: {
              schema: `projects/${projectId}/schemas/${topic.schema}`,
              encoding: topic.encoding ?? 'BINARY',
              ...(ids && ids.length > 0 ? { firstRevisionId: ids[0], lastRevisionId: ids[ids.length - 1] } : {}),
            },
          }
        : {}),
    });
  }
  for (const s of subscriptions) await pubsub.topic(s.topic).createSubscription(s.name, { ackDeadlineSeconds: 60 });
  return { revisions, definitions };
}
