import { access } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { StartupError, startWorker } from './app.js';
import { tablesCommand } from './cli/tables-command.js';
import { loadTableDefinitions } from './adapters/duckdb-table-definitions.js';
import { loadConfig, subscriptionPath, type Config } from './config.js';
import { ConfigError } from './errors.js';
import { INSPECT_USAGE, runInspect, UsageError } from './cli/inspect-command.js';
import { PUBLISH_USAGE, runPublish } from './cli/publish-command.js';
import type { Logger } from './core/ports.js';
import { createLogger } from './ops/logger.js';
import { packageVersion } from './package-version.js';
import { LogProgress, TerminalProgress, type ProgressReporter } from './replay/progress-reporter.js';
import { buildReplayOptions, ReplayUsageError, REPLAY_ARG_OPTIONS, type ReplayOptions } from './replay/replay-options.js';
import { runReplay } from './replay/replay-runner.js';
import { exitCodeOf, formatSummary, type ReplayStats } from './replay/replay-stats.js';

/** sysexits.h EX_UNAVAILABLE: a subscription the worker needs is gone or may not be read. */
const EXIT_UNAVAILABLE = 69;
/** sysexits.h EX_CONFIG: the configuration is wrong; restarting will not help. */
export const EXIT_CONFIG = 78;

const USAGE = `Usage: tributary <command> [options]

Commands:
  run       --config FILE   run the worker (Pub/Sub -> Avro -> BigQuery)
  validate  --config FILE   check the configuration; every problem at once, exit 78 if any
  replay    SUBSCRIPTION --config FILE [replay options]
            take dead letters back through the pipeline (same as --replay-dlq SUBSCRIPTION)
  tables    plan|apply --config FILE --schema FILE.avsc|--schema-id ID|--pubsub-schema NAME
            what each route's table lacks for a schema, and make the compatible changes
            (tributary tables --help)
  inspect   --config FILE (--file PAYLOAD [--attributes k=v,...] | --subscription SUB [--max N])
            what the worker would do with a message: framing, schema, record, route, row or reason
  publish   --topic T --framing F (--schema FILE | --schema-id N) --jsonl FILE
            encode JSON lines and publish them (tributary publish --help)

Options:
  -c, --config FILE   YAML config (or TRIBUTARY_CONFIG); every value can also come from TRIBUTARY_* variables
  -v, --version       print the version
  -h, --help          this help

Replay options (tributary --config FILE --replay-dlq SUBSCRIPTION ...):
  --replay-dlq SUB      the dead-letter subscription to read
  --to-topic TOPIC      republish the original bytes and attributes to TOPIC instead of inserting
  --dry-run             count and summarise by route and error code; change nothing
  --max N               take at most N messages
  --rate N/s            take at most N messages per second (also N/m)
  --filter K=V,...      code=ROW_INVALID|UNKNOWN_FIELD, route=access (repeatable; keys must all match)
  --since T, --until T  failure time window: ISO 8601 time or a duration ago (90m, 6h, 7d)
  --max-replays N       leave messages already replayed N times (default 3)
  --idle-timeout D      stop when nothing arrived for D and nothing is in flight (default 10s)
`;

/** One clear line on stderr, JSON like every other log line, no stack dump. */
function fatal(message: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ severity: 'CRITICAL', service: 'tributary', message, ...fields })}\n`);
}

async function checkFilesystem(config: Config): Promise<string[]> {
  const problems: string[] = [];
  if (config.registry.directory) {
    try {
      await access(config.registry.directory);
    } catch {
      problems.push(`registry.directory: ${config.registry.directory} does not exist or cannot be read`);
    }
  }
  if (config.sink === 'duckdb') problems.push(...(await loadTableDefinitions(config)).problems);
  return problems;
}

/**
 * Against the Pub/Sub emulator there is no GCE metadata server to find: without this, the Google
 * auth library probes for one and prints a MetadataLookupWarning stack before the first line of
 * output. A value the user set is kept.
 */
export function skipMetadataProbeOnEmulator(env: NodeJS.ProcessEnv): void {
  if (env.PUBSUB_EMULATOR_HOST && env.METADATA_SERVER_DETECTION === undefined) env.METADATA_SERVER_DETECTION = 'none';
}

/** inspect and publish take options of their own: usage errors exit 64, bad config 78. */
async function subcommand(run: (argv: string[]) => Promise<number>, argv: string[], usage: string): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage);
    return 0;
  }
  try {
    return await run(argv);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(err as Error).message}\n\n${usage}`);
      return 64;
    }
    if (err instanceof ConfigError) {
      fatal(`Invalid configuration: ${err.problems.join('; ')}`, { problems: err.problems });
      return EXIT_CONFIG;
    }
    throw err;
  }
}

