import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { until } from './until.js';

/**
 * The `prometheus` server binary (Debian's package, no service): started on a free port with a
 * temporary storage directory, scraping the given targets every second and evaluating the given
 * rule files every second. Queried through its HTTP API only.
 */
export interface PrometheusServer {
  url: string;
  /** An instant query; throws with Prometheus' error text when the query does not parse or fails. */
  query(expr: string): Promise<PromSeries[]>;
  api<T>(path: string): Promise<T>;
  output(): string;
  stop(): Promise<void>;
}

export interface PromSeries {
  metric: Record<string, string>;
  value: [number, string];
}

export function prometheusAvailable(): boolean {
  try {
    execFileSync('prometheus', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export async function startPrometheus(options: { targets: string[]; labels?: Record<string, string>; ruleFiles?: string[] }): Promise<PrometheusServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tributary-prometheus-'));
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: [{ job_name: 'tributary', static_configs: [{ targets: options.targets, labels: options.labels ?? {} }] }],
  };
  await writeFile(join(dir, 'prometheus.yml'), stringifyYaml(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout?.on('data', (b: Buffer) => (log += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (log += b.toString()));
  const exited = once(child, 'exit');
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await until(
      `Prometheus ready on ${url}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${log}`);
        return fetch(`${url}/-/ready`).then(
          (r) => r.ok,
          () => false,
        );
      },
      30_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success') throw new Error(`${path}: ${body.errorType ?? ''} ${body.error ?? ''}`);
    return body.data;
  };
  return {
    url,
    api,
    async query(expr) {
      const data = await api<{ resultType: string; result: PromSeries[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      return data.result;
    },
    output: () => log,
    stop,
  };
}
