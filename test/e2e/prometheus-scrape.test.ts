import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import { buildContainer } from '../support/avro-container.js';
import { startCli, type Cli } from '../support/cli-process.js';
import { accessRecord, accessV1, audit, auditRecord, encode, tableSchemaFor } from '../support/log-schemas.js';
import { prometheusAvailable, startPrometheus, type PrometheusServer } from '../support/prometheus-server.js';
import { promtool, promtoolAvailable, warnMissing } from '../support/promtool.js';
import { until } from '../support/until.js';
import { Harness } from '../support/worker-harness.js';

/**
 * A real Prometheus scrapes the built CLI while it works: access messages flow, a few poison
 * messages are dead-lettered, the audit route is paused (its table does not exist), the first
 * inserts are retried. Then every dashboard query and every rule expression is evaluated by that
 * Prometheus: a renamed metric or label fails here before an operator finds an empty panel.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RULES = join(ROOT, 'helm/tributary/rules/tributary.rules.yaml');
const DASHBOARD = join(ROOT, 'helm/tributary/dashboards/tributary.json');
const CLOUD_GROUP = 'tributary-cloud-monitoring';

/**
 * Lint findings of `promtool check metrics` that are accepted, each explained in docs/alerts.md
 * ("Metric naming exceptions"): prom-client's default Node metrics, not renamed by us.
 */
const ACCEPTED_METRIC_LINT = [
  'tributary_nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'tributary_nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'tributary_nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
];

/** Grafana's variables as a dashboard user would have them (namespace "All" is the scraped one). */
function substituteGrafanaVariables(expr: string): string {
  return (
    expr
      .replaceAll('$__rate_interval', '10s')
      .replaceAll('$__interval', '2s')
      .replaceAll('$__range', '1m')
      .replaceAll('$namespace', 'e2e')
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template literal
      .replaceAll('${namespace}', 'e2e')
  );
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}

const tools = promtoolAvailable() && prometheusAvailable();
if (!tools) warnMissing('prometheus/promtool', 'the real-Prometheus scrape of the worker');

