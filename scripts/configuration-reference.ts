import { z } from 'zod';
import { envVarFor } from '../src/config-environment.js';
import { unwrapSetting, type SettingInfo, type SettingNode } from '../src/config-settings.js';
import { configSettings } from '../src/config.js';

/*
 * docs/configuration.md, rendered from the config schema: every setting with its type, allowed
 * values, default, environment variable and description. `npm run docs` writes it; a unit test
 * fails when the committed file differs.
 */

/** The full example of the reference; the unit test parses it with the worker's own loader. */
export const EXAMPLE_CONFIG = `projectId: my-project                 # default: GOOGLE_CLOUD_PROJECT
subscription: logs-worker             # short name or projects/…/subscriptions/…
registry:
  kind: auto                          # auto | pubsub | confluent | directory
  confluent: { url: http://schema-registry:8081, username: u, password: p, timeoutMs: 5000 }  # or bearerToken
  directory: ./schemas                # <id>.avsc; id = confluent id or schemaname@revision
routing:
  from: attribute                     # attribute | record-name | field
  key: log_type                       # attribute name, or field path for \`field\`
  unrouted: dead-letter               # dead-letter | <route name>
routes:
  access:
    match: [access, access_v2]
    table: my-project.logs.access     # project optional
    subscription: logs-access         # optional: own subscription (filtered on the log type)
    batch: { maxRows: 500, maxBytes: 5000000, maxDelayMs: 1000 }
    maxInFlightBatches: 4
    unknownFields: dead-letter        # dead-letter | drop (counted)
    metadata: { messageId: _message_id, publishTime: _publish_time }   # optional columns
retry: { maxAttempts: 6, initialDelayMs: 250, maxDelayMs: 30000 }
deadLetter: { topic: logs-dead-letter }
flowControl: { maxMessages: 2000, maxBytes: 104857600 }
bigquery: { apiEndpoint: http://127.0.0.1:9050 }   # optional: emulators and tests
server: { port: 9464 }
shutdown: { drainTimeoutMs: 25000 }
log: { level: info }
`;

const INTRO = `# Configuration reference

<!-- Generated from the config schema (src/config.ts) by \`npm run docs\`; do not edit by hand. -->

One YAML file, named by \`--config FILE\` or the \`TRIBUTARY_CONFIG\` variable. \`tributary validate
--config FILE\` reports every problem at once (exit 78 if any). An unknown key in the file is an
error, not ignored, and so are the rules that span several settings (a log type matched by two
routes, two routes on one subscription, \`registry.kind: confluent\` without \`registry.confluent\`,
\`retry.initialDelayMs\` above \`retry.maxDelayMs\`, …): each problem names the setting to change.

**Environment variables.** Every setting can also come from a variable: \`TRIBUTARY_\` followed by
the key path in upper snake case, e.g. \`routes.access.batch.maxRows\` →
\`TRIBUTARY_ROUTES_ACCESS_BATCH_MAX_ROWS\`. A variable wins over the file. Values are read as YAML
(\`[a, b]\` is a list, \`{maxRows: 50}\` an object), except that a string setting (a name, a
secret, an enum) takes the text as written. A whole route can be defined from the environment
(\`TRIBUTARY_ROUTES_METRICS_TABLE\`, \`TRIBUTARY_ROUTES_METRICS_MATCH\`). An unknown \`TRIBUTARY_*\`
variable is an error: a typo in a Helm value must not be silently ignored.

## Example

\`\`\`yaml
${EXAMPLE_CONFIG}\`\`\`
`;

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function code(value: unknown): string {
  return `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;
}

/** The type with its allowed values and bounds, as a reader checks a value against it. */
function typeOf(schema: z.ZodTypeAny): string {
  const { schema: inner } = unwrapSetting(schema);
  if (inner instanceof z.ZodEnum) return (inner.options as string[]).map(code).join(' | ');
  if (inner instanceof z.ZodString) {
    const checks = inner._def.checks;
    if (checks.some((c) => c.kind === 'url')) return 'URL';
    return checks.some((c) => c.kind === 'min' && c.value > 0) ? 'string (not empty)' : 'string';
  }
  if (inner instanceof z.ZodNumber) {
    const checks = inner._def.checks;
    const min = checks.find((c) => c.kind === 'min');
    const max = checks.find((c) => c.kind === 'max');
    const kind = checks.some((c) => c.kind === 'int') ? 'integer' : 'number';
    const low = min && 'value' in min ? min.value : undefined;
    const high = max && 'value' in max ? max.value : undefined;
    if (low !== undefined && high !== undefined) return `${kind}, ${low} to ${high}`;
    if (low !== undefined) return `${kind}, at least ${low}`;
    if (high !== undefined) return `${kind}, at most ${high}`;
    return kind;
  }
  if (inner instanceof z.ZodBoolean) return 'boolean';
  if (inner instanceof z.ZodArray) {
    const min = inner._def.minLength?.value;
    return `list of ${typeOf(inner.element as z.ZodTypeAny)}${min ? `, at least ${min}` : ''}`;
  }
  throw new Error(`the configuration reference cannot describe a ${inner.constructor.name}`);
}

function defaultOf(info: SettingInfo): string {
  if (info.hasDefault) return code(info.defaultValue);
  return info.optional ? '—' : 'required';
}

interface Row {
  path: string[];
  type: string;
  info: SettingInfo;
}

function placeholder(keySchema: z.ZodTypeAny): string {
  return `<${keySchema.description ?? 'key'}>`;
}

function rowsOf(node: SettingNode, path: string[], top: boolean): Row[] {
  if (node.kind === 'value') return [{ path, type: typeOf(node.schema), info: node.info }];
  const own: Row[] = top ? [] : [{ path, type: node.kind === 'map' ? 'map' : 'object', info: node.info }];
  if (node.kind === 'map') return [...own, ...rowsOf(node.value, [...path, placeholder(node.keySchema)], true)];
  return [...own, ...Object.entries(node.fields).flatMap(([key, child]) => rowsOf(child, [...path, key], false))];
}

function table(rows: Row[]): string {
  const lines = ['| Key | Type | Default | Environment variable | Description |', '|---|---|---|---|---|'];
  for (const r of rows) {
    lines.push(`| \`${r.path.join('.')}\` | ${cell(r.type)} | ${cell(defaultOf(r.info))} | \`${envVarFor(r.path)}\` | ${cell(r.info.description ?? '')} |`);
  }
  return lines.join('\n');
}

export function renderConfigurationReference(settings: SettingNode = configSettings): string {
  if (settings.kind !== 'object') throw new Error('the config schema must be an object');
  const sections: string[] = [INTRO];
  const topLevel = Object.entries(settings.fields).filter(([, node]) => node.kind === 'value');
  sections.push(`## Top-level settings\n\n${table(topLevel.flatMap(([key, node]) => rowsOf(node, [key], false)))}\n`);
  for (const [key, node] of Object.entries(settings.fields)) {
    if (node.kind === 'value') continue;
    const description = node.info.description ? `${node.info.description}\n\n` : '';
    const required = node.info.optional ? '' : 'Required. ';
    sections.push(`## \`${key}\`\n\n${required}${description}${table(rowsOf(node, [key], true))}\n`);
  }
  return sections.join('\n');
}
