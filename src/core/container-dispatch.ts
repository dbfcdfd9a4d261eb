import { TributaryError, toTributaryError } from '../errors.js';
import { decodeContainerFile, type DecodedContainer, type EmbeddedSchemaCache } from './container-file.js';
import { fanOutEnvelope } from './message-fan-out.js';
import type { PipelineObserver } from './observer.js';
import type { Envelope } from './ports.js';
import type { PendingRow } from './route/pending-row.js';
import type { RoutePipeline } from './route/route-pipeline.js';
import type { Router } from './router.js';
import { addMetadata, type MetadataColumns } from './row-metadata.js';
import type { CompiledSchema } from './schema-cache.js';
import type { PreparedRow } from './sink.js';
import type { Row, TableField } from './table-schema.js';

export interface ContainerDispatchDeps {
  router: Router;
  routes: ReadonlyMap<string, { pipeline: RoutePipeline; metadata: MetadataColumns }>;
  observer: PipelineObserver;
  embeddedSchemas: EmbeddedSchemaCache;
  /** Converts a decoded record to a row; throws CONVERSION_FAILED for a value it cannot convert. */
  convert(schema: CompiledSchema, value: unknown): Row;
  /** The columns every row of this schema has on this route (cached by the caller). */
  shapeOf(schema: CompiledSchema, route: string, metadata: MetadataColumns): readonly TableField[] | null;
  /** Settles the whole message for an error: dead-letter or nack, as the failure policy says. */
  fail(envelope: Envelope, err: unknown, route: string | undefined, schemaKey: string | undefined): void;
}

/** One row of a container-file message, ready to be submitted to its route. */
export interface ContainerRow {
  pipeline: RoutePipeline;
  item: PendingRow;
}

/**
 * An Avro container file: its schema travels with it, and each of its records becomes a row of
 * its own, settled together through message-fan-out. Every record is converted, routed and prepared
 * before any is submitted, so one that can never be a row dead-letters the whole message, untouched.
 * Returns the rows to submit, or undefined when the message was settled here.
 */
export function prepareContainer(envelope: Envelope, deps: ContainerDispatchDeps): ContainerRow[] | undefined {
  let file: DecodedContainer;
  try {
    file = decodeContainerFile(envelope.data, deps.embeddedSchemas);
  } catch (err) {
    deps.fail(envelope, err, undefined, undefined);
    return undefined;
  }
  const { schema, records } = file;
  const items: Array<{ pipeline: RoutePipeline; route: string; row: Row; shape: readonly TableField[] | null }> = [];
  let routeName: string | undefined;
  try {
    for (const [index, value] of records.entries()) {
      try {
        const row = deps.convert(schema, value);
        routeName = deps.router.route({ attributes: envelope.attributes, recordName: schema.recordName, row });
        const route = deps.routes.get(routeName);
        if (route === undefined) throw new TributaryError('UNROUTED', `route "${routeName}" does not exist`);
        addMetadata(row, route.metadata, envelope);
        if (route.metadata.recordIndex) row[route.metadata.recordIndex] = index;
        items.push({ pipeline: route.pipeline, route: routeName, row, shape: deps.shapeOf(schema, routeName, route.metadata) });
      } catch (err) {
        const error = toTributaryError(err);
        throw records.length > 1 ? new TributaryError(error.code, `record ${index} of ${records.length}: ${error.message}`, { cause: err }) : error;
      }
    }
  } catch (err) {
    deps.fail(envelope, err, routeName, schema.key);
    return undefined;
  }
  deps.observer.embeddedSchemaBytes?.(items[0]?.route ?? 'unrouted', file.header.headerBytes);
  const envelopes = fanOutEnvelope(envelope, items.length);
  let prepared: PreparedRow[];
  try {
    // Every row is prepared before any is submitted: one too large for a request fails the message whole.
    prepared = items.map((item, i) => item.pipeline.prepare((envelopes[i] as Envelope).id, item.row));
  } catch (err) {
    deps.fail(envelope, err, routeName, schema.key);
    return undefined;
  }
  return items.map((item, i) => ({
    pipeline: item.pipeline,
    item: { envelope: envelopes[i] as Envelope, prepared: prepared[i] as PreparedRow, schemaKey: schema.key, shape: item.shape ?? undefined },
  }));
}
