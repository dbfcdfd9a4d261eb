import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { HelmRenderer, parseManifests } from '../support/helm-template.js';
import { promtool, promtoolAvailable, warnMissing } from '../support/promtool.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RULES = join(ROOT, 'helm/tributary/rules/tributary.rules.yaml');
const RULE_TESTS = join(ROOT, 'test/rules/tributary.rules.test.yaml');
const RUNBOOK = join(ROOT, 'docs/alerts.md');
const CLOUD_GROUP = 'tributary-cloud-monitoring';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Group {
  name: string;
  rules: Rule[];
}
interface RuleTest {
  alert_rule_test?: Array<{ alertname: string; eval_time: string; exp_alerts?: unknown[] }>;
  promql_expr_test?: Array<{ expr: string }>;
}

const groups = (parseYaml(readFileSync(RULES, 'utf8')) as { groups: Group[] }).groups;
const alerts = groups.flatMap((g) => g.rules.filter((r) => r.alert !== undefined));
const renderer = HelmRenderer.load(join(ROOT, 'helm/tributary'));

function renderRules(values: Record<string, unknown>): Array<{ kind: string; name: string; groups: Group[] }> {
  return parseManifests(renderer.render(values))
    .map((m) => m.doc)
    .filter((d) => ['PrometheusRule', 'Rules', 'GlobalRules'].includes(String(d.kind)))
    .map((d) => ({ kind: String(d.kind), name: String((d.metadata as { name: string }).name), groups: (d.spec as { groups: Group[] }).groups }));
}

