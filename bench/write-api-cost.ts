import { createStorageRowEncoder, storageRowSizeBound } from '../src/adapters/storage-row-encoder.js';
import { createRowConverter } from '../src/core/rows/row-converter.js';
import type { Row } from '../src/core/table-schema.js';
import { tableSchemaFor } from '../test/support/log-schemas.js';
import { KINDS, type LogKind } from './fixtures.js';
import { atMost, type Results } from './lib/report.js';
import { sideBySide } from './lib/timing.js';

const ROWS = 1_024;
const MILLION = 1_000_000;

/**
 * List prices (no free tier): insertAll $0.01 per 200 MB, each row at least 1 KB, where Google's
 * pricing MB is 2^20 bytes ($0.05 per 1,000 MiB); Storage Write $0.025 per GiB of the rows' bytes.
 */
const INSERT_ALL_USD_PER_BYTE = 0.01 / (200 * 2 ** 20);
const INSERT_ALL_MIN_ROW_BYTES = 1_024;
const STORAGE_WRITE_USD_PER_BYTE = 0.025 / 2 ** 30;

/** A row as the pipeline hands it to a sink: converted record plus the message metadata columns. */
function pipelineRows(kind: LogKind): Row[] {
  const convert = createRowConverter(kind.schema);
  return Array.from({ length: ROWS }, (_, i) => ({
    ...convert(kind.type.fromBuffer(kind.type.toBuffer(kind.record(i)))),
    _message_id: String(17_000_000_000_000_000 + i * 7_919),
    _publish_time: '2025-11-24T16:00:00.123000Z',
  }));
}

/**
 * Section 8: the two BigQuery write APIs side by side, per row, before the network.
 * - insertAll: the row's JSON text (what BigQuerySink sends);
 * - Storage Write: the row's size bound (the sink's prepare) and its protobuf encoding.
 * Then what each bills per million rows, and the cost at list prices.
 */
export function runWriteApiCost(results: Results, options: { rounds: number; roundMs: number }): void {
  const section = '8 write APIs';
  const detail: Record<string, unknown> = {};
  for (const [kind, label] of [
    [KINDS.access, 'access log'],
    [KINDS.audit, 'audit event'],
    [KINDS.metric, 'numeric event'],
  ] as Array<[LogKind, string]>) {
    const rows = pipelineRows(kind);
    const encoder = createStorageRowEncoder(tableSchemaFor(kind.schema));
    const name = kind.logType;

    let jsonBytes = 0;
    let insertAllBilled = 0;
    let protoBytes = 0;
    let boundBytes = 0;
    for (const row of rows) {
      const json = Buffer.byteLength(JSON.stringify(row));
      jsonBytes += json;
      insertAllBilled += Math.max(json, INSERT_ALL_MIN_ROW_BYTES);
      protoBytes += encoder.encode(row).length;
      boundBytes += storageRowSizeBound(row);
    }
    const perMillion = MILLION / rows.length;
    const insertAllBilledPerMillion = insertAllBilled * perMillion;
    const storageBilledPerMillion = protoBytes * perMillion;
    const insertAllUsd = insertAllBilledPerMillion * INSERT_ALL_USD_PER_BYTE;
    const storageUsd = storageBilledPerMillion * STORAGE_WRITE_USD_PER_BYTE;
    results.add({ section, name: `write_${name}_json_bytes_per_row`, label: `${label}: JSON row (insertAll)`, value: jsonBytes / rows.length, unit: 'B/row' });
    results.add({
      section,
      name: `write_${name}_proto_bytes_per_row`,
      label: `${label}: protobuf row (Storage Write)`,
      value: protoBytes / rows.length,
      unit: 'B/row',
    });
    results.add({
      section,
      name: `write_${name}_size_bound_ratio`,
      label: `${label}: prepare() bound / encoded size`,
      value: boundBytes / protoBytes,
      unit: 'x',
    });
    results.add({
      section,
      name: `write_${name}_insert_all_billed_mb_per_million`,
      label: `${label}: insertAll billed per million rows`,
      value: insertAllBilledPerMillion / 1e6,
      unit: 'MB',
    });
    results.add({
      section,
      name: `write_${name}_storage_write_billed_mb_per_million`,
      label: `${label}: Storage Write billed per million rows`,
      value: storageBilledPerMillion / 1e6,
      unit: 'MB',
    });
    results.add({
      section,
      name: `write_${name}_insert_all_usd_per_million`,
      label: `${label}: insertAll cost per million rows`,
      value: insertAllUsd,
      unit: 'USD',
    });
    results.add({
      section,
      name: `write_${name}_storage_write_usd_per_million`,
      label: `${label}: Storage Write cost per million rows`,
      value: storageUsd,
      unit: 'USD',
    });
    const billedRatio = insertAllBilledPerMillion / storageBilledPerMillion;
    const costRatio = insertAllUsd / storageUsd;
    results.add({
      section,
      name: `write_${name}_billed_bytes_ratio`,
      label: `${label}: bytes billed, insertAll / Storage Write`,
      value: billedRatio,
      unit: 'x',
      ...(name === 'access' ? { note: 'expected: about 3x' } : {}),
    });
    results.add({
      section,
      name: `write_${name}_cost_ratio`,
      label: `${label}: cost, insertAll / Storage Write`,
      value: costRatio,
      unit: 'x',
      ...(name === 'access' ? { note: 'expected: about 6x' } : {}),
    });

    let sinkValue = 0;
    const run = sideBySide(
      {
        json: (ops) => {
          let n = 0;
          for (let i = 0; i < ops; i++) n += JSON.stringify(rows[i & (ROWS - 1)]).length;
          return n;
        },
        proto: (ops) => {
          let n = 0;
          for (let i = 0; i < ops; i++) n += encoder.encode(rows[i & (ROWS - 1)] as Row).length;
          return n;
        },
        protoWithBound: (ops) => {
          let n = 0;
          for (let i = 0; i < ops; i++) {
            const row = rows[i & (ROWS - 1)] as Row;
            n += storageRowSizeBound(row) + encoder.encode(row).length;
          }
          return n;
        },
      },
      options,
    );
    sinkValue += run.nsPerOp.json as number;
    const encodeRatio = run.ratio('proto', 'json');
    results.add({
      section,
      name: `write_${name}_json_stringify_ns`,
      label: `${label}: JSON.stringify per row`,
      value: run.nsPerOp.json as number,
      unit: 'ns/row',
    });
    results.add({
      section,
      name: `write_${name}_proto_encode_ns`,
      label: `${label}: protobuf encoding per row`,
      value: run.nsPerOp.proto as number,
      unit: 'ns/row',
    });
    results.add({
      section,
      name: `write_${name}_proto_prepare_encode_ns`,
      label: `${label}: size bound + protobuf encoding per row`,
      value: run.nsPerOp.protoWithBound as number,
      unit: 'ns/row',
    });
    results.add({
      section,
      name: `write_${name}_proto_vs_json_ratio`,
      label: `${label}: protobuf encoding / JSON.stringify`,
      value: encodeRatio,
      unit: 'x',
      ...(name === 'access' ? { target: atMost(encodeRatio, 1) } : {}),
    });
    detail[name] = {
      rows: rows.length,
      jsonBytes,
      protoBytes,
      boundBytes,
      insertAllBilled,
      nsPerRow: run.nsPerOp,
      rounds: run.rounds,
      checksum: sinkValue > 0,
    };
  }
  results.detail(section, detail);
}