export async function main(argv: string[]): Promise<number> {
  skipMetadataProbeOnEmulator(process.env);
  if (argv[0] === 'tables') return tablesCommand(argv.slice(1), { env: process.env, stdout: process.stdout, stderr: process.stderr });
  if (argv[0] === 'inspect') return subcommand(runInspect, argv.slice(1), INSPECT_USAGE);
  if (argv[0] === 'publish') return subcommand(runPublish, argv.slice(1), PUBLISH_USAGE);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        version: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
        ...REPLAY_ARG_OPTIONS,
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 64;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const command = values['replay-dlq'] !== undefined && positionals[0] === undefined ? 'replay' : (positionals[0] ?? (values.config ? 'run' : undefined));
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return values.help || command === 'help' ? 0 : 64;
  }
  if (command !== 'run' && command !== 'validate' && command !== 'replay') {
    process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
    return 64;
  }
  let replayOptions: ReplayOptions | undefined;
  if (command === 'replay') {
    try {
      replayOptions = buildReplayOptions(values, positionals.slice(1), Date.now());
    } catch (err) {
      if (!(err instanceof ReplayUsageError)) throw err;
      process.stderr.write(`${err.message}\n\n${USAGE}`);
      return 64;
    }
  }
  const configPath = values.config ?? process.env.TRIBUTARY_CONFIG;
  if (!configPath) {
    fatal('No config: pass --config FILE or set TRIBUTARY_CONFIG.');
    return EXIT_CONFIG;
  }
  let config: Config;
  try {
    config = await loadConfig(configPath, process.env);
    const problems = await checkFilesystem(config);
    if (problems.length > 0) throw new ConfigError(problems);
  } catch (err) {
    if (err instanceof ConfigError) {
      if (command === 'validate') {
        process.stderr.write(`${configPath}: ${err.problems.length} problem(s)\n${err.problems.map((p) => `  - ${p}`).join('\n')}\n`);
      } else {
        fatal(`Invalid configuration in ${configPath}: ${err.problems.join('; ')}`, { problems: err.problems });
      }
      return EXIT_CONFIG;
    }
    throw err;
  }
  if (command === 'validate') {
    process.stdout.write(
      `${configPath}: OK (${config.routes.length} route(s): ${config.routes.map((r) => `${r.name} -> ${r.table.projectId}.${r.table.datasetId}.${r.table.tableId}`).join(', ')})\n`,
    );
    return 0;
  }
  if (replayOptions) {
    return replay(config, { ...replayOptions, subscription: subscriptionPath(config.projectId, replayOptions.subscription) });
  }
  return run(config);
}

async function replay(config: Config, options: ReplayOptions): Promise<number> {
  // Log lines go through a terminal progress line when there is one, so the two do not tear.
  let logOut: NodeJS.WritableStream = process.stdout;
  const forward = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      logOut.write(chunk);
      callback();
    },
  });
  const logger = createLogger(config.log.level, forward);
  const verb = options.dryRun ? 'would replay' : options.toTopic !== undefined ? 'republished' : 'inserted';
  const progress = (stats: ReplayStats, total: number | undefined): ProgressReporter => {
    if (process.stderr.isTTY) {
      const terminal = new TerminalProgress({ stats, total }, verb);
      logOut = terminal.logDestination(process.stdout);
      return terminal;
    }
    return new LogProgress({ stats, total }, logger);
  };
  const abort = new AbortController();
  const releaseSignals = onStopSignals(
    logger,
    'Signal received: stopping the replay.',
    'Second signal: exiting now; dead letters not acked come back after their lease.',
    () => abort.abort(),
  );
  try {
    const summary = await runReplay(config, options, { logger, signal: abort.signal, progress });
    logOut = process.stdout;
    process.stderr.write(formatSummary(summary));
    return exitCodeOf(summary);
  } catch (err) {
    if (err instanceof StartupError) {
      fatal(`Cannot replay: ${err.message}.`);
      return 1;
    }
    throw err;
  } finally {
    releaseSignals();
  }
}

async function run(config: Config): Promise<number> {
  const logger = createLogger(config.log.level);
  let worker;
  try {
    worker = await startWorker(config, { logger });
  } catch (err) {
    if (err instanceof StartupError) {
      fatal(`Cannot start: ${err.message}.`);
      return 1;
    }
    throw err;
  }
  return new Promise<number>((resolve) => {
    const stop = (code: (drained: boolean) => number): void => {
      worker.stop().then(
        ({ drained }) => resolve(code(drained)),
        (err: unknown) => {
          fatal(`Shutdown failed: ${(err as Error).message}`);
          resolve(1);
        },
      );
    };
    onStopSignals(logger, 'Signal received: shutting down.', 'Second signal: exiting now; unsettled messages will be redelivered.', () =>
      stop((drained) => (drained ? 0 : 1)),
    );
    void worker.lost.then((lost) => {
      logger.fatal(
        { subscription: lost.subscription, status: lost.status, err: lost.message },
        `Subscription ${lost.subscription} closed for good (${lost.status}) and could not be reopened: settling what can be settled and exiting.`,
      );
      stop(() => EXIT_UNAVAILABLE);
    });
  });
}

/**
 * SIGTERM or SIGINT: the first one stops gracefully, a second one exits at once with 130. Returns
 * what removes the handlers again.
 */
function onStopSignals(logger: Pick<Logger, 'info' | 'warn'>, first: string, second: string, stop: () => void): () => void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, second);
      process.exit(130);
    }
    logger.info({ signal }, first);
    stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