describe('alerting rules (helm/tributary/rules/tributary.rules.yaml)', () => {
  it('every alert has a severity, a summary and a runbook section that exists in docs/alerts.md', () => {
    expect(alerts.length).toBeGreaterThanOrEqual(15);
    const runbook = readFileSync(RUNBOOK, 'utf8');
    const anchors = new Set([...runbook.matchAll(/^## (\S+)/gm)].map((m) => (m[1] as string).toLowerCase()));
    const names = groups.flatMap((g) => g.rules.map((r) => r.alert ?? r.record));
    expect(new Set(names).size).toBe(names.length);
    for (const a of alerts) {
      expect(['critical', 'warning'], a.alert).toContain(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).toBeTruthy();
      expect(a.annotations?.runbook_url, a.alert).toBe(`docs/alerts.md#${String(a.alert).toLowerCase()}`);
      expect(anchors.has(String(a.alert).toLowerCase()), `docs/alerts.md has no section "## ${a.alert}"`).toBe(true);
    }
  });

  it('every alert has promtool cases where it fires and where it must not; every recording rule group is exercised', () => {
    const tests = (parseYaml(readFileSync(RULE_TESTS, 'utf8')) as { tests: RuleTest[] }).tests;
    const cases = tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${a.alert} never fires in a test`,
      ).toBe(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${a.alert} has no case where it must stay quiet`,
      ).toBe(true);
    }
    const exprs = tests.flatMap((t) => (t.promql_expr_test ?? []).map((e) => e.expr));
    for (const g of groups) {
      const records = g.rules.filter((r) => r.record !== undefined);
      if (records.length > 0)
        expect(
          records.some((r) => exprs.includes(String(r.record))),
          g.name,
        ).toBe(true);
    }
  });

  describe.skipIf(!promtoolAvailable())('promtool', () => {
    it('check rules: the plain rules file', () => {
      const r = promtool(['check', 'rules', RULES]);
      expect(r.output).toMatch(/SUCCESS: \d+ rules found/);
      expect(r.status, r.output).toBe(0);
    });

    it('test rules: every alert fires and stays quiet as test/rules/tributary.rules.test.yaml says', () => {
      const r = promtool(['test', 'rules', RULE_TESTS]);
      expect(r.status, r.output).toBe(0);
      expect(r.output).toContain('SUCCESS');
    });

    it('test rules is not a formality: a rule with a longer `for` fails its test', () => {
      const dir = mkdtempSync(join(tmpdir(), 'tributary-rules-'));
      const changed = structuredClone(groups);
      const paused = changed.flatMap((g) => g.rules).find((r) => r.alert === 'TributaryRoutePaused') as Rule;
      paused.for = '20m';
      writeFileSync(join(dir, 'rules.yaml'), stringifyYaml({ groups: changed }));
      const tests = parseYaml(readFileSync(RULE_TESTS, 'utf8')) as Record<string, unknown>;
      writeFileSync(join(dir, 'tests.yaml'), stringifyYaml({ ...tests, rule_files: ['rules.yaml'] }));
      const r = promtool(['test', 'rules', join(dir, 'tests.yaml')]);
      expect(r.status).not.toBe(0);
      expect(r.output).toContain('TributaryRoutePaused');
    });

    for (const [label, values, kinds] of [
      ['Managed Prometheus (PodMonitoring)', {}, ['GlobalRules', 'Rules']],
      ['Prometheus Operator (ServiceMonitor)', { metrics: { podMonitoring: { enabled: false }, serviceMonitor: { enabled: true } } }, ['PrometheusRule']],
    ] as const) {
      it(`check rules: what the chart renders for ${label}`, () => {
        const rendered = renderRules(values);
        expect(rendered.map((r) => r.kind).sort()).toEqual(kinds);
        const dir = mkdtempSync(join(tmpdir(), 'tributary-rules-'));
        for (const r of rendered) {
          const file = join(dir, `${r.kind}.yaml`);
          writeFileSync(file, stringifyYaml({ groups: r.groups }));
          const check = promtool(['check', 'rules', file]);
          expect(check.status, `${r.kind}: ${check.output}`).toBe(0);
        }
      });
    }
  });

  it('the chart ships the same rules as the plain file: Rules + GlobalRules, or one PrometheusRule', () => {
    const gmp = renderRules({});
    expect(gmp.find((r) => r.kind === 'Rules')?.groups.map((g) => g.name)).toEqual(groups.filter((g) => g.name !== CLOUD_GROUP).map((g) => g.name));
    expect(gmp.find((r) => r.kind === 'GlobalRules')?.groups.map((g) => g.name)).toEqual([CLOUD_GROUP]);
    expect(gmp.flatMap((r) => r.groups).sort((a, b) => a.name.localeCompare(b.name))).toEqual([...groups].sort((a, b) => a.name.localeCompare(b.name)));
    expect(gmp.find((r) => r.kind === 'GlobalRules')?.name).toBe('tributary-logs-tributary-pubsub');

    const operator = renderRules({
      metrics: { podMonitoring: { enabled: false }, serviceMonitor: { enabled: true } },
      alerts: { labels: { release: 'prometheus' } },
    });
    expect(operator).toHaveLength(1);
    expect(operator[0]?.groups).toEqual(groups);
    const doc = parseManifests(
      renderer.render({ metrics: { podMonitoring: { enabled: false }, serviceMonitor: { enabled: true } }, alerts: { labels: { release: 'prometheus' } } }),
    ).find((m) => m.doc.kind === 'PrometheusRule');
    expect((doc?.doc.metadata as { labels: Record<string, string> } | undefined)?.labels.release).toBe('prometheus');
  });

  it('alerts.cloudMonitoring off drops the Cloud Monitoring group; alerts off renders no rules; runbookBaseUrl prefixes every runbook link', () => {
    expect(renderRules({ alerts: { cloudMonitoring: { enabled: false } } }).map((r) => r.kind)).toEqual(['Rules']);
    const operator = renderRules({
      metrics: { podMonitoring: { enabled: false }, serviceMonitor: { enabled: true } },
      alerts: { cloudMonitoring: { enabled: false } },
    });
    expect(operator[0]?.groups.map((g) => g.name)).not.toContain(CLOUD_GROUP);
    expect(renderRules({ alerts: { enabled: false } })).toEqual([]);
    const linked = renderRules({ alerts: { runbookBaseUrl: 'https://git.example.com/tributary/blob/main/' } });
    const urls = linked.flatMap((r) => r.groups.flatMap((g) => g.rules.flatMap((x) => (x.alert ? [x.annotations?.runbook_url] : []))));
    expect(urls).toHaveLength(alerts.length);
    for (const u of urls) expect(u).toMatch(/^https:\/\/git\.example\.com\/tributary\/blob\/main\/docs\/alerts\.md#tributary[a-z]+$/);
  });
});

if (!promtoolAvailable()) warnMissing('promtool', '`promtool check rules` and `promtool test rules` of the alerting rules');
