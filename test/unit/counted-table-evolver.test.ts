import { describe, expect, it } from 'vitest';
import { countedTableEvolver } from '../../src/core/counted-table-evolver.js';
import type { TableEvolution, TableEvolver } from '../../src/core/table-evolver.js';
import { TributaryError } from '../../src/errors.js';

const table = { projectId: 'p', datasetId: 'logs', tableId: 'access' };

function evolution(additions: number, relaxations: number, changed = true): TableEvolution {
  return {
    changed,
    diff: {
      additions: Array.from({ length: additions }),
      relaxations: Array.from({ length: relaxations }),
      incompatibilities: [],
    } as unknown as TableEvolution['diff'],
    schema: { fields: [] },
  };
}

describe('countedTableEvolver', () => {
  it('counts what an evolver that does not count itself did: added, relaxed, refused, created, already there', async () => {
    const seen: string[] = [];
    const answers: Array<TableEvolution | TributaryError> = [
      evolution(2, 1),
      evolution(0, 0, false),
      new TributaryError('SCHEMA_INCOMPATIBLE', 'amount: NUMERIC ≠ STRING'),
    ];
    const inner: TableEvolver = {
      evolve: () => {
        const next = answers.shift() as TableEvolution | TributaryError;
        return next instanceof TributaryError ? Promise.reject(next) : Promise.resolve(next);
      },
      createTable: () => Promise.resolve(seen.length > 3 ? 'exists' : 'created'),
    };
    const counted = countedTableEvolver(inner, { tableChanged: (t, kind, result) => seen.push(`${t} ${kind} ${result}`) });
    await counted.evolve(table, 'pubsub:s@1', []);
    await counted.evolve(table, 'pubsub:s@1', []);
    await expect(counted.evolve(table, 'pubsub:s@2', [])).rejects.toMatchObject({ code: 'SCHEMA_INCOMPATIBLE' });
    await counted.createTable(table, []);
    await counted.createTable(table, []);
    expect(seen).toEqual([
      'p.logs.access added-columns ok',
      'p.logs.access relaxed ok',
      'p.logs.access refused ok',
      'p.logs.access created ok',
      'p.logs.access created conflict',
    ]);
  });
});
