import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDecodeCost } from './decode-cost.js';
import { runEndToEnd } from './end-to-end.js';
import { runFramingCost } from './framing-cost.js';
import { describeMachine, Results } from './lib/report.js';
import { runPipelineThroughput } from './pipeline-throughput.js';
import { runWireSize } from './wire-size.js';
import { runWriteApiCost } from './write-api-cost.js';

/*
 * `npm run bench`: every section in one process, side by side, results printed as a table, as one
 * `BENCH <name> <value> <unit>` line per figure, and as JSON under bench/results/.
 *
 * Knobs (environment), so that development runs stay short:
 *   BENCH_SECTIONS          comma-separated section numbers to run (default: all, 1-8)
 *   BENCH_ROUNDS            rounds of the micro-benchmarks, medians over them (default 7)
 *   BENCH_ROUND_MS          time per workload per round in section 2 (default 300)
 *   BENCH_PIPELINE_MESSAGES messages per round in section 3 (default 100000)
 *   BENCH_E2E_MESSAGES      backlog drained in section 4 (default 100000)
 *   BENCH_E2E_ROUNDS        rounds of section 4 (default 3)
 *   BENCH_MEMORY_MESSAGES   backlog drained in section 5 (default 500000)
 *   BENCH_SOAK_MINUTES      length of the steady run of section 5 (default 1; 10 for the full test)
 *   BENCH_SOAK_RATE         messages/s published during the steady run (default 2000)
 *   BENCH_SCALE_MESSAGES    backlog drained per configuration in section 7 (default 100000)
 *   BENCH_WORKER_NODE_ARGS  extra node options for the worker processes (e.g. --cpu-prof)
 *   BENCH_FLOW_CONTROL_MESSAGES  flow-control window of worker and bare subscriber (default 10000)
 */

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

async function main(): Promise<void> {
  const sections = new Set((process.env.BENCH_SECTIONS ?? '1,2,3,4,5,6,7,8').split(',').map((s) => Number(s.trim())));
  const rounds = intEnv('BENCH_ROUNDS', 7);
  const machine = describeMachine();
  const started = new Date();
  process.stdout.write(`tributary benchmark: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, sections ${[...sections].join(',')}\n`);
  const results = new Results();

  if (sections.has(1)) runWireSize(results);
  if (sections.has(2)) {
    await runDecodeCost(results, { rounds, roundMs: intEnv('BENCH_ROUND_MS', 300) });
    await runFramingCost(results, { rounds, roundMs: intEnv('BENCH_ROUND_MS', 300) });
  }
  if (sections.has(8)) runWriteApiCost(results, { rounds, roundMs: intEnv('BENCH_ROUND_MS', 300) });
  if (sections.has(3)) await runPipelineThroughput(results, { rounds, messages: intEnv('BENCH_PIPELINE_MESSAGES', 100_000) });
  if ([4, 5, 6, 7].some((s) => sections.has(s))) {
    await runEndToEnd(results, {
      sections,
      e2eMessages: intEnv('BENCH_E2E_MESSAGES', 100_000),
      e2eRounds: intEnv('BENCH_E2E_ROUNDS', 3),
      memoryMessages: intEnv('BENCH_MEMORY_MESSAGES', 500_000),
      soakMinutes: intEnv('BENCH_SOAK_MINUTES', 1),
      soakRate: intEnv('BENCH_SOAK_RATE', 2_000),
      scaleMessages: intEnv('BENCH_SCALE_MESSAGES', 100_000),
    });
  }

  const seconds = (Date.now() - started.getTime()) / 1000;
  process.stdout.write(`\n${results.table()}\n\n`);
  for (const note of results.notes) process.stdout.write(`note: ${note}\n`);
  const directory = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  const { file } = await results.write(directory, { startedAt: started.toISOString(), seconds: Math.round(seconds), machine, sections: [...sections] });
  const missed = results.figures.filter((f) => f.target && !f.target.met).map((f) => f.name);
  process.stdout.write(
    `\nResults: bench/results/${basename(file)} (and latest.json). ${Math.round(seconds)} s. Targets missed: ${missed.length === 0 ? 'none' : missed.join(', ')}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
