import { TributaryError, toTributaryError } from '../errors.js';
import { prepareContainer, type ContainerDispatchDeps } from './container-dispatch.js';
import { EmbeddedSchemaCache } from './container-file.js';
import { decodePayload } from './decoder.js';
import { DecodedBudget } from './decoded-budget.js';
import { actionFor } from './failure-policy.js';
import type { PipelineObserver } from './observer.js';
import type { Clock, Envelope, Logger, Random } from './ports.js';
import { retry, type RetryPolicy } from './retry.js';
import type { RoutePipeline } from './route/route-pipeline.js';
import type { Router } from './router.js';
import { addMetadata, type MetadataColumns } from './row-metadata.js';
import type { CompiledSchema, SchemaCache } from './schema-cache.js';
import { routeTableFields } from './schema-diff.js';
import { detectFraming, isContainerFile, readSchemaReference, schemaKey, type SchemaReference } from './schema-reference.js';
import type { Settler } from './settler.js';
import type { Row, TableField } from './table-schema.js';

export interface DispatcherDeps {
  schemas: SchemaCache;
  router: Router;
  routes: ReadonlyMap<string, { pipeline: RoutePipeline; metadata: MetadataColumns }>;
  settler: Settler;
  observer: PipelineObserver;
  clock: Clock;
  random?: Random;
  logger: Logger;
  /** Retries of a registry that cannot answer, before the message is nacked. */
  retry: RetryPolicy;
  /**
   * The flow-control window: once this many messages are unsettled, the source hands out no more
   * until some settle, so batches still filling are sent at once instead of waiting for their age
   * limit with the whole window held in them.
   */
  flushAtUnsettled?: number;
  /** Bytes of prepared rows held at once, process-wide; beyond it messages wait undecoded. */
  maxDecodedBytes?: number;
  /** Schemas embedded in container-file messages, compiled once per distinct text. */
  embeddedSchemas?: EmbeddedSchemaCache;
}

/**
 * Takes each message from decode to its route: schema reference → cached schema → Avro value →
 * row → route. Data errors are dead-lettered here; the routes own everything after.
 */
export class Dispatcher {
  private fetching = 0;
  private handled = 0;
  private windowFull = false;
  private draining = false;
  private idleWaiters: Array<() => void> = [];
  private readonly stop = new AbortController();
  /** Per schema, per route: the columns its rows have (null when they cannot be described). */
  private readonly shapes = new WeakMap<CompiledSchema, Map<string, readonly TableField[] | null>>();

  private readonly container: ContainerDispatchDeps;
  /** Messages received while the decoded budget was spent: raw, in arrival order. */
  private parked: Envelope[] = [];
  private readonly budget: DecodedBudget | undefined;

  constructor(private readonly deps: DispatcherDeps) {
    this.container = {
      router: deps.router,
      routes: deps.routes,
      observer: deps.observer,
      embeddedSchemas: deps.embeddedSchemas ?? new EmbeddedSchemaCache(),
      convert,
      shapeOf: (schema, route, metadata) => this.shapeOf(schema, route, metadata),
      fail: (envelope, err, route, key) => this.fail(envelope, err, route, key),
    };
    if (deps.maxDecodedBytes !== undefined) {
      // Later, not inside the settle that freed the room: that settle may be mid-batch.
      this.budget = new DecodedBudget(deps.maxDecodedBytes, () => queueMicrotask(() => this.unpark()));
      deps.settler.budget = this.budget;
    }
  }

  handle(envelope: Envelope): void {
    this.handled++;
    // With nothing held the budget is never spent, so one message is decoded however large it is:
    // a budget smaller than a message slows intake, it does not stop it.
    if (this.budget?.spent) {
      this.parked.push(envelope);
      if (this.parked.length === 1) this.flushRoutes();
      return;
    }
    this.dispatch(envelope);
    const full = this.windowIsFull();
    // Edge-triggered: one flush each time the window fills, not one per message while it stays full.
    if (full && !this.windowFull) this.flushRoutes();
    this.windowFull = full;
  }

  private windowIsFull(): boolean {
    const limit = this.deps.flushAtUnsettled;
    return limit !== undefined && this.handled - this.deps.settler.settled >= limit;
  }

  private flushRoutes(): void {
    for (const route of this.deps.routes.values()) route.pipeline.flush();
  }

  /** Decodes what waited for the budget, oldest first, while there is room. */
  private unpark(): void {
    let next = 0;
    while (next < this.parked.length && !this.budget?.spent) {
      this.dispatch(this.parked[next] as Envelope);
      next++;
    }
    this.parked = next === this.parked.length ? [] : this.parked.slice(next);
    if (this.parked.length > 0) this.flushRoutes();
  }

  private dispatch(envelope: Envelope): void {
    if (this.draining) {
      this.deps.settler.nack([envelope], 'unrouted', 'SHUTTING_DOWN');
      return;
    }
    if (isContainerFile(envelope.data) && detectFraming(envelope.attributes, envelope.data) === 'container-file') {
      this.processContainer(envelope);
      return;
    }
    let key: string | undefined;
    try {
      const { ref, bodyOffset } = readSchemaReference(envelope.attributes, envelope.data);
      key = schemaKey(ref);
      const schema = this.deps.schemas.getCached(key);
      if (schema) {
        this.process(envelope, schema, ref, bodyOffset);
        return;
      }
      this.fetching++;
      void this.fetchThenProcess(envelope, ref, bodyOffset).finally(() => {
        this.fetching--;
        if (this.fetching === 0) {
          // The window may have filled while these waited for their schema: no flush found them then.
          if (this.windowIsFull()) this.flushRoutes();
          this.wake();
        }
      });
    } catch (err) {
      this.fail(envelope, err, undefined, key);
    }
  }

