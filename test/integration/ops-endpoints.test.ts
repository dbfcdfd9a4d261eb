import { setTimeout as delay } from 'node:timers/promises';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/app.js';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import { accessRecord, accessV1, audit, auditRecord, encode, tableSchemaFor } from '../support/log-schemas.js';
import { metricValue as value, parseMetrics, type Sample } from '../support/prometheus-text.js';
import { Harness } from '../support/worker-harness.js';

describe('metrics and health endpoints of a running worker', () => {
  let h: Harness;
  let worker: Worker;
  let base: string;

  const scrape = async (): Promise<Sample[]> => parseMetrics(await (await fetch(`${base}/metrics`)).text());
  const json = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${base}${path}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  /** The endpoints are state, not events: poll them (each poll is an HTTP round trip) until true. */
  async function until<T>(probe: () => Promise<T>, ok: (t: T) => boolean, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const t = await probe();
      if (ok(t)) return t;
      if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${JSON.stringify(t).slice(0, 500)}`);
      await delay(25);
    }
  }

  beforeEach(async () => {
    h = await Harness.create();
    const dir = await mkdtemp(join(tmpdir(), 'tributary-ops-'));
    await writeFile(join(dir, '1.avsc'), JSON.stringify(accessV1));
    await writeFile(join(dir, '2.avsc'), JSON.stringify(audit));
    h.bigquery.createTable(h.table('access'), tableSchemaFor(accessV1));
    h.bigquery.createTable(h.table('audit'), tableSchemaFor(audit));
    worker = await h.startWorker(`
registry: { kind: directory, directory: ${dir} }
routes:
  access: { match: [access], table: $DATASET.access, batch: { maxRows: 50, maxDelayMs: 20 } }
  audit: { match: [audit], table: $DATASET.audit, batch: { maxRows: 50, maxDelayMs: 20 } }
`);
    base = `http://127.0.0.1:${worker.port}`;
  });

  afterEach(async () => {
    await h.close();
  });

  const access = (n: number): Array<{ data: Buffer; attributes: Record<string, string> }> =>
    Array.from({ length: n }, (_, i) => ({
      data: Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(i))]),
      attributes: { log_type: 'access' },
    }));
  const audits = (n: number): Array<{ data: Buffer; attributes: Record<string, string> }> =>
    Array.from({ length: n }, (_, i) => ({
      data: Buffer.concat([encodeConfluentHeader(2), encode(audit, auditRecord(i))]),
      attributes: { log_type: 'audit' },
    }));

  it('counts what flowed: received, settled, rows, billed bytes, age at settle, schema cache, process', async () => {
    await h.publish([...access(20), ...audits(10)]);
    await h.bigquery.waitForRows(h.table('access'), 20, 15_000);
    await h.bigquery.waitForRows(h.table('audit'), 10, 15_000);
    const m = await until(scrape, (s) => value(s, 'tributary_messages_settled_total', { outcome: 'acked' }) === 30);
    const sub = h.subscription.name;
    expect(value(m, 'tributary_messages_received_total', { subscription: sub })).toBe(30);
    expect(value(m, 'tributary_messages_settled_total', { route: 'access', outcome: 'acked', code: 'none' })).toBe(20);
    expect(value(m, 'tributary_rows_inserted_total', { route: 'access' })).toBe(20);
    // Storage Write (the default write API) bills the rows' own bytes, about a hundred each here;
    // insertAll would have billed 1 KB per row.
    const billed = value(m, 'tributary_insert_billed_bytes_total', { route: 'access', write_api: 'storage-write' }) ?? 0;
    expect(billed).toBeGreaterThan(20 * 50);
    expect(billed).toBeLessThan((20 * 1024) / 4);
    expect(value(m, 'tributary_insert_billed_bytes_total', { route: 'access', write_api: 'insert-all' })).toBeUndefined();
    // One observation per message, not per batch.
    expect(value(m, 'tributary_message_age_at_settle_seconds_count', { route: 'access', outcome: 'acked' })).toBe(20);
    expect(value(m, 'tributary_message_age_at_settle_seconds_bucket', { route: 'audit', outcome: 'acked', le: '+Inf' })).toBe(10);
    expect(value(m, 'tributary_message_age_at_settle_seconds_sum', { route: 'access', outcome: 'acked' })).toBeGreaterThan(0);
    expect(value(m, 'tributary_insert_request_duration_seconds_count', { route: 'audit', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(value(m, 'tributary_batch_rows_sum', { route: 'audit' })).toBe(10);
    expect(value(m, 'tributary_route_state', { route: 'access', state: 'running', reason: 'none' })).toBe(1);
    expect(value(m, 'tributary_route_state', { route: 'access', state: 'paused' })).toBe(0);
    // Messages that arrive while their schema is being fetched wait on that one fetch (misses).
    expect((value(m, 'tributary_schema_cache_misses_total') ?? 0) + (value(m, 'tributary_schema_cache_hits_total') ?? 0)).toBe(30);
    expect(value(m, 'tributary_schema_cache_misses_total')).toBeGreaterThanOrEqual(2);
    expect(value(m, 'tributary_schema_cache_entries')).toBe(2);
    expect(value(m, 'tributary_schema_fetch_duration_seconds_count', { registry: 'directory', outcome: 'ok' })).toBe(2);
    expect(value(m, 'tributary_in_flight_messages', { subscription: sub })).toBe(0);
    expect(value(m, 'tributary_oldest_in_flight_message_age_seconds', { subscription: sub })).toBe(0);
    expect(value(m, 'tributary_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(value(m, 'tributary_build_info', { version: '0.1.0' })).toBe(1);
    // Bounded labels: no message id ever becomes a label value.
    expect(m.every((s) => Object.values(s.labels).every((v) => v.length < 200))).toBe(true);
  });

  it('shows messages in flight and their age while inserts are slow', async () => {
    h.writeLatency(1500);
    await h.publish(access(10));
    const m = await until(
      scrape,
      (s) => (value(s, 'tributary_in_flight_messages') ?? 0) === 10 && (value(s, 'tributary_oldest_in_flight_message_age_seconds') ?? 0) > 0.1,
    );
    expect(value(m, 'tributary_in_flight_bytes')).toBeGreaterThan(10 * 50);
    await h.bigquery.waitForRows(h.table('access'), 10, 15_000);
    await until(scrape, (s) => value(s, 'tributary_in_flight_messages') === 0);
  });

  it('a BigQuery outage pauses one route: readiness and liveness stay up, the route says why', async () => {
    h.denyWrites(h.table('audit'));
    await h.publish([...access(5), ...audits(5)]);
    const ready = await until(
      () => json('/readyz'),
      (r) => (r.body.routes as Array<{ route: string; state: string }>).some((x) => x.route === 'audit' && x.state === 'paused'),
    );
    expect(ready.status).toBe(200);
    const routes = ready.body.routes as Array<Record<string, unknown>>;
    const auditRoute = routes.find((r) => r.route === 'audit');
    expect(auditRoute).toMatchObject({ state: 'paused', reason: { code: 'ACCESS_DENIED' }, lastError: { code: 'ACCESS_DENIED' } });
    await h.bigquery.waitForRows(h.table('access'), 5, 15_000);
    const accessRoute = (await json('/readyz')).body.routes as Array<Record<string, unknown>>;
    expect(accessRoute.find((r) => r.route === 'access')).toMatchObject({ state: 'running', lastSuccessAt: expect.any(Number) });
    expect(ready.body).toMatchObject({ status: 'ready', subscriptions: [{ subscription: h.subscription.name, open: true }] });

    const live = await json('/healthz');
    expect(live).toMatchObject({ status: 200, body: { status: 'ok' } });
    const m = await scrape();
    expect(value(m, 'tributary_route_state', { route: 'audit', state: 'paused', reason: 'ACCESS_DENIED' })).toBe(1);
    expect(value(m, 'tributary_route_state', { route: 'audit', state: 'running', reason: 'ACCESS_DENIED' })).toBe(0);
    expect(value(m, 'tributary_messages_settled_total', { route: 'audit', outcome: 'dead-lettered' })).toBeUndefined();

    h.denyWrites(h.table('audit'), false);
    await h.bigquery.waitForRows(h.table('audit'), 5, 20_000);
    const after = await until(scrape, (s) => value(s, 'tributary_route_state', { route: 'audit', state: 'running', reason: 'none' }) === 1);
    expect(value(after, 'tributary_route_state', { route: 'audit', state: 'paused' })).toBe(0);
  });

  it('readiness turns 503 while draining', async () => {
    const stopping = worker.stop();
    const r = await json('/readyz').catch(() => ({ status: 503, body: { status: 'draining' } }));
    expect(r.status).toBe(503);
    await stopping;
  });
});
