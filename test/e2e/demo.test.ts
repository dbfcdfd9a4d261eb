import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createAvroType, type AvroSchema } from '../../src/core/avro-type.js';
import { demoStream } from '../../src/demo/demo-stream.js';
import { closePubSub, createPubSub, pullAll } from '../support/pubsub-fixtures.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'tributary.js');
const DEMO = join(ROOT, 'examples', 'demo');
const POISON_CODES = ['CONVERSION_FAILED', 'DECODE_FAILED', 'NO_SCHEMA_REFERENCE', 'ROW_INVALID', 'SCHEMA_NOT_FOUND', 'UNROUTED'];

interface Run {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exit: Promise<number | null>;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
}

/** In a process group of its own, so that the test can tell whether anything it started is left. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv): Run {
  const child = spawn(command, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const watchers: Array<() => void> = [];
  const collect = (into: string[]) => (chunk: Buffer) => {
    into.push(chunk.toString('utf8'));
    for (const w of [...watchers]) w();
  };
  child.stdout?.on('data', collect(stdout));
  child.stderr?.on('data', collect(stderr));
  const exit = once(child, 'exit').then(([code, signal]) => (code as number | null) ?? (signal === 'SIGINT' ? 130 : null));
  return {
    child,
    stdout,
    stderr,
    exit,
    waitFor(pattern, timeoutMs = 45_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = pattern.exec(stdout.join(''));
          if (!found) return;
          watchers.splice(watchers.indexOf(check), 1);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(
          () => reject(new Error(`no ${String(pattern)} within ${timeoutMs} ms; stdout: ${stdout.join('')}; stderr: ${stderr.join('')}`)),
          timeoutMs,
        );
        watchers.push(check);
        check();
        void exit.then(() => {
          if (watchers.includes(check)) {
            clearTimeout(timer);
            reject(new Error(`exited before ${String(pattern)}; stdout: ${stdout.join('')}; stderr: ${stderr.join('')}`));
          }
        });
      });
    },
  };
}

function groupAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm run demo', () => {
  const dirs: string[] = [];
  const runs: Run[] = [];

  afterEach(async () => {
    for (const r of runs.splice(0)) if (groupAlive(r.child.pid)) process.kill(-(r.child.pid as number), 'SIGKILL');
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  /** The trace ids of the later revision's messages: the stream is seeded, so a run publishes these. */
  async function laterTraceIds(messages: number): Promise<string[]> {
    const avsc = async (path: string): Promise<AvroSchema> => JSON.parse(await readFile(join(DEMO, path), 'utf8')) as AvroSchema;
    const rev3 = await avsc('schemas/access-v3.avsc');
    const stream = demoStream(
      {
        accessRevisions: [await avsc('schemas/access-v1.avsc'), await avsc('schemas/access-v2.avsc'), rev3],
        audit: await avsc('registry/1.avsc'),
        metricV1: await avsc('registry/2.avsc'),
        metricV2: await avsc('registry/3.avsc'),
      },
      { messages, schemaTopic: 'demo-access', framedTopic: 'demo-logs', confluentIds: { audit: 1, metricV1: 2, metricV2: 3 } },
    );
    const type = createAvroType(rev3);
    return stream.later.map((m) => (type.fromBuffer(m.data) as { trace_id: { string: string } }).trace_id.string);
  }

  it('lands every good message in DuckDB, adds the column of the later revision, dead-letters exactly the poison ones, exits 0 and leaves nothing running', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tributary-demo-'));
    dirs.push(dir);
    const dbPath = join(dir, 'demo.duckdb');
    const host = inject('pubsubEmulatorHost');
    const demo = run('npm', ['run', '--silent', 'demo', '--', '--messages', '1200'], {
      ...process.env,
      PUBSUB_EMULATOR_HOST: host,
      TRIBUTARY_DUCKDB_PATH: dbPath,
      TRIBUTARY_SERVER_PORT: '0',
    });
    runs.push(demo);
    const code = await demo.exit;
    const out = demo.stdout.join('');
    expect(code, `stdout: ${out}\nstderr: ${demo.stderr.join('')}`).toBe(0);
    expect(out).toContain(`Pub/Sub emulator   ${host} (from PUBSUB_EMULATOR_HOST)`);
    expect(out).toContain('Conservation: published 1206 = inserted 1200 + dead-lettered 6; every poison message dead-lettered with its reason');
    expect(out).toMatch(/^ {2}access +600 +600 +0 /m);
    expect(out).toMatch(/^ {2}metric +301 +300 +1 /m);
    // The later revision: the worker added its column while the rows waited, and none was dead-lettered.
    expect(out).toContain('120 access events of revision 3 of demo-access, published after the rest had settled: 120 inserted, 0 dead-lettered');
    expect(out).toMatch(/^ {4}\+ trace_id STRING NULLABLE$/m);
    expect(out).toContain('columns after:  12 (added: trace_id)');
    expect(out).toContain('rows with a value in trace_id: 120 of 600');
    expect(out).toContain('duckdb ');
    expect(out).toContain('npx tributary replay demo-dead-letter');
    expect(groupAlive(demo.child.pid)).toBe(false);

    // The file, read after the demo closed it.
    const db = await DuckDBInstance.create(dbPath, { access_mode: 'READ_ONLY' });
    const connection = await db.connect();
    const counts = (
      await connection.runAndReadAll(
        `SELECT 'access' AS t, count(*)::INTEGER AS n, count(DISTINCT _message_id)::INTEGER AS d FROM logs.access
         UNION ALL SELECT 'audit', count(*)::INTEGER, count(DISTINCT _message_id)::INTEGER FROM logs.audit
         UNION ALL SELECT 'metric', count(*)::INTEGER, count(DISTINCT _message_id)::INTEGER FROM logs.metric ORDER BY t`,
      )
    ).getRowObjectsJS();
    const traceColumn = (
      await connection.runAndReadAll("SELECT data_type FROM duckdb_columns() WHERE schema_name = 'logs' AND table_name = 'access' AND column_name = 'trace_id'")
    ).getRowObjectsJS();
    const traced = (await connection.runAndReadAll('SELECT trace_id, _publish_time FROM logs.access WHERE trace_id IS NOT NULL')).getRowObjectsJS() as Array<{
      trace_id: string;
      _publish_time: Date;
    }>;
    const [untraced] = (
      await connection.runAndReadAll('SELECT max(_publish_time) AS last FROM logs.access WHERE trace_id IS NULL')
    ).getRowObjectsJS() as Array<{ last: Date }>;
    connection.closeSync();
    db.closeSync();
    expect(traceColumn).toEqual([{ data_type: 'VARCHAR' }]);
    // Exactly the later revision's rows carry a trace id, each the one its message was published with.
    expect(traced.map((r) => r.trace_id).sort()).toEqual((await laterTraceIds(1200)).sort());
    const firstTraced = Math.min(...traced.map((r) => r._publish_time.getTime()));
    expect(firstTraced).toBeGreaterThan(untraced?.last.getTime() ?? Number.POSITIVE_INFINITY);
    expect(counts).toEqual([
      { t: 'access', n: 600, d: 600 },
      { t: 'audit', n: 300, d: 300 },
      { t: 'metric', n: 300, d: 300 },
    ]);

    // The dead letters wait in the subscription a replay would read.
    const pubsub = createPubSub(host, 'tributary-demo');
    try {
      const dead = await pullAll(pubsub.subscription('demo-dead-letter'), { timeoutMs: 1500 });
      expect(dead.map((m) => m.attributes.tributary_error_code).sort()).toEqual(POISON_CODES);
    } finally {
      await closePubSub(pubsub);
    }
  });

  it('started without PUBSUB_EMULATOR_HOST, starts its own emulator and on Ctrl-C stops it with everything else', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tributary-demo-'));
    dirs.push(dir);
    const env: NodeJS.ProcessEnv = { ...process.env, TRIBUTARY_DUCKDB_PATH: join(dir, 'demo.duckdb'), TRIBUTARY_SERVER_PORT: '0' };
    delete env.PUBSUB_EMULATOR_HOST;
    const demo = run(process.execPath, [join(ROOT, 'dist', 'demo', 'run-demo.js'), '--messages', '20000'], env);
    runs.push(demo);
    const [, pid] = await demo.waitFor(/started for this run, pid (\d+)/);
    const emulatorPid = Number(pid);
    expect(alive(emulatorPid)).toBe(true);
    await demo.waitFor(/worker {13}routes/);
    demo.child.kill('SIGINT');
    expect(await demo.exit).toBe(130);
    // The emulator's process group is gone too, JVM included.
    expect(groupAlive(emulatorPid)).toBe(false);
    expect(groupAlive(demo.child.pid)).toBe(false);
  });

  it('tributary validate accepts both example configs', async () => {
    for (const config of ['examples/demo/tributary.yaml', 'examples/production/tributary.yaml']) {
      const validate = run(process.execPath, [BIN, 'validate', '--config', config], { ...process.env });
      runs.push(validate);
      expect(await validate.exit, validate.stderr.join('')).toBe(0);
      expect(validate.stdout.join('')).toContain(`${config}: OK (3 route(s)`);
    }
  });
});
