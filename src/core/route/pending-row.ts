import type { Envelope } from '../ports.js';
import type { PreparedRow } from '../sink.js';
import type { TableField } from '../table-schema.js';

/** A row on its way through a route, with the message it settles. */
export interface PendingRow {
  readonly envelope: Envelope;
  prepared: PreparedRow;
  readonly schemaKey: string;
  /**
   * The columns every row of this schema has, as the converter writes them: when the table's
   * validator proves that shape fits, the row is not checked value by value.
   */
  readonly shape?: readonly TableField[] | undefined;
}

export function envelopesOf(rows: readonly PendingRow[]): readonly Envelope[] {
  return rows.map((r) => r.envelope);
}