describe.skipIf(!tools)('a real Prometheus scraping the worker', () => {
  let h: Harness;
  let cli: Cli;
  let prometheus: PrometheusServer;
  let workerUrl: string;
  let publishing = true;
  let load: Promise<void> = Promise.resolve();
  const groups = (parseYaml(readFileSync(RULES, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> }).groups;

  beforeAll(async () => {
    h = await Harness.create();
    const dir = await mkdtemp(join(tmpdir(), 'tributary-prom-'));
    await writeFile(join(dir, '1.avsc'), JSON.stringify(accessV1));
    await writeFile(join(dir, '2.avsc'), JSON.stringify(audit));
    h.bigquery.createTable(h.table('access'), tableSchemaFor(accessV1));
    // no audit table: that route pauses with TABLE_NOT_FOUND
    h.rejectRows((row) => (String(row.path).startsWith('/poison/') ? 'poison row' : null));
    h.failNextWrites(2, h.table('access'));
    const configPath = join(dir, 'tributary.yaml');
    await writeFile(
      configPath,
      h.configYaml(`
registry: { kind: directory, directory: ${dir} }
routes:
  access: { match: [access], table: $DATASET.access, batch: { maxRows: 50, maxDelayMs: 50 } }
  audit: { match: [audit], table: $DATASET.audit, batch: { maxRows: 50, maxDelayMs: 50 } }
`),
    );
    cli = startCli(['run', '--config', configPath]);
    const started = await cli.waitForLine((l) => l.message === 'tributary started.');
    workerUrl = `127.0.0.1:${String(started.port)}`;
    prometheus = await startPrometheus({ targets: [workerUrl], labels: { namespace: 'e2e', pod: 'tributary-0' }, ruleFiles: [RULES] });

    // a little load: 20 access messages, one poison message and one audit message every 250 ms
    let round = 0;
    load = (async () => {
      while (publishing) {
        const batch: Array<{ data: Buffer; attributes: Record<string, string> }> = Array.from({ length: 20 }, (_, i) => ({
          data: Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(round * 20 + i))]),
          attributes: { log_type: 'access' },
        }));
        // poison: a row BigQuery calls invalid, dead-lettered by the access route
        batch.push({
          data: Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(round, { path: `/poison/${round}` }))]),
          attributes: { log_type: 'access' },
        });
        // a timestamp past 9999-12-31: dead-lettered before it reaches a route
        if (round % 4 === 0)
          batch.push({
            data: Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(round, { ts: 9_000_000_000_000_000_000n }))]),
            attributes: { log_type: 'access' },
          });
        batch.push({ data: Buffer.concat([encodeConfluentHeader(2), encode(audit, auditRecord(round))]), attributes: { log_type: 'audit' } });
        // a producer that still embeds its schema: an Avro container file of two access records
        batch.push({
          data: buildContainer({
            schema: accessV1,
            records: [encode(accessV1, accessRecord(round * 20 + 100_000)), encode(accessV1, accessRecord(round * 20 + 100_001))],
          }),
          attributes: { log_type: 'access' },
        });
        await h.publish(batch);
        round++;
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    // Prometheus has seen the scenario: rows, dead letters, the pause, nacks, retries, and enough
    // scrapes for the rate windows.
    const scenario = [
      'count_over_time(up{job="tributary"}[1m]) >= 10',
      'tributary_route_state{route="audit",state="paused",reason="TABLE_NOT_FOUND"} == 1',
      'increase(tributary_messages_settled_total{route="access",outcome="dead-lettered"}[1m]) > 0',
      'tributary_messages_settled_total{route="audit",outcome="nacked"}',
      'tributary_retries_total{route="access"}',
      'increase(tributary_rows_inserted_total{route="access"}[10s]) > 0',
      'increase(tributary_embedded_schema_bytes_total{route="access"}[10s]) > 0',
    ];
    let missing = scenario;
    await until(
      'Prometheus to have scraped the scenario',
      async () => {
        const found = await Promise.all(scenario.map(async (e) => (await prometheus.query(e)).length > 0));
        missing = scenario.filter((_, i) => !found[i]);
        return missing.length === 0;
      },
      45_000,
    ).catch(async (err: Error) => {
      const settled = (await (await fetch(`http://${workerUrl}/metrics`)).text()).split('\n').filter((l) => l.startsWith('tributary_messages_settled_total'));
      throw new Error(`${err.message}; still no series for ${missing.join(' | ')}; the worker says ${settled.join('; ')}`);
    });
  }, 90_000);

  afterAll(async () => {
    publishing = false;
    await load;
    await prometheus?.stop();
    if (cli !== undefined && cli.child.exitCode === null) {
      cli.child.kill('SIGTERM');
      await cli.exit;
    }
    await h?.close();
  });

  it('promtool check metrics on a real /metrics scrape: only the documented exceptions', async () => {
    const text = await (await fetch(`http://${workerUrl}/metrics`)).text();
    expect(text).toContain('tributary_messages_settled_total');
    const r = promtool(['check', 'metrics'], text);
    const findings = r.output
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    expect(findings.sort()).toEqual([...ACCEPTED_METRIC_LINT].sort());
  });

  it('every Grafana panel query parses and returns series', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as {
      panels: Array<{ title: string; panels?: unknown[]; targets?: Array<{ expr?: string; refId: string }> }>;
    };
    const targets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: `${p.title} / ${t.refId}`, expr: t.expr ?? '' })));
    expect(targets.length).toBeGreaterThan(10);
    const empty: string[] = [];
    for (const t of targets) {
      const expr = substituteGrafanaVariables(t.expr);
      expect(expr, t.panel).not.toMatch(/\$/);
      // Cloud Monitoring metrics are not in this Prometheus: syntax only.
      const series = await prometheus.query(expr);
      if (series.length === 0 && !/pubsub_googleapis_com|stackdriver/.test(expr)) empty.push(`${t.panel}: ${expr}`);
    }
    expect(empty).toEqual([]);
  });

  it('Prometheus loaded every rule and evaluates each without error', async () => {
    const names = groups.flatMap((g) => g.rules.map((r) => r.alert ?? r.record));
    let loaded: Array<{ name: string; health: string; lastError?: string; lastEvaluation: string }> = [];
    await until(
      'every rule evaluated once',
      async () => {
        const data = await prometheus.api<{ groups: Array<{ rules: typeof loaded }> }>('/api/v1/rules');
        loaded = data.groups.flatMap((g) => g.rules);
        return loaded.length === names.length && loaded.every((r) => !r.lastEvaluation.startsWith('0001'));
      },
      15_000,
    );
    expect(loaded.map((r) => r.name).sort()).toEqual([...names].sort() as string[]);
    expect(loaded.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError ?? r.health}`)).toEqual([]);
  });

  it('every rule expression parses; every series it reads and every recording rule has data (Cloud Monitoring: syntax only)', async () => {
    const noData: string[] = [];
    for (const g of groups) {
      for (const rule of g.rules) {
        await prometheus.query(rule.expr); // throws on a parse error
        const selectors = rule.expr.match(/(?<![\w:])(?:tributary_[a-z0-9_]+|up)(?:\{[^}]*\})?(?![\w:(])/g) ?? [];
        for (const s of selectors) if ((await prometheus.query(s)).length === 0) noData.push(`${rule.alert ?? rule.record}: ${s}`);
        if (rule.record !== undefined && (await prometheus.query(rule.record)).length === 0) noData.push(`${rule.record}: no recorded series`);
        if (g.name === CLOUD_GROUP) expect(rule.expr).toMatch(/pubsub_googleapis_com:|tributary_/);
      }
    }
    expect(noData).toEqual([]);
  });

  it('the alerts the scenario makes true are pending or firing, with the labels their runbook reads', async () => {
    const want = [
      { alertname: 'TributaryRoutePaused', route: 'audit', reason: 'TABLE_NOT_FOUND' },
      { alertname: 'TributaryDeadLetterRatioHigh', route: 'access' },
      // dead-lettered before routing (the timestamp out of range) counts under "unrouted"
      { alertname: 'TributaryDeadLetterRatioHigh', route: 'unrouted' },
      { alertname: 'TributaryNacksSustained', route: 'audit', code: 'TABLE_NOT_FOUND' },
    ];
    let active: Array<{ labels: Record<string, string>; state: string }> = [];
    await until(
      'the scenario alerts to be pending',
      async () => {
        active = (await prometheus.api<{ alerts: typeof active }>('/api/v1/alerts')).alerts;
        return want.every((w) => active.some((a) => Object.entries(w).every(([k, v]) => a.labels[k] === v)));
      },
      20_000,
    ).catch(() => undefined);
    for (const w of want)
      expect(
        active.map((a) => a.labels),
        JSON.stringify(w),
      ).toContainEqual(expect.objectContaining({ ...w, namespace: 'e2e', severity: expect.any(String) }));
    // nothing of what a healthy access route should not show
    expect(
      active.filter((a) => ['TributaryWorkerStalled', 'TributaryNotReady', 'TributaryHeapNearLimit'].includes(a.labels.alertname ?? '')).map((a) => a.labels),
    ).toEqual([]);
  });
});
