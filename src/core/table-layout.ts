import { standardType, type TableField } from './table-schema.js';

export type PartitionType = 'DAY' | 'HOUR' | 'MONTH' | 'YEAR';

/** How a route's table is created when it is missing (config `routes.X.createTable`). */
export interface TableLayout {
  /** Time partitioning; without `field`, by ingestion time. */
  partitioning?: { type: PartitionType; field?: string | undefined } | undefined;
  clustering?: readonly string[] | undefined;
  /** Partition expiration. */
  expirationDays?: number | undefined;
  description?: string | undefined;
}

export const MAX_CLUSTERING_COLUMNS = 4;

const PARTITION_COLUMN_TYPES: ReadonlySet<string> = new Set(['TIMESTAMP', 'DATE', 'DATETIME']);
const CLUSTERING_COLUMN_TYPES: ReadonlySet<string> = new Set([
  'STRING',
  'INT64',
  'NUMERIC',
  'BIGNUMERIC',
  'BOOL',
  'DATE',
  'DATETIME',
  'TIMESTAMP',
  'GEOGRAPHY',
  'RANGE',
]);

function column(fields: readonly TableField[], name: string): TableField | undefined {
  return fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
}

/**
 * What BigQuery would refuse in creating a table with these columns and this layout, checked
 * before asking it so the message names the route's setting: the partitioning column must be a
 * top-level TIMESTAMP, DATE or DATETIME; at most 4 clustering columns, top-level, of a type
 * BigQuery clusters on; neither may be REPEATED.
 */
export function tableLayoutProblems(fields: readonly TableField[], layout: TableLayout): string[] {
  const problems: string[] = [];
  const partitionField = layout.partitioning?.field;
  if (partitionField !== undefined) {
    const f = column(fields, partitionField);
    if (f === undefined) problems.push(`partitioning field "${partitionField}" is not a column of the table`);
    else if (f.mode === 'REPEATED' || !PARTITION_COLUMN_TYPES.has(standardType(f.type))) {
      problems.push(
        `partitioning field "${partitionField}" is ${standardType(f.type)}${f.mode === 'REPEATED' ? ' REPEATED' : ''}; it must be a TIMESTAMP, DATE or DATETIME column`,
      );
    }
  }
  const clustering = layout.clustering ?? [];
  if (clustering.length > MAX_CLUSTERING_COLUMNS)
    problems.push(`clustering has ${clustering.length} columns; BigQuery allows at most ${MAX_CLUSTERING_COLUMNS}`);
  for (const name of clustering) {
    const f = column(fields, name);
    if (f === undefined) problems.push(`clustering column "${name}" is not a column of the table`);
    else if (f.mode === 'REPEATED' || !CLUSTERING_COLUMN_TYPES.has(standardType(f.type))) {
      problems.push(`clustering column "${name}" is ${standardType(f.type)}${f.mode === 'REPEATED' ? ' REPEATED' : ''}, which BigQuery cannot cluster on`);
    }
  }
  return problems;
}

const MS_PER_DAY = 86_400_000;

/** The tables.insert fields for a layout (timePartitioning, clustering, description). */
export function tableLayoutResource(layout: TableLayout): Record<string, unknown> {
  const resource: Record<string, unknown> = {};
  if (layout.partitioning !== undefined || layout.expirationDays !== undefined) {
    const partitioning: Record<string, unknown> = { type: layout.partitioning?.type ?? 'DAY' };
    if (layout.partitioning?.field !== undefined) partitioning['field'] = layout.partitioning.field;
    if (layout.expirationDays !== undefined) partitioning['expirationMs'] = String(Math.round(layout.expirationDays * MS_PER_DAY));
    resource['timePartitioning'] = partitioning;
  }
  if (layout.clustering !== undefined && layout.clustering.length > 0) resource['clustering'] = { fields: [...layout.clustering] };
  if (layout.description !== undefined) resource['description'] = layout.description;
  return resource;
}
