import type { Envelope } from './ports.js';
import type { Row, TableField } from './table-schema.js';

/** Optional columns filled from the Pub/Sub message rather than the record (config `routes.X.metadata`). */
export interface MetadataColumns {
  messageId?: string | undefined;
  publishTime?: string | undefined;
  subscription?: string | undefined;
  attributes?: string | undefined;
  /** The record's position in its message (0 unless the message is a container file of several). */
  recordIndex?: string | undefined;
}

/** The table columns addMetadata() writes, in the order they follow the record's own fields. */
export function metadataFields(columns: MetadataColumns): TableField[] {
  const fields: TableField[] = [];
  if (columns.messageId) fields.push({ name: columns.messageId, type: 'STRING', mode: 'REQUIRED' });
  if (columns.publishTime) fields.push({ name: columns.publishTime, type: 'TIMESTAMP', mode: 'REQUIRED' });
  if (columns.subscription) fields.push({ name: columns.subscription, type: 'STRING', mode: 'REQUIRED' });
  if (columns.attributes) fields.push({ name: columns.attributes, type: 'STRING', mode: 'REQUIRED' });
  if (columns.recordIndex) fields.push({ name: columns.recordIndex, type: 'INTEGER', mode: 'REQUIRED' });
  return fields;
}

/** Writes the metadata columns into a converted row; a record field of the same name is overwritten. */
export function addMetadata(row: Row, columns: MetadataColumns, envelope: Envelope): void {
  if (columns.messageId) row[columns.messageId] = envelope.id;
  if (columns.publishTime) row[columns.publishTime] = formatPublishTime(envelope.publishTimeMs);
  if (columns.subscription) row[columns.subscription] = envelope.subscription;
  if (columns.attributes) row[columns.attributes] = JSON.stringify(envelope.attributes);
  if (columns.recordIndex) row[columns.recordIndex] = 0;
}

/**
 * Messages of one publish request share a publish time, so a backlog repeats each one many times
 * over: the last one formatted is kept rather than a Date and a string made per message.
 */
let lastPublishTimeMs = Number.NaN;
let lastPublishTime = '';

function formatPublishTime(ms: number): string {
  if (ms !== lastPublishTimeMs) {
    lastPublishTime = new Date(ms).toISOString();
    lastPublishTimeMs = ms;
  }
  return lastPublishTime;
}
