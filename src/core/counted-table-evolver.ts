import { toTributaryError } from '../errors.js';
import type { TableChangeObserver } from './table-change-observer.js';
import type { TableEvolver } from './table-evolver.js';
import { formatTableRef } from './table-schema.js';

/**
 * Counts the changes of a table evolver that does not count its own (the DuckDB sink), so
 * `tributary_table_changes_total` tells the same story whatever the destination.
 */
export function countedTableEvolver(evolver: TableEvolver, observer: TableChangeObserver): TableEvolver {
  return {
    async evolve(table, schemaId, desired) {
      const name = formatTableRef(table);
      try {
        const evolution = await evolver.evolve(table, schemaId, desired);
        if (evolution.changed && evolution.diff.additions.length > 0) observer.tableChanged(name, 'added-columns', 'ok');
        if (evolution.changed && evolution.diff.relaxations.length > 0) observer.tableChanged(name, 'relaxed', 'ok');
        return evolution;
      } catch (err) {
        const refused = toTributaryError(err).code === 'SCHEMA_INCOMPATIBLE';
        observer.tableChanged(name, refused ? 'refused' : 'added-columns', refused ? 'ok' : 'error');
        throw err;
      }
    },
    async createTable(table, fields, layout) {
      const name = formatTableRef(table);
      try {
        const outcome = await evolver.createTable(table, fields, layout);
        observer.tableChanged(name, 'created', outcome === 'created' ? 'ok' : 'conflict');
        return outcome;
      } catch (err) {
        observer.tableChanged(name, 'created', 'error');
        throw err;
      }
    },
  };
}
