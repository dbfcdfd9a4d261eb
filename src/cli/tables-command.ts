import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { PubSub } from '@google-cloud/pubsub';
import { BigQueryTables } from '../adapters/bigquery-tables.js';
import { AutoSchemaRegistry, ConfluentSchemaRegistry, DirectorySchemaRegistry, PubSubSchemaRegistry } from '../adapters/schema-registries.js';
import { loadConfig, type Config, type ResolvedRoute } from '../config.js';
import type { AvroSchema } from '../core/avro-type.js';
import { diffTableSchema, hasChanges, renderNewTable, renderSchemaDiff, routeTableFields } from '../core/schema-diff.js';
import type { SchemaReference } from '../core/schema-reference.js';
import { tableLayoutProblems } from '../core/table-layout.js';
import { formatTableRef, type TableField } from '../core/table-schema.js';
import { ConfigError, TributaryError } from '../errors.js';

export const TABLES_USAGE = `Usage: tributary tables plan|apply --config FILE (--schema FILE.avsc | --schema-id ID | --pubsub-schema NAME) [--route NAME ...]

  plan    print, per route, what its table lacks or has incompatible for the schema:
            + region STRING NULLABLE      a column to add
            ~ status REQUIRED → NULLABLE  a mode to relax
            ! amount NUMERIC ≠ STRING     a change BigQuery cannot make
          exit 0 nothing to do, 2 changes pending, 1 incompatible (or a table cannot be read)
  apply   make the compatible changes and create missing tables (routes with createTable);
          exit 0 when every route's table fits the schema, 1 otherwise

  --schema FILE.avsc     an Avro schema file
  --schema-id ID         a registry id: a Confluent id (123) or a Pub/Sub revision (NAME@REVISION)
  --pubsub-schema NAME   the latest revision of a Pub/Sub schema
  --route NAME           only this route (repeatable); default every route
`;

const EXIT_USAGE = 64;
const EXIT_CONFIG = 78;

export interface TablesCommandIo {
  env: NodeJS.ProcessEnv;
  stdout: Pick<NodeJS.WritableStream, 'write'>;
  stderr: Pick<NodeJS.WritableStream, 'write'>;
}

class UsageError extends Error {}

type RouteStatus = 'up-to-date' | 'pending' | 'incompatible';

