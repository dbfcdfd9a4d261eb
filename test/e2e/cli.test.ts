import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import { startCli } from '../support/cli-process.js';
import { accessRecord, accessV1, encode, tableSchemaFor } from '../support/log-schemas.js';
import { pullAll } from '../support/pubsub-fixtures.js';
import { until } from '../support/until.js';
import { Harness } from '../support/worker-harness.js';

describe('the built CLI', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.create();
  });

  afterEach(async () => {
    await h.close();
  });

  it('--version and validate', async () => {
    const version = startCli(['--version']);
    expect(await version.exit).toBe(0);
    const dir = await mkdtemp(join(tmpdir(), 'tributary-e2e-'));
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'projectId: p-1234\nsubscription: s\nrouting: { from: nowhere }\nroutes:\n  access: { match: [a], table: nope }\n');
    const invalid = startCli(['validate', '--config', bad]);
    expect(await invalid.exit).toBe(78);
    const report = invalid.stderr.join('\n');
    expect(report).toContain('routing.from');
    expect(report).toContain('routes.access.table');
    expect(report).toContain('deadLetter');
    // every value can come from the environment
    const fixed = startCli(['validate', '--config', bad], {
      TRIBUTARY_ROUTING_FROM: 'attribute',
      TRIBUTARY_ROUTES_ACCESS_TABLE: 'logs.access',
      TRIBUTARY_DEAD_LETTER_TOPIC: 'dl',
    });
    expect(await fixed.exit).toBe(0);
    // `run` with a bad config: one clear line, exit 78, no stack
    const run = startCli(['run', '--config', bad]);
    expect(await run.exit).toBe(78);
    expect(run.stderr).toHaveLength(1);
    expect(JSON.parse(run.stderr[0] ?? '{}')).toMatchObject({ severity: 'CRITICAL', message: expect.stringContaining('Invalid configuration') });
  });

  it('runs the worker, and on SIGTERM drains, exits 0 and loses nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tributary-e2e-'));
    await writeFile(join(dir, '1.avsc'), JSON.stringify(accessV1));
    const table = h.table('access');
    h.bigquery.createTable(table, tableSchemaFor(accessV1));
    // slow inserts so that batches are in flight when the signal arrives
    h.writeLatency(150);
    const configPath = join(dir, 'tributary.yaml');
    await writeFile(
      configPath,
      h.configYaml(`
registry: { kind: directory, directory: ${dir} }
routes:
  access:
    match: [access]
    table: $DATASET.access
    batch: { maxRows: 100, maxDelayMs: 100 }
    maxInFlightBatches: 2
    metadata: { messageId: _message_id, publishTime: _publish_time }
`),
    );
    const cli = startCli(['run', '--config', configPath]);
    await cli.waitForLine((l) => l.message === 'tributary started.');
    const published: string[] = [];
    const poison = await h.publish([{ data: Buffer.from('not avro'), attributes: { log_type: 'access' } }]);
    published.push(...poison);
    for (let round = 0; round < 10; round++) {
      published.push(
        ...(await h.publish(
          Array.from({ length: 100 }, (_, i) => ({
            data: Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(round * 100 + i))]),
            attributes: { log_type: 'access' },
          })),
        )),
      );
    }
    await h.bigquery.waitForRows(table, 200, 30_000);
    cli.child.kill('SIGTERM');
    expect(await cli.exit).toBe(0);
    expect(cli.lines.some((l) => l.message === 'tributary stopped.' && l.drained === true)).toBe(true);
    expect(cli.lines.every((l) => typeof l.severity === 'string')).toBe(true);

    // conservation: inserted + dead-lettered + still in the subscription = published
    const remaining = await pullAll(h.subscription, { timeoutMs: 1500 });
    await h.pullDeadLetters(500);
    const inserted = h.insertedIds([table]);
    const dead = h.deadLetters.map((m) => m.attributes.tributary_source_message_id);
    const left = remaining.map((m) => m.messageId);
    const accounted = new Set([...inserted, ...dead, ...left]);
    expect(published.filter((id) => !accounted.has(id))).toEqual([]);
    expect(inserted.filter((id) => dead.includes(id))).toEqual([]);
    expect(new Set(inserted).size).toBe(inserted.length);
    expect(dead).toContain(poison[0]);
    expect(inserted.length).toBeGreaterThanOrEqual(200);
  });

  it('a subscription deleted under a running worker: /healthz fails, one CRITICAL line, drain, exit 69 within a minute', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tributary-e2e-'));
    await writeFile(join(dir, '1.avsc'), JSON.stringify(accessV1));
    const table = h.table('access');
    h.bigquery.createTable(table, tableSchemaFor(accessV1));
    const configPath = join(dir, 'tributary.yaml');
    await writeFile(
      configPath,
      h.configYaml(
        `registry: { kind: directory, directory: ${dir} }\nroutes:\n  access: { match: [access], table: $DATASET.access, batch: { maxDelayMs: 50 } }\n`,
      ),
    );
    const cli = startCli(['run', '--config', configPath], { TRIBUTARY_SHUTDOWN_REOPEN_WINDOW_MS: '5000' });
    const started = await cli.waitForLine((l) => l.message === 'tributary started.');
    const healthz = `http://127.0.0.1:${String(started.port)}/healthz`;
    await h.publish(
      Array.from({ length: 20 }, (_, i) => ({
        data: Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(i))]),
        attributes: { log_type: 'access' },
      })),
    );
    await h.bigquery.waitForRows(table, 20, 30_000);
    expect((await fetch(healthz)).status).toBe(200);

    await h.subscription.delete();
    const deletedAt = Date.now();
    let sawUnhealthy = false;
    await until('/healthz fails', async () => {
      const answer = await fetch(healthz).catch(() => undefined);
      sawUnhealthy = answer?.status === 503;
      return sawUnhealthy;
    });
    const exit = await cli.exited;
    expect(sawUnhealthy).toBe(true);
    expect(exit.code).toBe(69);
    expect(exit.at - deletedAt).toBeLessThan(60_000);
    const critical = cli.lines.filter((l) => l.severity === 'CRITICAL');
    expect(critical).toHaveLength(1);
    expect(critical[0]).toMatchObject({ subscription: h.subscription.name, status: 'NOT_FOUND', message: expect.stringContaining(h.subscription.name) });
    expect(cli.lines.some((l) => l.message === 'tributary stopped.')).toBe(true);
  });
});
