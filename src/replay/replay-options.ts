import { isErrorCode } from '../errors.js';

/** What a replay run does; every field comes from a command-line flag. */
export interface ReplayOptions {
  /** Full path of the dead-letter subscription to read. */
  subscription: string;
  /** Full topic path: republish there instead of inserting directly. */
  toTopic: string | undefined;
  dryRun: boolean;
  /** Messages to take at most (those that pass the filter). */
  max: number | undefined;
  /** Messages per second at most. */
  ratePerSecond: number | undefined;
  filter: ReplayFilter;
  /** Messages already replayed this many times are left where they are. */
  maxReplays: number;
  /** The subscription counts as drained after this long without a message and with nothing in flight. */
  idleTimeoutMs: number;
}

export interface ReplayFilter {
  /** Error codes to take; empty takes every code. */
  codes: ReadonlySet<string>;
  /** Routes to take (`unrouted` for messages no route took); empty takes every route. */
  routes: ReadonlySet<string>;
  /** Failure time window on `tributary_failed_at`: since inclusive, until exclusive. */
  sinceMs: number | undefined;
  untilMs: number | undefined;
}

export const DEFAULT_MAX_REPLAYS = 3;
export const DEFAULT_IDLE_TIMEOUT_MS = 10_000;

/** A flag value that cannot be used; the CLI prints it with the usage (exit 64). */
export class ReplayUsageError extends Error {}

/**
 * `code=ROW_INVALID,route=access`; a key may repeat (`code=A,code=B`) or list values with `|`
 * (`code=A|B`): values of one key are alternatives, different keys must all match.
 */
export function parseFilter(specs: readonly string[]): Pick<ReplayFilter, 'codes' | 'routes'> {
  const codes = new Set<string>();
  const routes = new Set<string>();
  for (const spec of specs) {
    for (const part of spec.split(',')) {
      const term = part.trim();
      if (term === '') continue;
      const eq = term.indexOf('=');
      if (eq <= 0) throw new ReplayUsageError(`--filter: "${term}" is not key=value (keys: code, route)`);
      const key = term.slice(0, eq).trim();
      const values = term
        .slice(eq + 1)
        .split('|')
        .map((v) => v.trim())
        .filter((v) => v !== '');
      if (values.length === 0) throw new ReplayUsageError(`--filter: "${term}" has no value`);
      if (key === 'code') {
        for (const value of values) {
          if (!isErrorCode(value)) throw new ReplayUsageError(`--filter: "${value}" is not an error code`);
          codes.add(value);
        }
      } else if (key === 'route') {
        for (const value of values) routes.add(value);
      } else {
        throw new ReplayUsageError(`--filter: unknown key "${key}" (keys: code, route)`);
      }
    }
  }
  return { codes, routes };
}

const DURATION_UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * An ISO 8601 time (`2026-01-02T03:04:05Z`, `2026-01-02`) or a duration before `nowMs`
 * (`90m`, `6h`, `7d`).
 */
export function parseTime(flag: string, value: string, nowMs: number): number {
  const relative = /^(\d+(?:\.\d+)?)([smhd])$/.exec(value.trim());
  if (relative) return nowMs - Number(relative[1]) * (DURATION_UNITS_MS[relative[2] as string] as number);
  // Date.parse accepts far more than ISO 8601 (and reads date-only forms as UTC): insist on a date first.
  if (/^\d{4}-\d{2}-\d{2}/.test(value.trim())) {
    const ms = Date.parse(value.trim());
    if (!Number.isNaN(ms)) return ms;
  }
  throw new ReplayUsageError(`${flag}: "${value}" is neither an ISO 8601 time nor a duration like 90m, 6h, 7d`);
}

/** `200`, `200/s` or `12000/m`, as messages per second. */
export function parseRate(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(?:\/([sm]))?$/.exec(value.trim());
  const n = m ? Number(m[1]) : Number.NaN;
  if (!m || !(n > 0)) throw new ReplayUsageError(`--rate: "${value}" is not a positive rate like 200/s`);
  return m[2] === 'm' ? n / 60 : n;
}

