import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultRig, report } from '../support/fault-rig.js';
import { metricValue, parseMetrics } from '../support/prometheus-text.js';
import { createTopicAndSubscription, uniqueName } from '../support/pubsub-fixtures.js';
import { until } from '../support/until.js';

/** Faults of the subscription the worker reads (issue 10, finding 2). */
describe('fault injection: the subscription', () => {
  let rig: FaultRig;

  beforeEach(async () => {
    rig = await FaultRig.create();
  });

  afterEach(async () => {
    await rig.close();
  });

  it('subscription deleted under load → /healthz fails, one CRITICAL line naming it, exit 69 within a minute; nothing acked without being stored', async () => {
    const { topic, subscription } = await createTopicAndSubscription(rig.h.pubsub, {
      topicName: uniqueName('doomed-topic'),
      subscriptionName: uniqueName('doomed-sub'),
      ackDeadlineSeconds: 30,
    });
    const shortName = subscription.name.split('/').pop() as string;
    // Default flow control and reopen window (45 s): the worker as deployed.
    const worker = await rig.spawnWorker(await rig.writeConfig('', { subscription: subscription.name }));
    const base = `http://127.0.0.1:${worker.port}`;
    const load = rig.publishSteady(6_000, 6_000, 0, topic);
    await until('rows of the load stored', () => rig.insertedIds().length >= 500, 30_000);

    // Every scrape: what the worker says it acked (after an insert, or after a dead-letter publish)
    // cannot exceed what BigQuery stored plus what reached the dead-letter topic, read afterwards.
    const samples: Array<{ acked: number; stored: number; deadLettered: number }> = [];
    let exited = false;
    const sampling = (async () => {
      while (!exited) {
        try {
          const samplesText = parseMetrics(await (await fetch(`${base}/metrics`)).text());
          const acked = metricValue(samplesText, 'tributary_messages_settled_total', { outcome: 'acked' }) ?? 0;
          const dead = metricValue(samplesText, 'tributary_messages_settled_total', { outcome: 'dead-lettered' }) ?? 0;
          await rig.h.pullDeadLetters(50);
          samples.push({ acked: acked + dead, stored: new Set(rig.insertedIds()).size, deadLettered: rig.deadLetterIds().length });
        } catch {
          // the ops server is gone: the worker is exiting
        }
        await new Promise((r) => setTimeout(r, 100)); // scrape period
      }
    })();

    await subscription.delete();
    const deletedAt = Date.now();
    let unhealthy: { status: number; body: Record<string, unknown> } | undefined;
    await until(
      '/healthz to fail',
      async () => {
        const res = await fetch(`${base}/healthz`).catch(() => undefined);
        if (res === undefined) return false;
        const body = (await res.json()) as Record<string, unknown>;
        if (res.status !== 503) return false;
        unhealthy = { status: res.status, body };
        return true;
      },
      30_000,
    );
    const unhealthyAfterMs = Date.now() - deletedAt;
    const exit = await Promise.race([worker.exit, new Promise<null>((r) => setTimeout(() => r(null), 70_000))]);
    exited = true;
    await sampling;
    const published = await load;

    const critical = [
      ...worker.lines,
      ...worker.stderr.map((text) => {
        try {
          return JSON.parse(text) as Record<string, unknown>;
        } catch {
          return { raw: text };
        }
      }),
    ].filter((l) => l.severity === 'CRITICAL');
    const stored = rig.insertedIds();
    const c = await rig.account(published);
    const lastSample = samples.at(-1);
    report(
      'subscription-deleted',
      { ...c, remaining: 0, lost: [] },
      {
        unhealthyAfterMs,
        exitAfterMs: exit === null ? 'none' : exit.at - deletedAt,
        exitCode: exit === null ? 'none' : String(exit.code),
        ackedAtLastScrape: lastSample?.acked ?? 0,
        storedAtLastScrape: lastSample?.stored ?? 0,
        notStoredNorDeadLettered: published.length - c.inserted - c.deadLettered,
      },
    );
    expect(unhealthy).toMatchObject({ status: 503, body: { live: false } });
    expect(JSON.stringify(unhealthy?.body)).toContain(shortName);
    expect(exit).not.toBeNull();
    expect(exit?.code).toBe(69);
    expect((exit?.at ?? Number.POSITIVE_INFINITY) - deletedAt).toBeLessThan(60_000);
    expect(critical).toHaveLength(1);
    expect(String(critical[0]?.message)).toContain(shortName);
    // Nothing acked that was not stored or dead-lettered, at any moment seen.
    expect(samples.length).toBeGreaterThan(10);
    expect(samples.filter((s) => s.acked > s.stored + s.deadLettered)).toEqual([]);
    expect(lastSample?.acked).toBeGreaterThan(0);
    // What was stored was published here, once.
    const publishedSet = new Set(published);
    expect(stored.filter((id) => !publishedSet.has(id))).toEqual([]);
    expect(new Set(stored).size).toBe(stored.length);
    expect(c.both).toEqual([]);
  }, 150_000);
});
