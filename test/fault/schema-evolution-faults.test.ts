import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import { FAULT_SCALE, FaultRig, WRITE_APIS } from '../support/fault-rig.js';
import { accessWithNewFields, accessWithNewFieldsRecord, encode } from '../support/log-schemas.js';

/**
 * Three worker processes see a producer's new, additive schema revision at the same moment, under
 * load, with streaming writes (insertAll's and the Storage Write API's) seeing the new columns only
 * 5 s after they were added.
 */
describe.each(WRITE_APIS)('fault injection: a new schema revision seen by three replicas (%s)', (writeApi) => {
  let rig: FaultRig;

  beforeEach(async () => {
    rig = await FaultRig.create({ writeApi });
    await writeFile(join(rig.dir, '3.avsc'), JSON.stringify(accessWithNewFields));
  });

  afterEach(async () => {
    await rig.close();
  });

  it('one effective change, few update calls, nothing dead-lettered, conservation', async () => {
    const path = join(rig.dir, 'evolution.yaml');
    await writeFile(
      path,
      rig.h.configYaml(`
registry: { kind: directory, directory: ${rig.dir} }
log: { level: info }
flowControl: { maxMessages: 200 }
routes:
  access: { match: [access], table: $DATASET.access, batch: { maxRows: 100, maxDelayMs: 100 }, maxInFlightBatches: 2, schemaEvolution: add-columns, metadata: { messageId: _message_id, publishTime: _publish_time } }
  audit: { match: [audit], table: $DATASET.audit, batch: { maxRows: 100, maxDelayMs: 100 }, maxInFlightBatches: 2, schemaEvolution: add-columns, metadata: { messageId: _message_id, publishTime: _publish_time } }
`),
    );
    rig.h.bigquery.setSchemaPropagationDelay(5000);
    rig.h.bigquery.resetCallCounts();
    const workers = await Promise.all([rig.spawnWorker(path), rig.spawnWorker(path), rig.spawnWorker(path)]);
    const published: string[] = [];
    // The old revision under load, then the new one mixed in while the old keeps coming.
    published.push(...(await rig.publishSteady(600 * FAULT_SCALE, 1000)));
    const newRevision = Array.from({ length: 600 * FAULT_SCALE }, (_, i) => ({
      data: Buffer.concat([encodeConfluentHeader(3), encode(accessWithNewFields, accessWithNewFieldsRecord(i))]),
      attributes: { log_type: 'access' },
    }));
    const steady = rig.publishSteady(600 * FAULT_SCALE, 2000);
    for (let i = 0; i < newRevision.length; i += 100) published.push(...(await rig.h.publish(newRevision.slice(i, i + 100))));
    published.push(...(await steady));

    await rig.expectConservation(published, 120_000);
    const changes = await Promise.all(workers.map((w) => w.metric('tributary_table_changes_total', { kind: 'added-columns', result: 'ok' })));
    const conflicts = await Promise.all(workers.map((w) => w.metric('tributary_table_changes_total', { kind: 'added-columns', result: 'conflict' })));
    const propagating = await Promise.all(workers.map((w) => w.metric('tributary_retries_total', { route: 'access', code: 'SCHEMA_PROPAGATING' })));
    for (const w of workers) w.child.kill('SIGTERM');
    const exits = await Promise.all(workers.map((w) => w.exit));
    const c = await rig.account(published);
    const updateCalls = rig.h.bigquery.callCount('tables.patch') + rig.h.bigquery.callCount('tables.update');
    rig.report('schema-evolution-replicas', c, {
      updateCalls,
      effectiveChanges: changes.reduce((a, b) => a + b, 0),
      conflicts: conflicts.reduce((a, b) => a + b, 0),
      propagatingRetries: propagating.reduce((a, b) => a + b, 0),
    });
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0]);
    expect(c.lost).toEqual([]);
    expect(c.both).toEqual([]);
    expect(c.deadLettered).toBe(0);
    expect(c.inserted).toBe(c.published);
    expect(changes.reduce((a, b) => a + b, 0)).toBe(1);
    expect(updateCalls).toBeLessThanOrEqual(3);
    const fields = rig.h.bigquery.tableInfo(rig.access)?.schema.fields.map((f) => f.name) ?? [];
    expect(fields.filter((f) => f === 'region')).toHaveLength(1);
    const rows = rig.h.bigquery.rows(rig.access).map((r) => r.json);
    expect(rows.filter((r) => typeof r.region === 'string')).toHaveLength(600 * FAULT_SCALE);
  });
});
