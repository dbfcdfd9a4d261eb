import type { Config } from '../config.js';
import type { Sink } from '../core/ports.js';

/** Placeholder until the DuckDB sink lands: says so clearly instead of failing obscurely. */
export async function createDuckDbSink(_config: Config): Promise<Sink> {
  throw new Error('sink: duckdb is not available in this build');
}