/** `tributary tables plan|apply ...`; returns the exit code. */
export async function tablesCommand(argv: string[], io: TablesCommandIo): Promise<number> {
  let action: 'plan' | 'apply';
  let values: {
    config?: string | undefined;
    schema?: string | undefined;
    'schema-id'?: string | undefined;
    'pubsub-schema'?: string | undefined;
    route?: string[] | undefined;
    help?: boolean | undefined;
  };
  try {
    const parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        schema: { type: 'string' },
        'schema-id': { type: 'string' },
        'pubsub-schema': { type: 'string' },
        route: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    });
    values = parsed.values;
    if (values.help) {
      io.stdout.write(TABLES_USAGE);
      return 0;
    }
    const [verb, ...extra] = parsed.positionals;
    if (verb !== 'plan' && verb !== 'apply') throw new UsageError(verb === undefined ? 'tables: say plan or apply' : `tables: unknown action "${verb}"`);
    if (extra.length > 0) throw new UsageError(`tables: unexpected argument "${extra[0]}"`);
    const sources = [values.schema, values['schema-id'], values['pubsub-schema']].filter((v) => v !== undefined);
    if (sources.length !== 1) throw new UsageError('tables: give exactly one of --schema, --schema-id, --pubsub-schema');
    action = verb;
  } catch (err) {
    io.stderr.write(`${(err as Error).message}\n\n${TABLES_USAGE}`);
    return EXIT_USAGE;
  }

  const configPath = values.config ?? io.env['TRIBUTARY_CONFIG'];
  if (!configPath) {
    io.stderr.write('tables: no config: pass --config FILE or set TRIBUTARY_CONFIG\n');
    return EXIT_CONFIG;
  }
  let config: Config;
  try {
    config = await loadConfig(configPath, io.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`${configPath}: ${err.problems.length} problem(s)\n${err.problems.map((p) => `  - ${p}`).join('\n')}\n`);
    return EXIT_CONFIG;
  }
  const wanted = values.route ?? [];
  const unknown = wanted.filter((name) => !config.routes.some((r) => r.name === name));
  if (unknown.length > 0) {
    io.stderr.write(`tables: no route ${unknown.map((n) => `"${n}"`).join(', ')} (routes: ${config.routes.map((r) => r.name).join(', ')})\n`);
    return EXIT_USAGE;
  }
  const routes = wanted.length === 0 ? config.routes : config.routes.filter((r) => wanted.includes(r.name));

  let schema: { definition: AvroSchema; label: string };
  try {
    schema = await loadSchema(values, config);
  } catch (err) {
    io.stderr.write(`tables: cannot load the schema: ${(err as Error).message}\n`);
    return 1;
  }

  const tables = new BigQueryTables({
    projectId: config.bigquery.projectId ?? config.projectId,
    apiEndpoint: config.bigquery.apiEndpoint,
    timeoutMs: config.bigquery.timeoutMs,
  });
  io.stdout.write(`${action === 'plan' ? 'Plan' : 'Apply'}: schema ${schema.label}\n`);
  const statuses: RouteStatus[] = [];
  for (const route of routes) {
    statuses.push(await (action === 'plan' ? planRoute(route, schema.definition, tables, io) : applyRoute(route, schema.definition, tables, io)));
  }
  const count = (s: RouteStatus): number => statuses.filter((x) => x === s).length;
  if (action === 'plan') {
    io.stdout.write(`${count('pending')} route(s) with changes pending, ${count('incompatible')} incompatible, ${count('up-to-date')} up to date.\n`);
    return count('incompatible') > 0 ? 1 : count('pending') > 0 ? 2 : 0;
  }
  io.stdout.write(`${count('pending')} route(s) changed, ${count('incompatible')} incompatible or failed, ${count('up-to-date')} up to date.\n`);
  return count('incompatible') > 0 ? 1 : 0;
}

async function loadSchema(
  values: { schema?: string | undefined; 'schema-id'?: string | undefined; 'pubsub-schema'?: string | undefined },
  config: Config,
): Promise<{ definition: AvroSchema; label: string }> {
  let text: string;
  let label: string;
  if (values.schema !== undefined) {
    text = await readFile(values.schema, 'utf8');
    label = values.schema;
  } else if (values['schema-id'] !== undefined) {
    const id = values['schema-id'];
    const pubsub = new PubSub({ projectId: config.projectId });
    const reg = config.registry;
    const registry = new AutoSchemaRegistry({
      pubsub: new PubSubSchemaRegistry(pubsub),
      ...(reg.confluent ? { confluent: new ConfluentSchemaRegistry(reg.confluent) } : {}),
      ...(reg.directory ? { directory: new DirectorySchemaRegistry(reg.directory) } : {}),
    });
    text = await registry.fetch(referenceOf(id, config.projectId));
    label = `id ${id}`;
  } else {
    const name = values['pubsub-schema'] ?? '';
    const path = name.startsWith('projects/') ? name : `projects/${config.projectId}/schemas/${name}`;
    const client = await new PubSub({ projectId: config.projectId }).getSchemaClient();
    const [found] = await client.getSchema({ name: path, view: 'FULL' });
    if (!found.definition) throw new Error(`Pub/Sub schema ${path} has no definition`);
    text = found.definition;
    label = `${path}@${found.revisionId ?? 'latest'}`;
  }
  try {
    return { definition: JSON.parse(text) as AvroSchema, label };
  } catch (err) {
    throw new Error(`${label} is not JSON: ${(err as Error).message}`);
  }
}

function referenceOf(id: string, projectId: string): SchemaReference {
  if (/^\d+$/.test(id)) return { kind: 'confluent', id: Number(id) };
  const at = id.lastIndexOf('@');
  if (at <= 0 || at === id.length - 1) throw new Error(`--schema-id "${id}" is neither a Confluent id (123) nor a Pub/Sub revision (NAME@REVISION)`);
  const name = id.slice(0, at);
  return {
    kind: 'pubsub',
    schema: name.startsWith('projects/') ? name : `projects/${projectId}/schemas/${name}`,
    revisionId: id.slice(at + 1),
    encoding: 'BINARY',
  };
}

