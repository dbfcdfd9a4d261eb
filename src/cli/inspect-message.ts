import { toTributaryError, TributaryError } from '../errors.js';
import { decodeMessage, describeSchemaRef, rowIdOf, type MessageDecoderDeps } from '../core/message-decoder.js';
import type { Router } from '../core/router.js';
import { detectFraming } from '../core/schema-reference.js';
import type { Row } from '../core/table-schema.js';

export interface InspectedRecord {
  readonly index: number;
  readonly rowId: string;
  readonly record: unknown;
  readonly route?: string;
  readonly table?: string;
  readonly row?: Row;
}

/** What the worker would do with one message, for a person reading it. */
export interface InspectedMessage {
  readonly messageId: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly bytes: number;
  readonly framing?: string;
  readonly schemaRef?: string;
  readonly schemaName?: string;
  readonly embeddedSchemaBytes?: number;
  readonly records: InspectedRecord[];
  /** Set when the worker would dead-letter (or, for a transient code, nack) the message. */
  readonly deadLetter?: { readonly code: string; readonly reason: string };
}

export interface InspectDeps extends MessageDecoderDeps {
  readonly router: Router;
  /** Route name -> table, `project.dataset.table`. */
  readonly tables: ReadonlyMap<string, string>;
}

/** Avro values as JSON: longs beyond 2^53 as decimal strings, bytes as base64. */
export function toJsonValue(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_key, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
        return Buffer.from((v as { data: number[] }).data).toString('base64');
      }
      return v;
    }),
  );
}

/**
 * Decodes, converts and routes a message as the dispatcher does, without inserting anything. The
 * reasons are the worker's: a record of a container file that cannot be a row is named by its
 * index, as the dead letter would name it. (The row is not checked against the table here.)
 */
export async function inspectMessage(
  message: { id: string; data: Buffer; attributes: Readonly<Record<string, string>> },
  deps: InspectDeps,
): Promise<InspectedMessage> {
  const framing = detectFraming(message.attributes, message.data);
  const base = { messageId: message.id, attributes: message.attributes, bytes: message.data.length, ...(framing ? { framing } : {}) };
  let decoded;
  try {
    decoded = await decodeMessage(message, deps);
  } catch (err) {
    const error = toTributaryError(err);
    return { ...base, records: [], deadLetter: { code: error.code, reason: error.message } };
  }
  const head = {
    ...base,
    framing: decoded.framing,
    schemaRef: describeSchemaRef(decoded.schemaRef),
    schemaName: decoded.schema.recordName,
    embeddedSchemaBytes: decoded.embeddedSchemaBytes,
  };
  const records: InspectedRecord[] = [];
  const total = decoded.records.length;
  for (const [index, value] of decoded.records.entries()) {
    const rowId = rowIdOf(message.id, index, total);
    const record = toJsonValue(value);
    try {
      let row: Row;
      try {
        row = decoded.schema.toRow(value);
      } catch (err) {
        if (err instanceof TributaryError) throw err;
        throw new TributaryError('CONVERSION_FAILED', `row conversion failed with schema ${decoded.schema.key}: ${(err as Error).message}`);
      }
      const route = deps.router.route({ attributes: message.attributes, recordName: decoded.schema.recordName, row });
      const table = deps.tables.get(route);
      if (table === undefined) throw new TributaryError('UNROUTED', `route "${route}" does not exist`);
      records.push({ index, rowId, record, route, table, row: toJsonValue(row) as Row });
    } catch (err) {
      const error = toTributaryError(err);
      records.push({ index, rowId, record });
      const reason = total > 1 ? `record ${index} of ${total}: ${error.message}` : error.message;
      return { ...head, records, deadLetter: { code: error.code, reason } };
    }
  }
  return { ...head, records };
}

/** The text a person reads at 3 a.m.: one block per message. */
export function formatInspected(m: InspectedMessage): string {
  const lines = [`message ${m.messageId} (${m.bytes} bytes)`];
  const attrs = Object.entries(m.attributes);
  if (attrs.length > 0) lines.push(`  attributes:  ${attrs.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  if (m.framing) lines.push(`  framing:     ${m.framing}`);
  if (m.schemaRef) lines.push(`  schema ref:  ${m.schemaRef}`);
  if (m.schemaName !== undefined) lines.push(`  schema:      ${m.schemaName}`);
  if (m.embeddedSchemaBytes) lines.push(`  embedded schema: ${m.embeddedSchemaBytes} bytes of header`);
  for (const r of m.records) {
    lines.push(`  record ${r.index} (row id ${r.rowId}):`, `    ${JSON.stringify(r.record)}`);
    if (r.route !== undefined) lines.push(`    route: ${r.route} -> ${r.table ?? '?'}`, `    row:   ${JSON.stringify(r.row)}`);
  }
  if (m.deadLetter) lines.push(`  DEAD-LETTER ${m.deadLetter.code}: ${m.deadLetter.reason}`);
  return `${lines.join('\n')}\n`;
}
