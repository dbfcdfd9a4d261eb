import avro from 'avsc';
import { exactLong } from '../src/core/avro-type.js';
import { decodePayload } from '../src/core/decoder.js';
import { SchemaCache, compileSchema } from '../src/core/schema-cache.js';
import { readSchemaReference, schemaKey } from '../src/core/schema-reference.js';
import { atLeast, atMost, type Results } from './lib/report.js';
import { sideBySide } from './lib/timing.js';
import { KINDS, confluentFramed, containerFile, jsonMessage, readContainer, type LogKind } from './fixtures.js';

const MESSAGES = 1_024;
const NO_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Section 2: what it costs to turn one message into a BigQuery row.
 * - naive: the message carries its schema (a container file); the schema is parsed and compiled for
 *   every message, as it was before tributary (tributary's own compile, just not cached);
 * - cached: tributary's per-message path (schema reference, cache lookup, decode, convert);
 * - floor: `JSON.parse` of the same event published as JSON.
 */
export async function runDecodeCost(results: Results, options: { rounds: number; roundMs: number }): Promise<void> {
  const section = '2 decode+convert';
  const detail: Record<string, unknown> = {};
  for (const [kind, label] of [
    [KINDS.access, 'access log'],
    [KINDS.metric, 'numeric event'],
  ] as Array<[LogKind, string]>) {
    const cache = new SchemaCache({ name: 'bench', fetch: () => Promise.resolve(JSON.stringify(kind.schema)) }, 100, { hit() {}, miss() {}, fetched() {} });
    await cache.get({ kind: 'confluent', id: kind.schemaId });
    const framed = Array.from({ length: MESSAGES }, (_, i) => confluentFramed(kind, i));
    const containers = Array.from({ length: MESSAGES }, (_, i) => containerFile(kind, i));
    const json = Array.from({ length: MESSAGES }, (_, i) => jsonMessage(kind, i));

    const run = sideBySide(
      {
        naive: (ops) => {
          let n = 0;
          for (let i = 0; i < ops; i++) {
            const { schema, body } = readContainer(containers[i & (MESSAGES - 1)] as Buffer);
            const compiled = compileSchema('embedded', schema);
            const row = compiled.toRow(decodePayload(compiled, body, 0, 'BINARY'));
            n += row.status === undefined ? 0 : 1;
          }
          return n;
        },
        cached: (ops) => {
          let n = 0;
          for (let i = 0; i < ops; i++) {
            const data = framed[i & (MESSAGES - 1)] as Buffer;
            const { ref, bodyOffset } = readSchemaReference(NO_ATTRIBUTES, data);
            const schema = cache.getCached(schemaKey(ref));
            if (schema === undefined) throw new Error('schema not cached');
            const row = schema.toRow(decodePayload(schema, data, bodyOffset, 'BINARY'));
            n += row.status === undefined ? 0 : 1;
          }
          return n;
        },
        jsonParse: (ops) => {
          let n = 0;
          for (let i = 0; i < ops; i++) {
            const value = JSON.parse((json[i & (MESSAGES - 1)] as Buffer).toString('utf8')) as Record<string, unknown>;
            n += value.status === undefined ? 0 : 1;
          }
          return n;
        },
      },
      options,
    );
    const name = kind.logType;
    const vsJson = run.ratio('cached', 'jsonParse');
    const naiveVsCached = run.ratio('naive', 'cached');
    results.add({
      section,
      name: `decode_${name}_naive_ns`,
      label: `${label}: naive (schema parsed per message)`,
      value: run.nsPerOp.naive as number,
      unit: 'ns/msg',
    });
    results.add({
      section,
      name: `decode_${name}_cached_ns`,
      label: `${label}: tributary (cached schema)`,
      value: run.nsPerOp.cached as number,
      unit: 'ns/msg',
    });
    results.add({
      section,
      name: `decode_${name}_json_parse_ns`,
      label: `${label}: JSON.parse of the same event`,
      value: run.nsPerOp.jsonParse as number,
      unit: 'ns/msg',
    });
    results.add({
      section,
      name: `decode_${name}_cached_vs_json_ratio`,
      label: `${label}: tributary / JSON.parse`,
      value: vsJson,
      unit: 'x',
      ...(name === 'access' ? { target: atMost(vsJson, 2) } : {}),
    });
    results.add({
      section,
      name: `decode_${name}_naive_vs_cached_ratio`,
      label: `${label}: naive / tributary`,
      value: naiveVsCached,
      unit: 'x',
      ...(name === 'access' ? { target: atLeast(naiveVsCached, 20) } : {}),
    });
    // The hostile-input guard (checked counts, UTF-8 strings) against plain avsc with the same
    // options otherwise: decode alone, the part the guard touches.
    const cached = cache.getCached(schemaKey({ kind: 'confluent', id: kind.schemaId }));
    if (cached === undefined) throw new Error('schema not cached');
    const plain = avro.Type.forSchema(
      kind.schema as avro.Schema,
      {
        wrapUnions: true,
        typeHook: (s: avro.Schema) =>
          s === 'long' || (typeof s === 'object' && s !== null && (s as { type?: unknown }).type === 'long') ? exactLong : undefined,
      } as Partial<avro.ForSchemaOptions>,
    );
    const bodies = framed.map((b) => b.subarray(5));
    const guard = sideBySide(
      {
        guarded: (ops) => {
          let n = 0;
          for (let i = 0; i < ops; i++) n += (cached.type.fromBuffer(bodies[i & (MESSAGES - 1)] as Buffer) as object) === null ? 0 : 1;
          return n;
        },
        plain: (ops) => {
          let n = 0;
          for (let i = 0; i < ops; i++) n += (plain.fromBuffer(bodies[i & (MESSAGES - 1)] as Buffer) as object) === null ? 0 : 1;
          return n;
        },
      },
      options,
    );
    const guardRatio = guard.ratio('guarded', 'plain');
    results.add({
      section,
      name: `decode_${name}_guarded_ns`,
      label: `${label}: decode with the hostile-input guard`,
      value: guard.nsPerOp.guarded as number,
      unit: 'ns/msg',
    });
    results.add({
      section,
      name: `decode_${name}_unguarded_ns`,
      label: `${label}: decode with plain avsc`,
      value: guard.nsPerOp.plain as number,
      unit: 'ns/msg',
    });
    results.add({ section, name: `decode_${name}_guard_ratio`, label: `${label}: guarded / plain avsc decode`, value: guardRatio, unit: 'x' });
    detail[name] = { nsPerOpRounds: run.rounds, guardNsPerOpRounds: guard.rounds };
  }
  results.detail('decodeCost', detail);
}