  /** Stops taking messages, settles everything accepted, and resolves when nothing is left. */
  async drain(): Promise<void> {
    this.draining = true;
    const parked = this.parked;
    this.parked = [];
    this.deps.settler.nack(parked, 'unrouted', 'SHUTTING_DOWN');
    if (this.fetching > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await Promise.all([...this.deps.routes.values()].map((r) => r.pipeline.drain()));
    await this.deps.settler.whenIdle();
  }

  /** The drain deadline passed: stop waiting in retries; what is unsettled is nacked. */
  abort(): void {
    this.stop.abort();
    for (const route of this.deps.routes.values()) route.pipeline.abort();
  }

  get unsettled(): number {
    let n = this.fetching + this.parked.length + this.deps.settler.deadLettersInFlight;
    for (const route of this.deps.routes.values()) n += route.pipeline.unsettledRows;
    return n;
  }

  private wake(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async fetchThenProcess(envelope: Envelope, ref: SchemaReference, bodyOffset: number): Promise<void> {
    const key = schemaKey(ref);
    let schema: CompiledSchema;
    try {
      schema = await retry(() => this.deps.schemas.get(ref), {
        policy: this.deps.retry,
        clock: this.deps.clock,
        random: this.deps.random ?? Math.random,
        signal: this.stop.signal,
        onRetry: (error) => this.deps.observer.retried('unrouted', error.code),
      });
    } catch (err) {
      this.fail(envelope, err, undefined, key);
      return;
    }
    // Messages that waited for their schema would otherwise all be decoded at once when it came.
    if (this.budget?.spent) {
      this.parked.push(envelope);
      return;
    }
    try {
      this.process(envelope, schema, ref, bodyOffset);
    } catch (err) {
      this.fail(envelope, err, undefined, key);
    }
  }

  private process(envelope: Envelope, schema: CompiledSchema, ref: SchemaReference, bodyOffset: number): void {
    let routeName: string | undefined;
    try {
      const value = decodePayload(schema, envelope.data, bodyOffset, ref.kind === 'pubsub' ? ref.encoding : 'BINARY');
      const row = convert(schema, value);
      routeName = this.deps.router.route({ attributes: envelope.attributes, recordName: schema.recordName, row });
      const route = this.deps.routes.get(routeName);
      if (route === undefined) throw new TributaryError('UNROUTED', `route "${routeName}" does not exist`);
      addMetadata(row, route.metadata, envelope);
      // Prepared once, here, by the route's sink: its encoding sizes the batch exactly and is what
      // the request carries, so the row is never walked again to be measured or encoded.
      const prepared = route.pipeline.prepare(envelope.id, row);
      this.budget?.charge(envelope, prepared.bytes);
      route.pipeline.submit({ envelope, prepared, schemaKey: schema.key, shape: this.shapeOf(schema, routeName, route.metadata) ?? undefined });
    } catch (err) {
      this.fail(envelope, err, routeName, schema.key);
    }
  }

  private processContainer(envelope: Envelope): void {
    const rows = prepareContainer(envelope, this.container);
    if (rows === undefined) return;
    // The settler counts each row's envelope: the window counts them too.
    this.handled += rows.length - 1;
    for (const { pipeline, item } of rows) {
      this.budget?.charge(item.envelope, item.prepared.bytes);
      pipeline.submit(item);
    }
  }

  private shapeOf(schema: CompiledSchema, routeName: string, metadata: MetadataColumns): readonly TableField[] | null {
    let perRoute = this.shapes.get(schema);
    if (perRoute === undefined) {
      perRoute = new Map();
      this.shapes.set(schema, perRoute);
    }
    let shape = perRoute.get(routeName);
    if (shape === undefined) {
      shape = rowShape(schema, metadata);
      perRoute.set(routeName, shape);
    }
    return shape;
  }

  private fail(envelope: Envelope, err: unknown, route: string | undefined, key: string | undefined): void {
    const error = toTributaryError(err);
    if (actionFor(error) === 'dead-letter') {
      void this.deps.settler.deadLetter({ envelope, error, route, attempts: 1, schemaKey: key });
      return;
    }
    this.deps.logger.warn({ messageId: envelope.id, route, code: error.code, err: error.message }, 'Message nacked.');
    this.deps.settler.nack([envelope], route ?? 'unrouted', error.code);
  }
}

function convert(schema: CompiledSchema, value: unknown): Row {
  try {
    return schema.toRow(value);
  } catch (err) {
    if (err instanceof TributaryError) throw err;
    // A value the converter did not foresee is a property of this message, not a passing fault.
    throw new TributaryError('CONVERSION_FAILED', `row conversion failed with schema ${schema.key}: ${(err as Error).message}`);
  }
}

/** The columns of every row convert() and addMetadata() write for this schema and route. */
function rowShape(schema: CompiledSchema, metadata: MetadataColumns): readonly TableField[] | null {
  try {
    return routeTableFields(schema.definition, metadata);
  } catch {
    return null;
  }
}
