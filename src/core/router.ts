import { TributaryError } from '../errors.js';
import type { Row } from './table-schema.js';

export interface RoutingConfig {
  from: 'attribute' | 'record-name' | 'field';
  key: string;
  unrouted: string;
}

export interface RouteMatcher {
  name: string;
  match: readonly string[];
}

export interface RoutingInput {
  attributes: Readonly<Record<string, string>>;
  recordName: string;
  row: Row;
}

/** Finds the log type of a message and the route that takes it. */
export interface Router {
  logTypeOf(input: RoutingInput): string | undefined;
  /** The route name; throws UNROUTED when the log type has no route and `unrouted` is dead-letter. */
  route(input: RoutingInput): string;
}

export function createRouter(config: RoutingConfig, routes: readonly RouteMatcher[]): Router {
  const table = new Map<string, string>();
  for (const route of routes) for (const value of route.match) table.set(value, route.name);
  const fallback = config.unrouted === 'dead-letter' ? undefined : config.unrouted;
  const path = config.key.split('.');

  const logTypeOf = (input: RoutingInput): string | undefined => {
    switch (config.from) {
      case 'attribute':
        return input.attributes[config.key];
      case 'record-name':
        return input.recordName;
      case 'field': {
        let value: unknown = input.row;
        for (const segment of path) {
          if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
          value = (value as Row)[segment];
        }
        return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
      }
    }
  };

  return {
    logTypeOf,
    route(input) {
      const logType = logTypeOf(input);
      const name = logType === undefined ? undefined : table.get(logType);
      if (name !== undefined) return name;
      if (fallback !== undefined) return fallback;
      const where = config.from === 'record-name' ? 'record name' : `${config.from} "${config.key}"`;
      throw new TributaryError(
        'UNROUTED',
        logType === undefined ? `no log type: the message has no ${where}` : `no route matches log type "${logType.slice(0, 200)}" (from ${where})`,
      );
    },
  };
}
