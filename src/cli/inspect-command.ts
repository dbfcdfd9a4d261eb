import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { PubSub } from '@google-cloud/pubsub';
import { createRegistry } from '../app.js';
import { PubSubPullReader } from '../adapters/pubsub-pull-reader.js';
import { loadConfig, subscriptionPath, type Config } from '../config.js';
import { EmbeddedSchemaCache } from '../core/container-file.js';
import { createRouter } from '../core/router.js';
import { SchemaCache } from '../core/schema-cache.js';
import { fingerprintAsSignedLong, fingerprintSchema } from '../core/schema-fingerprint.js';
import { formatInspected, inspectMessage, type InspectDeps } from './inspect-message.js';

export const INSPECT_USAGE = `Usage:
  tributary inspect --config FILE --file PAYLOAD [--attributes k=v,...] [--json]
  tributary inspect --config FILE --subscription SUB [--max N] [--wait SECONDS] [--json]
  tributary inspect --schema FILE.avsc

Prints, per message: framing, schema reference, schema name, each record as JSON, the route and
table it would take and the row it would become, or the exact reason it would be dead-lettered.
Messages pulled from a subscription are handed back unacked (their lease ends at once).
With --schema: the schema's Parsing Canonical Form and its single-object fingerprint.
`;

export class UsageError extends Error {}

/** `k=v,k2=v2` (repeatable); a value may hold '=' but not ','. */
export function parseAttributes(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    for (const pair of value.split(',')) {
      if (pair === '') continue;
      const at = pair.indexOf('=');
      if (at <= 0) throw new UsageError(`--attributes: "${pair}" is not key=value`);
      out[pair.slice(0, at)] = pair.slice(at + 1);
    }
  }
  return out;
}

export async function createInspectDeps(config: Config, pubsub: PubSub): Promise<InspectDeps> {
  const schemas = new SchemaCache(createRegistry(config, pubsub), config.registry.cacheMaxEntries, { hit() {}, miss() {}, fetched() {} });
  const tables = new Map(config.routes.map((r) => [r.name, `${r.table.projectId}.${r.table.datasetId}.${r.table.tableId}`]));
  return { schemas, embedded: new EmbeddedSchemaCache(), router: createRouter(config.routing, config.routes), tables };
}

export async function runInspect(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      file: { type: 'string' },
      attributes: { type: 'string', multiple: true },
      subscription: { type: 'string' },
      max: { type: 'string' },
      wait: { type: 'string' },
      json: { type: 'boolean' },
      schema: { type: 'string' },
    },
  });
  if (values.schema !== undefined) {
    const fp = fingerprintSchema(await readFile(values.schema, 'utf8'));
    out.write(
      values.json
        ? `${JSON.stringify({ canonicalForm: fp.canonicalForm, fingerprintHex: fp.hex, fingerprint: fingerprintAsSignedLong(fp.fingerprint) })}\n`
        : `canonical form: ${fp.canonicalForm}\nfingerprint:    ${fp.hex} (8 bytes as on the wire, little-endian)\nas a long:      ${fingerprintAsSignedLong(fp.fingerprint)} (as Avro Java prints it)\n`,
    );
    return 0;
  }
  const configPath = values.config ?? process.env.TRIBUTARY_CONFIG;
  if (!configPath) throw new UsageError('inspect needs --config FILE (for the registry and the routes)');
  if ((values.file === undefined) === (values.subscription === undefined)) throw new UsageError('give either --file or --subscription');
  const config = await loadConfig(configPath, process.env);
  const pubsub = new PubSub({ projectId: config.projectId });
  const print = (m: Parameters<typeof formatInspected>[0]): void => {
    out.write(values.json ? `${JSON.stringify(m)}\n` : formatInspected(m));
  };
  let deadLettered = 0;
  try {
    const deps = await createInspectDeps(config, pubsub);
    if (values.file !== undefined) {
      const data = await readFile(values.file);
      const m = await inspectMessage({ id: 'file', data, attributes: parseAttributes(values.attributes ?? []) }, deps);
      print(m);
      return m.deadLetter ? 2 : 0;
    }
    const max = Number(values.max ?? '10');
    const waitMs = Number(values.wait ?? '5') * 1000;
    if (!Number.isInteger(max) || max < 1 || max > 1000) throw new UsageError('--max must be an integer from 1 to 1000');
    const reader = new PubSubPullReader(pubsub, { subscription: subscriptionPath(config.projectId, values.subscription as string), leaseSeconds: 60 });
    await reader.open();
    const seen = new Set<string>();
    try {
      const deadline = Date.now() + waitMs;
      while (seen.size < max && Date.now() < deadline) {
        for (const message of await reader.pull(max - seen.size, Math.max(100, deadline - Date.now()))) {
          // A message handed back is redelivered at once: shown once only.
          if (seen.has(message.messageId)) continue;
          seen.add(message.messageId);
          const m = await inspectMessage({ id: message.messageId, data: message.data, attributes: message.attributes }, deps);
          if (m.deadLetter) deadLettered++;
          print(m);
        }
      }
    } finally {
      await reader.releaseAll();
      await reader.close();
    }
    process.stderr.write(`${seen.size} message(s) inspected, ${deadLettered} would be dead-lettered; all handed back unacked\n`);
    return deadLettered > 0 ? 2 : 0;
  } finally {
    await pubsub.close().catch(() => undefined);
  }
}
