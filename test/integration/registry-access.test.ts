import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/app.js';
import type { Logger } from '../../src/core/ports.js';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import type { ConfluentRegistryServer } from '../support/confluent-registry-server.js';
import { accessRecord, accessV1, encode, tableSchemaFor } from '../support/log-schemas.js';
import { metricValue as value, parseMetrics } from '../support/prometheus-text.js';
import { until } from '../support/until.js';
import { Harness } from '../support/worker-harness.js';

/** Keeps the error lines a worker logs; the rest is dropped. */
function errorLog(): Logger & { errors: Array<{ fields: object; message: string }> } {
  const errors: Array<{ fields: object; message: string }> = [];
  return { errors, debug() {}, info() {}, warn() {}, error: (fields, message) => errors.push({ fields, message }) };
}

describe('a registry that refuses the worker: a configuration fault, not a dead letter', () => {
  let h: Harness;
  let registry: ConfluentRegistryServer;
  let worker: Worker;
  let log: ReturnType<typeof errorLog>;

  const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`http://127.0.0.1:${worker.port}${path}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  beforeEach(async () => {
    // insertAll: its rows carry the message id as insertId, which the conservation check reads.
    h = await Harness.create({ writeApi: 'insert-all' });
    registry = await h.confluentRegistry();
    registry.register(1, accessV1);
    // The worker's token is not (yet) accepted: every read answers 401.
    registry.setAuth({ bearer: 'granted-later' });
    h.bigquery.createTable(h.table('access'), tableSchemaFor(accessV1));
    log = errorLog();
    worker = await h.startWorker(
      `
registry: { kind: confluent, confluent: { url: ${registry.url}, bearerToken: worker-token, timeoutMs: 2000 } }
routes:
  access: { match: [access], table: $DATASET.access, batch: { maxRows: 50, maxDelayMs: 20 } }
`,
      log,
    );
  });

  afterEach(async () => {
    await h.close();
  });

  it('nacks and redelivers with readiness failing and one loud error, then inserts everything once the registry lets it read', async () => {
    const published = await h.publish(
      Array.from({ length: 5 }, (_, i) => ({
        data: Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(i))]),
        attributes: { log_type: 'access' },
      })),
    );

    let ready = await get('/readyz');
    await until('readiness to fail on the registry', async () => {
      ready = await get('/readyz');
      return ready.status === 503;
    });
    expect(ready.body).toMatchObject({ status: 'not ready', registry: { healthy: false, code: 'REGISTRY_ACCESS_DENIED' }, subscriptions: [{ open: true }] });
    expect((ready.body.registry as { reason: string }).reason).toContain('401');
    // Liveness is not readiness: the pod is not restarted over a permission.
    expect((await get('/healthz')).status).toBe(200);

    // Nacked and redelivered: the registry is asked again and again, far beyond one message's retries.
    await until('redeliveries', () => registry.requests.length >= 20);
    const nacked = async (): Promise<number> =>
      value(parseMetrics(await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text()), 'tributary_messages_settled_total', {
        route: 'unrouted',
        outcome: 'nacked',
        code: 'REGISTRY_ACCESS_DENIED',
      }) ?? 0;
    await until('every message nacked at least once', async () => (await nacked()) >= 5);
    expect(await h.pullDeadLetters(300)).toEqual([]);
    // Loud, not a log line per message: one error for the standing fault.
    const refusals = log.errors.filter((e) => e.message.includes('refuses the worker'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]?.fields).toMatchObject({ code: 'REGISTRY_ACCESS_DENIED' });

    registry.setAuth({ bearer: 'worker-token' });
    await h.bigquery.waitForRows(h.table('access'), 5, 20_000);
    await until('readiness to come back', async () => (await get('/readyz')).status === 200);
    expect((await get('/readyz')).body).toMatchObject({ status: 'ready', registry: { healthy: true } });
    const { deadLettered } = await h.expectConservation(published, [h.table('access')]);
    expect(deadLettered).toEqual([]);
  });
});