export function parseCount(flag: string, value: string, min: number): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < min) throw new ReplayUsageError(`${flag}: "${value}" must be a whole number of at least ${min}`);
  return Number(value);
}

/** `30s`, `1500ms`, `2m`, or a number of seconds. */
export function parseDurationMs(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!m) throw new ReplayUsageError(`${flag}: "${value}" is not a duration like 30s`);
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  if (!(ms > 0)) throw new ReplayUsageError(`${flag}: must be more than zero`);
  return Math.round(ms);
}

/** The replay flags, in `node:util` parseArgs form. */
export const REPLAY_ARG_OPTIONS = {
  'replay-dlq': { type: 'string' },
  'to-topic': { type: 'string' },
  'dry-run': { type: 'boolean' },
  max: { type: 'string' },
  rate: { type: 'string' },
  filter: { type: 'string', multiple: true },
  since: { type: 'string' },
  until: { type: 'string' },
  'max-replays': { type: 'string' },
  'idle-timeout': { type: 'string' },
} as const;

type FlagValues = Readonly<Record<string, string | boolean | Array<string | boolean> | undefined>>;

function stringFlag(values: FlagValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Replay options from the parsed flags; the subscription is `--replay-dlq` or the first argument
 * after `replay`. The subscription stays as given (a short name is resolved against the config).
 */
export function buildReplayOptions(values: FlagValues, positionals: readonly string[], nowMs: number): ReplayOptions {
  const fromFlag = stringFlag(values, 'replay-dlq');
  const fromArg = positionals[0];
  if (fromFlag !== undefined && fromArg !== undefined && fromFlag !== fromArg)
    throw new ReplayUsageError(`two dead-letter subscriptions given: ${fromFlag} and ${fromArg}`);
  const subscription = fromFlag ?? fromArg;
  if (subscription === undefined || subscription.trim() === '')
    throw new ReplayUsageError('replay: name the dead-letter subscription (--replay-dlq SUBSCRIPTION)');
  if (positionals.length > 1) throw new ReplayUsageError(`replay: unexpected argument "${positionals[1]}"`);
  const toTopic = stringFlag(values, 'to-topic');
  const dryRun = values['dry-run'] === true;
  if (dryRun && toTopic !== undefined) throw new ReplayUsageError('--dry-run and --to-topic: a dry run publishes nothing; give one of them');
  const filterValue = values.filter;
  const specs = Array.isArray(filterValue) ? filterValue.filter((v): v is string => typeof v === 'string') : [];
  const since = stringFlag(values, 'since');
  const until = stringFlag(values, 'until');
  const sinceMs = since === undefined ? undefined : parseTime('--since', since, nowMs);
  const untilMs = until === undefined ? undefined : parseTime('--until', until, nowMs);
  if (sinceMs !== undefined && untilMs !== undefined && sinceMs >= untilMs) throw new ReplayUsageError('--since must be before --until');
  const max = stringFlag(values, 'max');
  const rate = stringFlag(values, 'rate');
  const maxReplays = stringFlag(values, 'max-replays');
  const idle = stringFlag(values, 'idle-timeout');
  return {
    subscription: subscription.trim(),
    toTopic,
    dryRun,
    max: max === undefined ? undefined : parseCount('--max', max, 1),
    ratePerSecond: rate === undefined ? undefined : parseRate(rate),
    filter: { ...parseFilter(specs), sinceMs, untilMs },
    maxReplays: maxReplays === undefined ? DEFAULT_MAX_REPLAYS : parseCount('--max-replays', maxReplays, 1),
    idleTimeoutMs: idle === undefined ? DEFAULT_IDLE_TIMEOUT_MS : parseDurationMs('--idle-timeout', idle),
  };
}
