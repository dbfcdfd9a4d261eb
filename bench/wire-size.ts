import { atMost, type Results } from './lib/report.js';
import { singleObject } from './framing-cost.js';
import { KINDS, bareAvro, confluentFramed, containerFile, jsonMessage, type LogKind } from './fixtures.js';

/** Section 1: bytes on the wire per record, for the same records in four encodings. Exact, so one pass. */
export function runWireSize(results: Results, samples = 1_000): void {
  const section = '1 wire size';
  const detail: Record<string, unknown> = {};
  for (const [kind, label] of [
    [KINDS.access, 'access log'],
    [KINDS.metric, 'numeric event'],
  ] as Array<[LogKind, string]>) {
    let container = 0;
    let confluent = 0;
    let bare = 0;
    let json = 0;
    let single = 0;
    for (let i = 0; i < samples; i++) {
      container += containerFile(kind, i).length;
      confluent += confluentFramed(kind, i).length;
      bare += bareAvro(kind, i).length;
      json += jsonMessage(kind, i).length;
      single += singleObject(kind, i).length;
    }
    const per = { container: container / samples, confluent: confluent / samples, singleObject: single / samples, bare: bare / samples, json: json / samples };
    detail[kind.logType] = { samples, bytesPerRecord: per };
    const name = kind.logType;
    results.add({
      section,
      name: `wire_${name}_container_bytes`,
      label: `${label}: Avro container file, schema embedded`,
      value: per.container,
      unit: 'bytes/record',
    });
    results.add({ section, name: `wire_${name}_confluent_bytes`, label: `${label}: Confluent framing`, value: per.confluent, unit: 'bytes/record' });
    results.add({
      section,
      name: `wire_${name}_single_object_bytes`,
      label: `${label}: Avro single-object encoding`,
      value: per.singleObject,
      unit: 'bytes/record',
    });
    results.add({ section, name: `wire_${name}_bare_bytes`, label: `${label}: Pub/Sub schema (bare Avro)`, value: per.bare, unit: 'bytes/record' });
    results.add({ section, name: `wire_${name}_json_bytes`, label: `${label}: JSON`, value: per.json, unit: 'bytes/record' });
    const overhead = per.confluent - per.bare;
    results.add({
      section,
      name: `wire_${name}_confluent_overhead`,
      label: `${label}: Confluent minus bare Avro`,
      value: overhead,
      unit: 'bytes/record',
      target: atMost(overhead, 5),
    });
    results.add({ section, name: `wire_${name}_container_ratio`, label: `${label}: container file / bare Avro`, value: per.container / per.bare, unit: 'x' });
    results.add({ section, name: `wire_${name}_json_ratio`, label: `${label}: JSON / bare Avro`, value: per.json / per.bare, unit: 'x' });
  }
  results.detail('wireSize', detail);
}
