import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FAULT_SCALE, FaultRig, WRITE_APIS } from '../support/fault-rig.js';
import { until } from '../support/until.js';
import { accessV1, audit, tableSchemaFor } from '../support/log-schemas.js';

/**
 * Faults of what the worker depends on: BigQuery, the dead-letter topic, the registry; each on both
 * write APIs. insertAll's own semantics (the same insertIds on a retry, `stopped` rows sent again)
 * are checked on insertAll; the Storage Write API's (at least once: rows stored twice counted and
 * bounded; row errors dead-letter exactly those rows) on Storage Write.
 */
describe.each(WRITE_APIS)('fault injection: dependencies (%s)', (writeApi) => {
  let rig: FaultRig;

  beforeEach(async () => {
    rig = await FaultRig.create({ writeApi });
  });

  afterEach(async () => {
    await rig.close();
  });

  it('BigQuery outage: 503 backendError / UNAVAILABLE for a window → no dead-letters, bounded retries, drains after', async () => {
    const worker = await rig.spawnWorker(await rig.writeConfig());
    const outageMs = 3000 * FAULT_SCALE;
    rig.outage(true);
    const published = await rig.publishSteady(1500, outageMs);
    rig.outage(false);
    const failed = rig.writeRequests().filter((r) => r.injected);
    await rig.expectConservation(published, 60_000);
    const retries = await worker.metric('tributary_retries_total', { code: 'BIGQUERY_UNAVAILABLE' });
    worker.child.kill('SIGTERM');
    await worker.exit;
    const c = await rig.account(published);
    rig.report('bigquery-outage', c, { outageMs, failedRequests: failed.length, retries });
    expect(c.deadLettered).toBe(0);
    expect(c.lost).toEqual([]);
    expect(c.inserted).toBe(c.published);
    expect(failed.length).toBeGreaterThan(0);
    expect(retries).toBeGreaterThan(0);
    // backoff, not a hot loop: 2 routes × 2 in flight, first retry ≤ 20 ms, capped at 200 ms
    expect(failed.length).toBeLessThan((outageMs / 1000) * 100);
    if (writeApi === 'insert-all') {
      // a row that failed was later stored under the same insertId
      const stored = new Set(rig.insertedIds());
      const failedIds = rig.h.bigquery.requests.filter((r) => r.status === 503).flatMap((r) => r.insertIds);
      expect(failedIds.every((id) => id !== undefined && stored.has(id))).toBe(true);
    } else {
      // A failed append stored nothing, so its retry stores each row once.
      expect(c.duplicates).toBe(0);
    }
  });

  it('quota wall: a throttle above a fixed rate → concurrency adapts, throttled share small, goodput near the allowed rate', async () => {
    const allowedRequestsPerSecond = 8;
    rig.throttle(allowedRequestsPerSecond);
    // a backlog first, so the worker is never short of rows to send: 120 requests of 50 rows
    const published = await rig.publish(6000);
    // What is measured is AIMD and pacing against a quota; each route may hold nearly the whole
    // window, so that routes' shares (the isolation scenarios' subject) do not bounce the backlog.
    const worker = await rig.spawnWorker(await rig.writeConfig('', { maxRows: 50, maxUnsettledRows: 1999 }));
    await rig.expectConservation(published, 90_000);
    worker.child.kill('SIGTERM');
    await worker.exit;
    const requests = rig.writeRequests();
    const inserts = requests.filter((r) => r.ok);
    const throttled = requests.filter((r) => r.throttled).length;
    const first = Math.min(...inserts.map((r) => r.timestamp));
    const last = Math.max(...inserts.map((r) => r.timestamp));
    const goodput = (inserts.length - 1) / ((last - first) / 1000);
    const c = await rig.account(published);
    const share = throttled / requests.length;
    rig.report('quota-wall', c, { allowedRequestsPerSecond, goodputRequestsPerSecond: goodput.toFixed(2), throttled, throttledShare: share.toFixed(3) });
    expect(c.deadLettered).toBe(0);
    expect(c.lost).toEqual([]);
    expect(c.duplicates).toBe(0);
    expect(throttled).toBeGreaterThan(0);
    expect(share).toBeLessThan(0.2);
    expect(goodput).toBeGreaterThan(allowedRequestsPerSecond * 0.6);
  }, 120_000);

  it('poison row in a batch of 500 → that row alone dead-lettered on the first attempt; the rest land', async () => {
    const published = await rig.publish(750);
    const accessIds = published.filter((_, k) => k % 3 !== 2);
    const poisonId = accessIds[137];
    // BigQuery alone can judge this row (pre-validation passes it): the test server calls it invalid.
    rig.rejectRow(poisonId as string);
    const worker = await rig.spawnWorker(await rig.writeConfig('', { maxRows: 500 }));
    await rig.expectConservation(published, 60_000);
    worker.child.kill('SIGTERM');
    await worker.exit;
    const c = await rig.account(published);
    const refused = rig.writeRequests().filter((r) => r.rowErrorCount > 0);
    rig.report('poison-row', c, { batchRows: 500, requestsWithRowErrors: refused.length, rowsInThem: refused.reduce((n, r) => n + r.rowCount, 0) });
    expect(c.deadLettered).toBe(1);
    expect(rig.h.deadLetters[0]?.attributes).toMatchObject({
      tributary_error_code: 'BIGQUERY_ROW_INVALID',
      tributary_attempts: '1',
      tributary_source_message_id: poisonId,
    });
    expect(c.lost).toEqual([]);
    expect(c.inserted).toBe(c.published - 1);
    expect(c.duplicates).toBe(0);
    if (writeApi === 'insert-all') {
      // The request that carried the poison row is resent without it, with the same insertIds.
      const bq = rig.h.bigquery;
      const first = bq.requests.find((r) => r.insertIds.includes(poisonId));
      const resent = bq.requests.filter((r) => r !== first && r.insertIds.some((id) => first?.insertIds.includes(id)));
      expect(first?.insertIds.length).toBeGreaterThan(1);
      expect(resent.flatMap((r) => r.insertIds).sort()).toEqual(first?.insertIds.filter((id) => id !== poisonId).sort());
    } else {
      // One append was refused, naming exactly the poison row; nothing of it was stored, and its
      // other rows were sent again and stored once (duplicates 0 above).
      expect(refused).toHaveLength(1);
      expect(refused[0]?.rowErrorCount).toBe(1);
      expect(refused[0]?.rowCount).toBeGreaterThan(1);
      expect(refused[0]?.storedRowCount).toBe(0);
    }
  });

  it('broken destination: one table deleted mid-run → that route pauses and probes, the other keeps flowing, it resumes by itself', async () => {
    const bq = rig.h.bigquery;
    const worker = await rig.spawnWorker(await rig.writeConfig());
    const before = await rig.publish(300);
    await rig.expectConservation(before, 30_000);
    const goneWithTheTable = rig.h.insertedIds([rig.access]);
    bq.deleteTable(rig.access);
    const pausedAt = Date.now();
    const during = await rig.publishSteady(900, 2500);
    const state = await worker.ready();
    const access = state.body.routes?.find((r) => r.route === 'access');
    const auditState = state.body.routes?.find((r) => r.route === 'audit');
    const auditRowsDuring = bq.rows(rig.audit).length;
    const probes = bq.httpLog.filter((e) => e.method === 'GET' && e.path.endsWith('/tables/access') && e.timestamp >= pausedAt).length;
    const pausedFor = Date.now() - pausedAt;
    bq.createTable(rig.access, tableSchemaFor(accessV1));
    // The access rows inserted before went with the deleted table; they were counted above.
    await rig.expectConservation([...before, ...during], 60_000, goneWithTheTable);
    worker.child.kill('SIGTERM');
    await worker.exit;
    const c = await rig.account(during);
    rig.report('broken-destination', c, { pausedForMs: pausedFor, probes });
    expect(access).toMatchObject({ state: 'paused', reason: { code: 'TABLE_NOT_FOUND' } });
    expect(auditState).toMatchObject({ state: 'running' });
    expect(auditRowsDuring).toBeGreaterThan(100 + 250);
    expect(c.deadLettered).toBe(0);
    expect(c.lost).toEqual([]);
    // probes back off to probeIntervalMs (200 ms here): at most one per period
    expect(probes).toBeLessThanOrEqual(Math.ceil(pausedFor / 100) + 2);
  });

  it('dead-letter topic deleted → no poison message is acked; they are dead-lettered once the topic is back', async () => {
    const worker = await rig.spawnWorker(await rig.writeConfig());
    await rig.h.deadLetterTopic.delete();
    const published = await rig.publish(300, 10);
    const poison = published.filter((_, k) => k % 10 === 9);
    await rig.expectConservation(
      published.filter((id) => !poison.includes(id)),
      30_000,
    );
    // Each poison message is nacked after its publish retries run out, then redelivered.
    const nackedForDeadLetter = (): Promise<number> => worker.metric('tributary_messages_settled_total', { outcome: 'nacked', code: 'DEAD_LETTER_FAILED' });
    await until('a dead-letter publish to fail and its message to be nacked', async () => (await nackedForDeadLetter()) >= poison.length, 30_000);
    const failures = await nackedForDeadLetter();
    // The dead-letter subscription may be unreadable while its topic is gone: the worker's own log is
    // the check that cannot be lost, the pull a second one where it works.
    expect(worker.lines.filter((l) => l.message === 'Message dead-lettered.')).toEqual([]);
    await rig.h.pullDeadLetters(100).catch(() => undefined);
    expect(rig.deadLetterIds()).toEqual([]);
    // The topic comes back before its subscription can: Pub/Sub drops what reaches a topic without
    // a subscription. A dead letter confirmed in that gap was delivered by tributary and dropped by
    // Pub/Sub (the warning in docs/deployment.md); the worker's log names it, with the time of the confirmation.
    await rig.recreateDeadLetterTopic();
    const subscribedAt = Date.now();
    const confirmedBefore = (at: number): string[] =>
      worker.lines.filter((l) => l.message === 'Message dead-lettered.' && Date.parse(String(l.time)) <= at).map((l) => String(l.messageId));
    await until(
      'every poison message dead-lettered',
      async () => {
        await rig.h.pullDeadLetters(100);
        const settled = new Set([...rig.deadLetterIds(), ...confirmedBefore(subscribedAt)]);
        return poison.every((id) => settled.has(id));
      },
      60_000,
    );
    worker.child.kill('SIGTERM');
    await worker.exit;
    const c = await rig.account(published);
    const droppedInTheGap = poison.filter((id) => !rig.deadLetterIds().includes(id));
    rig.report('dead-letter-topic-deleted', c, { nackedWhileDeleted: failures, confirmedBeforeTheSubscription: droppedInTheGap.length });
    expect(failures).toBeGreaterThan(0);
    expect(c.deadLettered + droppedInTheGap.length).toBe(poison.length);
    expect(droppedInTheGap.every((id) => confirmedBefore(subscribedAt).includes(id))).toBe(true);
    expect(c.inserted).toBe(published.length - poison.length);
    expect(c.lost.filter((id) => !droppedInTheGap.includes(id))).toEqual([]);
  }, 120_000);

  it('registry outage for a window → retried, nothing dead-lettered, resumes', async () => {
    const registry = await rig.h.confluentRegistry();
    registry.register(1, accessV1);
    registry.register(2, audit);
    registry.failNext(1_000_000, 503);
    const worker = await rig.spawnWorker(await rig.writeConfig('', { registry: `{ kind: confluent, confluent: { url: ${registry.url}, timeoutMs: 1000 } }` }));
    const published = await rig.publishSteady(600, 2000 * FAULT_SCALE);
    const failedFetches = registry.requests.length;
    registry.reset();
    registry.register(1, accessV1);
    registry.register(2, audit);
    await rig.expectConservation(published, 60_000);
    worker.child.kill('SIGTERM');
    await worker.exit;
    const c = await rig.account(published);
    rig.report('registry-outage', c, { failedFetches });
    expect(failedFetches).toBeGreaterThan(0);
    expect(c.deadLettered).toBe(0);
    expect(c.lost).toEqual([]);
  });

  it('slow sink: inserts slower than the ack deadline → leases are extended, duplicates ≤ 1 %', async () => {
    const subscription = await rig.shortDeadlineSubscription();
    rig.latency(12_000);
    const published = await rig.publish(600);
    const worker = await rig.spawnWorker(await rig.writeConfig('', { subscription }));
    await rig.expectConservation(published, 90_000);
    worker.child.kill('SIGTERM');
    await worker.exit;
    const c = await rig.account(published, subscription);
    rig.report('slow-sink', c, { insertLatencyMs: 12_000, ackDeadlineSeconds: 10 });
    expect(c.lost).toEqual([]);
    expect(c.inserted).toBe(c.published);
    expect(c.duplicates / c.published).toBeLessThanOrEqual(0.01);
  }, 120_000);
});
