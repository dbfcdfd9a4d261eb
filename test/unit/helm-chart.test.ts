import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { Metrics } from '../../src/ops/metrics.js';
import { HelmRenderer, mergeOverrides, parseManifests, parseTemplate, TemplateError } from '../support/helm-template.js';

const CHART = fileURLToPath(new URL('../../helm/tributary', import.meta.url));
const renderer = HelmRenderer.load(CHART);
const ajv = new Ajv({ allErrors: true, strict: false });
const valuesSchema = ajv.compile(JSON.parse(readFileSync(`${CHART}/values.schema.json`, 'utf8')) as object);
const podMonitoringSchema = ajv.compile(
  JSON.parse(
    readFileSync(fileURLToPath(new URL('../fixtures/k8s-schemas/podmonitoring-monitoring.googleapis.com-v1.json', import.meta.url)), 'utf8'),
  ) as object,
);
const gmpRulesSchema = ajv.compile(
  JSON.parse(readFileSync(fileURLToPath(new URL('../fixtures/k8s-schemas/rules-monitoring.googleapis.com-v1.json', import.meta.url)), 'utf8')) as object,
);

type Doc = Record<string, unknown>;
interface K8sModel {
  validate(): void;
}
/** Kubernetes' own OpenAPI schemas (compiled by kubernetes-models), by apiVersion/kind. */
const MODELS: Record<string, new (data: never) => K8sModel> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

/** Several worker groups, every toggle on: heavy log types get pods and sizes of their own. */
const PRODUCTION = {
  image: { repository: 'europe-docker.pkg.dev/acme-logs/tributary/tributary', tag: '1.2.3' },
  serviceAccount: { gcpServiceAccount: 'tributary@acme-logs.iam.gserviceaccount.com' },
  config: {
    projectId: 'acme-logs',
    deadLetter: { topic: 'logs-dead-letter' },
    shutdown: { drainTimeoutMs: 45000 },
    registry: { kind: 'confluent', confluent: { url: 'http://schema-registry.registry:8081' } },
  },
  extraEnv: [{ name: 'TRIBUTARY_REGISTRY_CONFLUENT_BEARER_TOKEN', valueFrom: { secretKeyRef: { name: 'registry', key: 'token' } } }],
  workerGroups: {
    default: {
      subscription: 'logs-worker',
      autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 6 },
      routes: { audit: { match: ['audit'], table: 'logs.audit' }, metric: { match: ['metric'], table: 'logs.metric', unknownFields: 'drop' } },
    },
    access: {
      subscription: 'logs-access',
      replicas: 4,
      maxOldSpaceMb: 3000,
      resources: { requests: { cpu: '2', memory: '4Gi' }, limits: { memory: '4Gi' } },
      // Helm reads numbers as float64 and Go prints 2000000.0 as 2e+06 unless the template says int.
      keda: { enabled: true, backlogPerReplica: 2000000 },
      autoscaling: { minReplicas: 3, maxReplicas: 30 },
      nodeSelector: { 'cloud.google.com/gke-nodepool': 'logs-heavy' },
      routes: { access: { match: ['access', 'access_v2'], table: 'acme-logs.logs.access', batch: { maxRows: 1000 }, metadata: { messageId: '_message_id' } } },
    },
  },
  metrics: { serviceMonitor: { enabled: true, labels: { release: 'prometheus' } } },
};

function renderDocs(values: Doc): Array<{ file: string; doc: Doc }> {
  return parseManifests(renderer.render(values));
}

function byKind(docs: Array<{ doc: Doc }>, kind: string): Doc[] {
  return docs.map((d) => d.doc).filter((d) => d.kind === kind);
}

