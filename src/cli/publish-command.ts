import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { PubSub } from '@google-cloud/pubsub';
import { createRegistry } from '../app.js';
import { loadConfig, topicPath } from '../config.js';
import { compileSchema } from '../core/schema-cache.js';
import type { Framing } from '../core/schema-reference.js';
import { ProgressBar } from '../demo/progress-bar.js';
import { TributaryError } from '../errors.js';
import { parseAttributes, UsageError } from './inspect-command.js';
import { createPayloadEncoder, FRAMINGS } from './payload-encoder.js';

export const PUBLISH_USAGE = `Usage:
  tributary publish --topic T --framing F (--schema FILE.avsc | --schema-id N) --jsonl FILE [options]

Encodes each JSON line (Avro's JSON encoding: a union value names its branch, {"string": "x"})
with the schema and publishes it in the framing F:
  pubsub-schema    the bare Avro body; the topic must have schema settings (Pub/Sub adds the
                   schema attributes); JSON-encoded topics get the JSON text
  confluent        0x00 + the 4-byte schema id (--schema-id) + the body
  single-object    0xC3 0x01 + the schema's CRC-64-AVRO fingerprint + the body
  container-file   an Avro object container file with the schema in its header

Options:
  --config FILE             read projectId and the registry from the worker's config
  --project ID              the project (default: the config's, or GOOGLE_CLOUD_PROJECT)
  --schema-id N             a Confluent id: the header's id; the schema is fetched from the
                            config's registry when --schema is not given
  --records-per-message N   container-file: records per file (default 1)
  --codec null|deflate      container-file codec (default null)
  --attributes k=v,...      attributes on every message
  --batch N                 messages published concurrently (default 500)
`;

export async function runPublish(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      project: { type: 'string' },
      topic: { type: 'string' },
      framing: { type: 'string' },
      schema: { type: 'string' },
      'schema-id': { type: 'string' },
      jsonl: { type: 'string' },
      'records-per-message': { type: 'string' },
      codec: { type: 'string' },
      attributes: { type: 'string', multiple: true },
      batch: { type: 'string' },
    },
  });
  const framing = values.framing as Framing | undefined;
  if (framing === undefined || !FRAMINGS.includes(framing)) throw new UsageError(`--framing must be one of ${FRAMINGS.join(', ')}`);
  if (values.topic === undefined) throw new UsageError('--topic is required');
  if (values.jsonl === undefined) throw new UsageError('--jsonl is required');
  if (values.schema === undefined && values['schema-id'] === undefined) throw new UsageError('give --schema FILE or --schema-id N');
  const schemaId = values['schema-id'] === undefined ? undefined : Number(values['schema-id']);
  if (schemaId !== undefined && (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > 0xffffffff))
    throw new UsageError('--schema-id must be a 32-bit unsigned integer');
  if (framing === 'confluent' && schemaId === undefined) throw new UsageError('the confluent framing needs --schema-id');
  const perMessage = Number(values['records-per-message'] ?? '1');
  if (!Number.isInteger(perMessage) || perMessage < 1 || (framing !== 'container-file' && perMessage !== 1))
    throw new UsageError('--records-per-message is a positive integer, above 1 only for container-file');
  const codec = values.codec ?? 'null';
  if (codec !== 'null' && codec !== 'deflate') throw new UsageError('--codec must be null or deflate');
  const batch = Number(values.batch ?? '500');
  if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) throw new UsageError('--batch must be an integer from 1 to 10000');
  const attributes = parseAttributes(values.attributes ?? []);

  const config = values.config !== undefined ? await loadConfig(values.config, process.env) : undefined;
  const projectId = values.project ?? config?.projectId ?? process.env.GOOGLE_CLOUD_PROJECT;
  if (!projectId) throw new UsageError('no project: pass --project, --config or set GOOGLE_CLOUD_PROJECT');
  const pubsub = new PubSub({ projectId });
  try {
    let schemaText: string;
    if (values.schema !== undefined) schemaText = await readFile(values.schema, 'utf8');
    else {
      if (!config) throw new UsageError('--schema-id without --schema needs --config (the registry to fetch the schema from)');
      schemaText = await createRegistry(config, pubsub).fetch({ kind: 'confluent', id: schemaId as number });
    }
    const schema = compileSchema(values.schema ?? `confluent:${String(schemaId)}`, schemaText);
    const topic = pubsub.topic(topicPath(projectId, values.topic), { batching: { maxMessages: 1000, maxMilliseconds: 10 } });
    let jsonEncoded = false;
    if (framing === 'pubsub-schema') {
      const [metadata] = await topic.getMetadata();
      if (!metadata.schemaSettings?.schema)
        throw new UsageError(`topic ${values.topic} has no schema settings: Pub/Sub would add no schema attributes; pick another framing`);
      jsonEncoded = metadata.schemaSettings.encoding === 'JSON';
    }
    const encoder = createPayloadEncoder({ framing, schema, schemaText, ...(schemaId !== undefined ? { schemaId } : {}), codec });
    const lines = (await readFile(values.jsonl, 'utf8'))
      .split('\n')
      .map((text, i) => ({ text, number: i + 1 }))
      .filter((l) => l.text.trim() !== '');
    const records = lines.map((l) => encoder.parse(l.text, l.number));
    const payloads: Buffer[] = [];
    for (let i = 0; i < records.length; i += perMessage) {
      const group = records.slice(i, i + perMessage);
      payloads.push(jsonEncoded ? Buffer.from(schema.type.toString(group[0])) : encoder.encode(group));
    }
    const progress = new ProgressBar('published', payloads.length);
    let published = 0;
    let bytes = 0;
    for (let i = 0; i < payloads.length; i += batch) {
      const chunk = payloads.slice(i, i + batch);
      await Promise.all(chunk.map((data) => topic.publishMessage({ data, attributes })));
      published += chunk.length;
      bytes += chunk.reduce((n, b) => n + b.length, 0);
      progress.update(published);
    }
    progress.done();
    out.write(
      `${JSON.stringify({ published, records: records.length, bytes, framing, topic: topicPath(projectId, values.topic), schema: schema.recordName })}\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof TributaryError) throw new UsageError(err.message);
    throw err;
  } finally {
    await pubsub.close().catch(() => undefined);
  }
}
