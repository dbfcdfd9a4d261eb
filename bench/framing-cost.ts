import { EmbeddedSchemaCache, decodeContainerFile } from '../src/core/container-file.js';
import { decodePayload } from '../src/core/decoder.js';
import { SchemaCache } from '../src/core/schema-cache.js';
import { fingerprintBytes, fingerprintSchema } from '../src/core/schema-fingerprint.js';
import { readSchemaReference, schemaKey, SINGLE_OBJECT_MAGIC, TRIBUTARY_SCHEMA_ATTRIBUTES } from '../src/core/schema-reference.js';
import type { Results } from './lib/report.js';
import { sideBySide } from './lib/timing.js';
import { KINDS, bareAvro, confluentFramed, containerFile, type LogKind } from './fixtures.js';

const MESSAGES = 1_024;

/** Avro single-object encoding: 0xC3 0x01, the schema's CRC-64-AVRO fingerprint, the body. */
export function singleObject(kind: LogKind, i: number): Buffer {
  return Buffer.concat([SINGLE_OBJECT_MAGIC, fingerprintBytes(fingerprintSchema(JSON.stringify(kind.schema)).fingerprint), bareAvro(kind, i)]);
}

/**
 * Section 2b: decode + convert per message in each of the four framings, side by side, through the
 * worker's own path: a schema reference and a cached schema for the three that name one; for a
 * container file, the header read, the schema text hashed and looked up, the record decoded.
 */
export async function runFramingCost(results: Results, options: { rounds: number; roundMs: number }): Promise<void> {
  const section = '2b framings';
  const detail: Record<string, unknown> = {};
  for (const [kind, label] of [
    [KINDS.access, 'access log'],
    [KINDS.metric, 'numeric event'],
  ] as Array<[LogKind, string]>) {
    const text = JSON.stringify(kind.schema);
    const cache = new SchemaCache({ name: 'bench', fetch: () => Promise.resolve(text) }, 100, { hit() {}, miss() {}, fetched() {} });
    const pubsubAttributes = Object.freeze({ [TRIBUTARY_SCHEMA_ATTRIBUTES.name]: 'projects/p/schemas/s', [TRIBUTARY_SCHEMA_ATTRIBUTES.revisionId]: 'r1' });
    const noAttributes = Object.freeze({});
    const payloads = {
      pubsubSchema: Array.from({ length: MESSAGES }, (_, i) => bareAvro(kind, i)),
      confluent: Array.from({ length: MESSAGES }, (_, i) => confluentFramed(kind, i)),
      singleObject: Array.from({ length: MESSAGES }, (_, i) => singleObject(kind, i)),
      containerFile: Array.from({ length: MESSAGES }, (_, i) => containerFile(kind, i)),
    };
    for (const [attributes, data] of [
      [pubsubAttributes, payloads.pubsubSchema[0]],
      [noAttributes, payloads.confluent[0]],
      [noAttributes, payloads.singleObject[0]],
    ] as const) {
      await cache.get(readSchemaReference(attributes, data as Buffer).ref);
    }
    const embedded = new EmbeddedSchemaCache();
    const byReference = (attributes: Readonly<Record<string, string>>, list: Buffer[]) => (ops: number) => {
      let n = 0;
      for (let i = 0; i < ops; i++) {
        const data = list[i & (MESSAGES - 1)] as Buffer;
        const { ref, bodyOffset } = readSchemaReference(attributes, data);
        const schema = cache.getCached(schemaKey(ref));
        if (schema === undefined) throw new Error('schema not cached');
        n += Object.keys(schema.toRow(decodePayload(schema, data, bodyOffset, 'BINARY'))).length;
      }
      return n;
    };
    const run = sideBySide(
      {
        pubsubSchema: byReference(pubsubAttributes, payloads.pubsubSchema),
        confluent: byReference(noAttributes, payloads.confluent),
        singleObject: byReference(noAttributes, payloads.singleObject),
        containerFile: (ops) => {
          let n = 0;
          for (let i = 0; i < ops; i++) {
            const file = decodeContainerFile(payloads.containerFile[i & (MESSAGES - 1)] as Buffer, embedded);
            n += Object.keys(file.schema.toRow(file.records[0])).length;
          }
          return n;
        },
      },
      options,
    );
    const name = kind.logType;
    const bytes = Object.fromEntries(Object.entries(payloads).map(([k, list]) => [k, list.reduce((s, b) => s + b.length, 0) / list.length]));
    for (const [framing, key] of [
      ['Pub/Sub schema', 'pubsubSchema'],
      ['Confluent', 'confluent'],
      ['single-object', 'singleObject'],
      ['container file (schema cached by hash)', 'containerFile'],
    ] as const) {
      results.add({ section, name: `framing_${name}_${key}_bytes`, label: `${label}: ${framing}, bytes`, value: bytes[key] as number, unit: 'bytes/msg' });
      results.add({
        section,
        name: `framing_${name}_${key}_ns`,
        label: `${label}: ${framing}, decode+convert`,
        value: run.nsPerOp[key] as number,
        unit: 'ns/msg',
      });
    }
    results.add({
      section,
      name: `framing_${name}_container_vs_confluent_ratio`,
      label: `${label}: container file / Confluent, CPU`,
      value: run.ratio('containerFile', 'confluent'),
      unit: 'x',
    });
    detail[name] = { bytesPerMessage: bytes, nsPerOpRounds: run.rounds };
  }
  results.detail('framingCost', detail);
}