function header(route: ResolvedRoute, io: TablesCommandIo, note: string): void {
  io.stdout.write(`route ${route.name} → ${formatTableRef(route.table)}${note}\n`);
}

function lines(io: TablesCommandIo, list: readonly string[]): void {
  for (const line of list) io.stdout.write(`  ${line}\n`);
}

/** The route's columns, or null (reported) when the schema cannot be mapped to a table. */
function desiredFields(route: ResolvedRoute, schema: AvroSchema, io: TablesCommandIo): TableField[] | null {
  try {
    return routeTableFields(schema, route.metadata);
  } catch (err) {
    if (!(err instanceof TributaryError)) throw err;
    header(route, io, '');
    lines(io, [`! the schema cannot be mapped to a table: ${err.message}`]);
    return null;
  }
}

async function planRoute(route: ResolvedRoute, schema: AvroSchema, tables: BigQueryTables, io: TablesCommandIo): Promise<RouteStatus> {
  const desired = desiredFields(route, schema, io);
  if (desired === null) return 'incompatible';
  let snapshot;
  try {
    snapshot = await tables.read(route.table);
  } catch (err) {
    header(route, io, '');
    lines(io, [`! cannot read the table: ${(err as Error).message}`]);
    return 'incompatible';
  }
  if (snapshot === null) return planMissing(route, desired, io);
  const diff = diffTableSchema(desired, snapshot.schema);
  const status: RouteStatus = diff.incompatibilities.length > 0 ? 'incompatible' : hasChanges(diff) ? 'pending' : 'up-to-date';
  header(route, io, status === 'up-to-date' ? ': up to date' : '');
  lines(io, renderSchemaDiff(diff));
  return status;
}

function planMissing(route: ResolvedRoute, desired: TableField[], io: TablesCommandIo): RouteStatus {
  if (route.createTable === undefined) {
    header(route, io, '');
    lines(io, ['! the table is missing and the route has no createTable: create it, or the route pauses']);
    return 'incompatible';
  }
  const problems = tableLayoutProblems(desired, route.createTable);
  header(route, io, problems.length > 0 ? '' : ': missing, will be created');
  if (problems.length > 0) {
    lines(
      io,
      problems.map((p) => `! createTable: ${p}`),
    );
    return 'incompatible';
  }
  lines(io, renderNewTable(desired));
  return 'pending';
}

async function applyRoute(route: ResolvedRoute, schema: AvroSchema, tables: BigQueryTables, io: TablesCommandIo): Promise<RouteStatus> {
  const desired = desiredFields(route, schema, io);
  if (desired === null) return 'incompatible';
  try {
    const snapshot = await tables.read(route.table);
    if (snapshot === null) {
      if (route.createTable === undefined) {
        header(route, io, '');
        lines(io, ['! the table is missing and the route has no createTable']);
        return 'incompatible';
      }
      const created = await tables.createTable(route.table, desired, route.createTable);
      if (created === 'created') {
        header(route, io, ': created');
        lines(io, renderNewTable(desired));
        return 'pending';
      }
    }
    const result = await tables.evolve(route.table, 'command-line', desired);
    header(route, io, result.changed ? ': changed' : ': up to date');
    lines(io, renderSchemaDiff(result.diff));
    return result.changed ? 'pending' : 'up-to-date';
  } catch (err) {
    header(route, io, '');
    const incompatible = err instanceof TributaryError && err.code === 'SCHEMA_INCOMPATIBLE';
    if (incompatible) {
      const current = await tables.read(route.table).catch(() => null);
      lines(io, current ? renderSchemaDiff(diffTableSchema(desired, current.schema)).filter((l) => l.startsWith('!')) : [`! ${err.message}`]);
      io.stdout.write('  nothing changed for this route\n');
    } else {
      lines(io, [`! failed: ${(err as Error).message}`]);
    }
    return 'incompatible';
  }
}
