import type { PipelineObserver } from '../observer.js';
import type { Clock, Logger, Random } from '../ports.js';
import type { RetryPolicy } from '../retry.js';
import type { Settler } from '../settler.js';
import type { Sink } from '../sink.js';
import type { TableEvolver } from '../table-evolver.js';
import type { TableLayout } from '../table-layout.js';
import type { TableRef } from '../table-schema.js';
import type { TableValidators } from '../table-validators.js';
import type { BatchLimits } from './batcher.js';
import type { SchemaEvolutionMode } from './route-table-changes.js';
import type { WindowShare } from './window-share.js';

export interface RoutePipelineOptions {
  name: string;
  table: TableRef;
  batch: BatchLimits;
  maxInFlightBatches: number;
  unknownFields: 'dead-letter' | 'drop';
  retry: RetryPolicy;
  /** Upper bound of the probe period while paused; probes start faster and back off to it. */
  probeIntervalMs: number;
  /**
   * The route's share of the flow-control window: rows held, queued and in flight together. Beyond
   * it, messages go back to Pub/Sub for later instead of filling a window other routes share.
   */
  maxUnsettledRows: number;
  /** The window of the subscription this route shares with others, if it does. */
  window?: WindowShare | undefined;
  /** add-columns: rows whose columns the table lacks make the route add them (needs an evolver). Default off. */
  schemaEvolution?: SchemaEvolutionMode;
  /** Create the table when it is missing, with this layout (needs an evolver); without it the route pauses. */
  createTable?: TableLayout | undefined;
}

export interface RouteDeps {
  sink: Sink;
  validators: TableValidators;
  settler: Settler;
  observer: PipelineObserver;
  clock: Clock;
  logger: Logger;
  random?: Random;
  /** Adds columns and creates tables, for routes with schemaEvolution or createTable. */
  evolver?: TableEvolver | undefined;
}
