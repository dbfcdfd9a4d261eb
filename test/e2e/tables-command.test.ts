import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { routeTableFields } from '../../src/core/schema-diff.js';
import type { AvroSchema } from '../../src/core/avro-type.js';
import { startCli } from '../support/cli-process.js';
import { commitSchemaRevision, createAvroSchema, uniqueName } from '../support/pubsub-fixtures.js';
import { Harness } from '../support/worker-harness.js';

/*
 * `tributary tables plan|apply` on the built CLI (run `npm run build` first) against the BigQuery
 * test server, with schemas from a file, a registry directory and the Pub/Sub emulator's schema service.
 */

const METADATA = { messageId: '_message_id', publishTime: '_publish_time' };

function access(extra: unknown[] = [], replace: Record<string, unknown> = {}): Record<string, unknown> {
  const base = [
    { name: 'ts', type: { type: 'long', logicalType: 'timestamp-micros' } },
    { name: 'service', type: 'string' },
    { name: 'status', type: 'int' },
    { name: 'source', type: { type: 'record', name: 'Source', fields: [{ name: 'host', type: 'string' }] } },
  ].map((f) => (f.name in replace ? { name: f.name, type: replace[f.name] } : f));
  return { type: 'record', name: 'Access', namespace: 'logs', fields: [...base, ...extra] };
}

const REV1 = access();
const REV2 = access(
  [
    { name: 'region', type: ['null', 'string'], default: null },
    { name: 'tags', type: { type: 'array', items: 'string' } },
  ],
  {
    status: ['null', 'int'],
    source: {
      type: 'record',
      name: 'Source',
      fields: [
        { name: 'host', type: 'string' },
        { name: 'zone', type: ['null', 'string'], default: null },
      ],
    },
  },
);
const REV3 = access([], { status: 'string' });