function get(doc: unknown, path: string): unknown {
  let v = doc;
  for (const key of path.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined;
  return v;
}

function matches(selector: unknown, labels: unknown): boolean {
  const want = (selector ?? {}) as Record<string, string>;
  const have = (labels ?? {}) as Record<string, string>;
  return Object.keys(want).length > 0 && Object.entries(want).every(([k, v]) => have[k] === v);
}

function validateManifest(doc: Doc): string[] {
  const key = `${String(doc.apiVersion)}/${String(doc.kind)}`;
  if (key === 'monitoring.googleapis.com/v1/PodMonitoring') {
    return podMonitoringSchema(doc) ? [] : (podMonitoringSchema.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
  }
  if (key === 'monitoring.googleapis.com/v1/Rules' || key === 'monitoring.googleapis.com/v1/GlobalRules') {
    return gmpRulesSchema(doc) ? [] : (gmpRulesSchema.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
  }
  const Model = MODELS[key];
  if (Model === undefined) return [`no schema for ${key}`];
  try {
    new Model(doc as never).validate();
    return [];
  } catch (err) {
    return [String((err as Error).message)];
  }
}

describe('helm/tributary', () => {
  for (const [label, values] of [
    ['default values', {}],
    ['several worker groups with every toggle on', PRODUCTION],
  ] as const) {
    describe(label, () => {
      const docs = renderDocs(values);

      it('values pass values.schema.json', () => {
        const merged = mergeOverrides(renderer.defaultValues(), structuredClone(values) as Doc);
        expect(valuesSchema(merged), JSON.stringify(valuesSchema.errors)).toBe(true);
      });

      it('every manifest is valid against its Kubernetes (or CRD) schema', () => {
        expect(docs.length).toBeGreaterThan(5);
        for (const { file, doc } of docs) expect({ file, kind: doc.kind, errors: validateManifest(doc) }).toEqual({ file, kind: doc.kind, errors: [] });
        for (const { doc } of docs) expect(String(get(doc, 'metadata.name')).length).toBeLessThanOrEqual(63);
      });

      it('each worker group is a Deployment whose config the worker accepts, with a grace period above its drain timeout', () => {
        const deployments = byKind(docs, 'Deployment');
        const configMaps = byKind(docs, 'ConfigMap');
        const groups = Object.keys((mergeOverrides(renderer.defaultValues(), structuredClone(values) as Doc).workerGroups ?? {}) as object);
        expect(deployments).toHaveLength(groups.length);
        for (const d of deployments) {
          const pod = get(d, 'spec.template.spec') as Doc;
          const volume = (pod.volumes as Doc[]).find((v) => v.name === 'config');
          const cm = configMaps.find((c) => get(c, 'metadata.name') === get(volume, 'configMap.name'));
          expect(cm).toBeDefined();
          // The worker's own config loader: every problem it would report at start-up fails here.
          const config = parseConfig((get(cm, 'data') as Record<string, string>)['tributary.yaml'] ?? '', {});
          expect(Number(pod.terminationGracePeriodSeconds) * 1000).toBeGreaterThan(config.shutdown.drainTimeoutMs);
          expect(matches(get(d, 'spec.selector.matchLabels'), get(d, 'spec.template.metadata.labels'))).toBe(true);
          expect(get(d, 'spec.template.metadata.annotations.checksum/config')).toMatch(/^[0-9a-f]{64}$/);
          // Restricted pod security: non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp.
          const container = (pod.containers as Doc[])[0] as Doc;
          expect(get(pod, 'securityContext.runAsNonRoot')).toBe(true);
          expect(container.securityContext).toMatchObject({
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          });
          expect(container.args).toEqual(['run', '--config', '/etc/tributary/tributary.yaml']);
          expect(get(container, 'livenessProbe.httpGet.path')).toBe('/healthz');
          expect(get(container, 'readinessProbe.httpGet.path')).toBe('/readyz');
          const sa = byKind(docs, 'ServiceAccount').find((s) => get(s, 'metadata.name') === pod.serviceAccountName);
          expect(sa).toBeDefined();
        }
        for (const kind of ['Service', 'PodDisruptionBudget']) {
          for (const o of byKind(docs, kind)) {
            const selector = kind === 'Service' ? get(o, 'spec.selector') : get(o, 'spec.selector.matchLabels');
            expect(deployments.filter((d) => matches(selector, get(d, 'spec.template.metadata.labels')))).toHaveLength(1);
          }
        }
        for (const kind of ['PodMonitoring', 'NetworkPolicy']) {
          for (const o of byKind(docs, kind)) {
            const selector = kind === 'PodMonitoring' ? get(o, 'spec.selector.matchLabels') : get(o, 'spec.podSelector.matchLabels');
            expect(deployments.every((d) => matches(selector, get(d, 'spec.template.metadata.labels')))).toBe(true);
          }
        }
      });

      it('the dashboard is JSON and asks only for metrics the worker exposes', async () => {
        const cm = byKind(docs, 'ConfigMap').find((c) => String(get(c, 'metadata.name')).endsWith('-dashboard'));
        const dashboard = JSON.parse((get(cm, 'data') as Record<string, string>)['tributary.json'] as string) as {
          panels: Array<{ targets: Array<{ expr: string }> }>;
        };
        const exposed = new Set((await new Metrics().registry.getMetricsAsJSON()).map((m) => m.name));
        const used = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/tributary_[a-z_]+/g) ?? []));
        expect(used.length).toBeGreaterThan(10);
        for (const name of used) expect(exposed.has(name.replace(/_(bucket|sum|count)$/, ''))).toBe(true);
      });
    });
  }

  it('autoscaling: HPA on CPU, or a KEDA ScaledObject on the backlog (then no HPA and no fixed replicas)', () => {
    const docs = renderDocs(PRODUCTION);
    const hpas = byKind(docs, 'HorizontalPodAutoscaler');
    expect(hpas.map((h) => get(h, 'spec.scaleTargetRef.name'))).toEqual(['logs-tributary-default']);
    const scaled = byKind(docs, 'ScaledObject');
    expect(scaled.map((s) => get(s, 'spec.scaleTargetRef.name'))).toEqual(['logs-tributary-access']);
    const trigger = (get(scaled[0], 'spec.triggers') as Doc[])[0] as Doc;
    expect(trigger.metadata).toMatchObject({
      serverAddress: 'https://monitoring.googleapis.com/v1/projects/acme-logs/location/global/prometheus',
      query: 'sum(pubsub_googleapis_com:subscription_num_undelivered_messages{monitored_resource="pubsub_subscription",subscription_id="logs-access"})',
      threshold: '2000000',
    });
    expect(byKind(docs, 'TriggerAuthentication')).toHaveLength(1);
    const deployments = byKind(docs, 'Deployment');
    expect(deployments.every((d) => get(d, 'spec.replicas') === undefined)).toBe(true);
    const access = deployments.find((d) => get(d, 'metadata.name') === 'logs-tributary-access');
    expect(get(access, 'spec.template.spec.nodeSelector')).toEqual({ 'cloud.google.com/gke-nodepool': 'logs-heavy' });
    expect(get(access, 'spec.template.spec.terminationGracePeriodSeconds')).toBe(60);
    expect(byKind(docs, 'ServiceAccount')[0]).toMatchObject({
      metadata: { annotations: { 'iam.gke.io/gcp-service-account': 'tributary@acme-logs.iam.gserviceaccount.com' } },
    });
    expect(byKind(docs, 'ServiceMonitor')).toHaveLength(1);
    expect(byKind(docs, 'PrometheusRule')).toHaveLength(1);
  });

  it('toggles off render nothing for their resources', () => {
    const docs = renderDocs({
      metrics: { service: { enabled: false }, podMonitoring: { enabled: false } },
      alerts: { enabled: false },
      networkPolicy: { enabled: false },
      podDisruptionBudget: { enabled: false },
      dashboard: { enabled: false },
      serviceAccount: { create: false, name: 'existing' },
    });
    expect(docs.map((d) => d.doc.kind).sort()).toEqual(['ConfigMap', 'Deployment']);
    expect(get(byKind(docs, 'Deployment')[0], 'spec.template.spec.serviceAccountName')).toBe('existing');
  });

  it('values.schema.json rejects what would render a broken release', () => {
    const bad = (overrides: Doc): boolean => valuesSchema(mergeOverrides(renderer.defaultValues(), overrides));
    expect(bad({ workerGroups: { Heavy_Group: { subscription: 'logs-x', routes: { a: { match: ['a'], table: 'logs.a' } } } } })).toBe(false);
    expect(bad({ workerGroups: { x: { subscription: 'logs-x' } } })).toBe(false);
    expect(bad({ workerGroups: { x: { subscription: 'logs-x', routes: { a: { match: ['a'], table: 'logs.a' } }, replcas: 3 } } })).toBe(false);
    expect(bad({ config: { routes: {} } })).toBe(false);
    expect(bad({ serviceAccount: { gcpServiceAccount: 'not-an-email' } })).toBe(false);
    expect(bad({ metrics: { podMonitoring: { interval: 'often' } } })).toBe(false);
    expect(bad({ alerts: { runbookBaseUrl: 'docs in the wiki' } })).toBe(false);
    expect(bad({ alerts: { cloudMonitoring: true } })).toBe(false);
  });

  it('the renderer refuses what it does not implement instead of rendering it wrongly', () => {
    const defines = new Map();
    expect(() => parseTemplate('{{ if .x }}a', defines)).toThrow(TemplateError);
    expect(() => parseTemplate('{{ template "x" . }}', defines)).toThrow(/not supported/);
    expect(() => parseTemplate('{{ .x | lookup }}', defines)).not.toThrow();
  });

  it('the manifest validation is not a formality: a broken manifest fails it', () => {
    const deployment = structuredClone(byKind(renderDocs({}), 'Deployment')[0] as Doc);
    expect(validateManifest(deployment)).toEqual([]);
    (get(deployment, 'spec') as Doc).replicas = 'two';
    expect(validateManifest(deployment).join()).toMatch(/replicas/);
    const noSelector = structuredClone(byKind(renderDocs({}), 'Deployment')[0] as Doc);
    delete (get(noSelector, 'spec') as Doc).selector;
    expect(validateManifest(noSelector).join()).toMatch(/selector/);
    const pm = structuredClone(byKind(renderDocs({}), 'PodMonitoring')[0] as Doc);
    (get(pm, 'spec') as Doc).endpoints = [{ path: '/metrics' }];
    expect(validateManifest(pm)).not.toEqual([]);
  });
});
