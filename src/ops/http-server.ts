import { createServer, type Server } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Registry } from 'prom-client';

export interface HealthSource {
  /** Subscriptions open and not draining. */
  ready(): { ready: boolean; body: unknown };
  /** Anything that goes on behind readiness, e.g. each route's state. */
  status(): unknown;
  /** Whether the worker can still do its job at all (a subscription stream closed for good cannot). */
  live?(): { live: boolean; reason?: string };
}

/** Event-loop stalls beyond this mean the process is not sound (liveness fails). */
const MAX_EVENT_LOOP_DELAY_MS = 10_000;

/**
 * /metrics, /healthz (liveness: the event loop turns and every subscription stream is open or
 * being reopened within its window) and /readyz (subscriptions open, not
 * draining). A BigQuery outage pauses routes but never fails liveness: restarting pods would not
 * bring BigQuery back and would only churn leases.
 */
export async function startHttpServer(options: { port: number; host: string }, registry: Registry, health: HealthSource): Promise<Server> {
  const loopDelay = monitorEventLoopDelay({ resolution: 50 });
  loopDelay.enable();
  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url === '/metrics') {
      registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        })
        .catch((err: unknown) => json(500, { error: String(err) }));
      return;
    }
    if (url === '/healthz') {
      const maxDelayMs = loopDelay.max / 1e6;
      loopDelay.reset();
      const loopOk = maxDelayMs < MAX_EVENT_LOOP_DELAY_MS;
      const liveness = health.live?.() ?? { live: true };
      const ok = loopOk && liveness.live;
      const status = !loopOk ? 'event loop stalled' : liveness.live ? 'ok' : (liveness.reason ?? 'not live');
      json(ok ? 200 : 503, { ...liveness, status, eventLoopMaxDelayMs: Math.round(maxDelayMs) });
      return;
    }
    if (url === '/readyz') {
      const { ready, body } = health.ready();
      json(ready ? 200 : 503, body);
      return;
    }
    if (url === '/status') {
      json(200, health.status());
      return;
    }
    json(404, { error: 'not found', paths: ['/metrics', '/healthz', '/readyz', '/status'] });
  });
  server.on('close', () => loopDelay.disable());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