describe('tributary tables plan / apply (built CLI)', () => {
  let h: Harness;
  let dir: string;

  beforeEach(async () => {
    h = await Harness.create();
    dir = await mkdtemp(join(tmpdir(), 'tributary-tables-'));
    for (const [name, schema] of Object.entries({ rev1: REV1, rev2: REV2, rev3: REV3 })) await writeFile(join(dir, `${name}.avsc`), JSON.stringify(schema));
  });

  afterEach(async () => {
    await h.close();
  });

  async function config(route: string): Promise<string> {
    const path = join(dir, 'tributary.yaml');
    await writeFile(
      path,
      h.configYaml(`
registry: { kind: auto, directory: ${dir} }
routes:
  access:
    match: [access]
    table: $DATASET.access
    metadata: { messageId: _message_id, publishTime: _publish_time }
${route}`),
    );
    return path;
  }

  async function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
    const cli = startCli(['tables', ...args]);
    const code = await cli.exit;
    return { code, out: cli.lines.map((l) => (typeof l['raw'] === 'string' ? l['raw'] : JSON.stringify(l))).join('\n'), err: cli.stderr.join('\n') };
  }

  it('plans and applies an additive change: exit 2 with the diff, then the table has the columns, then exit 0', async () => {
    const table = h.table('access');
    h.bigquery.createTable(table, { fields: routeTableFields(REV1 as AvroSchema, METADATA) });
    const cfg = await config('    schemaEvolution: add-columns');

    const plan = await run(['plan', '--config', cfg, '--schema', join(dir, 'rev2.avsc')]);
    expect(plan.err).toBe('');
    expect(plan.code).toBe(2);
    expect(plan.out).toContain(`route access → test-project.${h.dataset}.access`);
    for (const line of ['~ status REQUIRED → NULLABLE', '+ source.zone STRING NULLABLE', '+ region STRING NULLABLE', '+ tags STRING REPEATED'])
      expect(plan.out).toContain(`  ${line}`);
    expect(plan.out).toContain('1 route(s) with changes pending, 0 incompatible, 0 up to date.');
    expect(h.bigquery.callCount('tables.patch')).toBe(0);

    const apply = await run(['apply', '--config', cfg, '--schema', join(dir, 'rev2.avsc')]);
    expect(apply.code).toBe(0);
    expect(apply.out).toContain(': changed');
    const fields = h.bigquery.tableInfo(table)?.schema.fields ?? [];
    expect(fields.map((f) => f.name)).toEqual(['ts', 'service', 'status', 'source', '_message_id', '_publish_time', 'region', 'tags']);
    expect(fields.find((f) => f.name === 'status')?.mode).toBe('NULLABLE');
    expect(h.bigquery.callCount('tables.patch')).toBe(1);

    const again = await run(['plan', '--config', cfg, '--schema', join(dir, 'rev2.avsc')]);
    expect(again.code).toBe(0);
    expect(again.out).toContain(': up to date');
  });

  it('exits 1 on an incompatible change and apply leaves the table untouched', async () => {
    const table = h.table('access');
    h.bigquery.createTable(table, { fields: routeTableFields(REV1 as AvroSchema, METADATA) });
    const before = h.bigquery.tableInfo(table);
    const cfg = await config('    schemaEvolution: add-columns');
    const plan = await run(['plan', '--config', cfg, '--schema', join(dir, 'rev3.avsc')]);
    expect(plan.code).toBe(1);
    expect(plan.out).toContain('  ! status INT64 ≠ STRING');
    const apply = await run(['apply', '--config', cfg, '--schema', join(dir, 'rev3.avsc')]);
    expect(apply.code).toBe(1);
    expect(apply.out).toContain('  ! status INT64 ≠ STRING');
    expect(apply.out).toContain('nothing changed for this route');
    expect(h.bigquery.tableInfo(table)).toEqual(before);
    expect(h.bigquery.callCount('tables.patch')).toBe(0);
  });

  it('plans and creates a missing table with the route createTable layout (schema from a registry id)', async () => {
    await writeFile(join(dir, '7.avsc'), JSON.stringify(REV1));
    h.bigquery.createDataset({ projectId: 'test-project', datasetId: h.dataset });
    const cfg = await config(`    createTable:
      partitioning: { type: DAY, field: ts }
      clustering: [service, status]
      expirationDays: 30
      description: Access logs`);
    const plan = await run(['plan', '--config', cfg, '--schema-id', '7']);
    expect(plan.code).toBe(2);
    expect(plan.out).toContain(': missing, will be created');
    expect(plan.out).toContain('  + ts TIMESTAMP REQUIRED');
    expect(plan.out).toContain('  + source.host STRING REQUIRED');
    expect(h.bigquery.hasTable(h.table('access'))).toBe(false);

    const apply = await run(['apply', '--config', cfg, '--schema-id', '7']);
    expect(apply.code).toBe(0);
    expect(apply.out).toContain(': created');
    expect(h.bigquery.tableInfo(h.table('access'))).toMatchObject({
      timePartitioning: { type: 'DAY', field: 'ts', expirationMs: String(30 * 86_400_000) },
      clustering: { fields: ['service', 'status'] },
      description: 'Access logs',
    });
    expect((await run(['plan', '--config', cfg, '--schema-id', '7'])).code).toBe(0);
  });

  it('a missing table without createTable, or a layout the schema cannot satisfy, is exit 1', async () => {
    h.bigquery.createDataset({ projectId: 'test-project', datasetId: h.dataset });
    const without = await run(['plan', '--config', await config(''), '--schema', join(dir, 'rev1.avsc')]);
    expect(without.code).toBe(1);
    expect(without.out).toContain('! the table is missing and the route has no createTable');
    const bad = await run([
      'plan',
      '--config',
      await config('    createTable: { partitioning: { type: DAY, field: service } }'),
      '--schema',
      join(dir, 'rev1.avsc'),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('! createTable: partitioning field "service" is STRING');
  });

  it('reads the latest revision of a Pub/Sub schema', async () => {
    const table = h.table('access');
    h.bigquery.createTable(table, { fields: routeTableFields(REV1 as AvroSchema, METADATA) });
    const name = uniqueName('access-schema');
    await createAvroSchema(h.pubsub, name, REV1);
    const latest = await commitSchemaRevision(h.pubsub, name, REV2);
    const plan = await run(['plan', '--config', await config(''), '--pubsub-schema', name]);
    expect(plan.code).toBe(2);
    expect(plan.out).toContain(`@${latest.revisionId}`);
    expect(plan.out).toContain('  + region STRING NULLABLE');
  });

  it('refuses a call without exactly one schema source, or with an unknown route', async () => {
    const cfg = await config('');
    expect((await run(['plan', '--config', cfg])).code).toBe(64);
    expect((await run(['plan', '--config', cfg, '--schema', 'a', '--schema-id', '1'])).code).toBe(64);
    expect((await run(['plan', '--config', cfg, '--schema', join(dir, 'rev1.avsc'), '--route', 'nope'])).code).toBe(64);
    expect((await run(['drop', '--config', cfg, '--schema', join(dir, 'rev1.avsc')])).code).toBe(64);
  });
});
