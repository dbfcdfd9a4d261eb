import type { DeadLetterInfo } from './dead-letter-message.js';

export type ReplayMode = 'direct' | 'topic' | 'dry-run';

/** How one replayed message ended. */
export type ReplayOutcome =
  /** Inserted (direct) or republished (to a topic); its dead letter was acked. */
  | { kind: 'replayed' }
  /** Failed again and was dead-lettered again with a new reason; its old dead letter was acked. */
  | { kind: 'failed-again'; code: string }
  /** Neither: it stays in the dead-letter subscription (a retryable failure, or the run stopped). */
  | { kind: 'not-settled'; code: string };

/** `damaged`: a wrapped dead letter whose header does not read; left for a person to look at. */
export type SkipReason = 'filtered' | 'outside-window' | 'duplicate' | 'damaged';

/** Counts of one (route, error code) group of dead letters. */
export interface GroupStats {
  route: string;
  code: string;
  /** Messages this run took (dry run: would take). */
  taken: number;
  replayed: number;
  failedAgain: number;
  notSettled: number;
  /** Left in the subscription: replayed `--max-replays` times already. */
  overMaxReplays: number;
  firstFailedAtMs: number | undefined;
  lastFailedAtMs: number | undefined;
}

export interface ReplaySummary {
  mode: ReplayMode;
  subscription: string;
  /** Sorted by route, then code. */
  groups: GroupStats[];
  totals: Omit<GroupStats, 'route' | 'code' | 'firstFailedAtMs' | 'lastFailedAtMs'>;
  skipped: Record<SkipReason, number>;
  /** New error codes of the messages that failed again. */
  failedAgainByCode: Record<string, number>;
  /** Acks Pub/Sub refused: those dead letters come back, and a later replay inserts them again. */
  ackFailed: number;
  /** Stopped by a signal before the subscription was drained. */
  interrupted: boolean;
  durationMs: number;
}

/** Counts as the run goes, for the progress line and the summary table. */
export class ReplayStats {
  private readonly groups = new Map<string, GroupStats>();
  private readonly failedAgainCodes = new Map<string, number>();
  private readonly skipCounts: Record<SkipReason, number> = { filtered: 0, 'outside-window': 0, duplicate: 0, damaged: 0 };
  private ackFailures = 0;
  /** Messages received from the subscription, of every kind. */
  pulled = 0;
  taken = 0;
  settled = 0;
  replayed = 0;
  failedAgain = 0;
  notSettled = 0;
  overMaxReplays = 0;

  constructor(
    readonly mode: ReplayMode,
    readonly subscription: string,
  ) {}

  take(info: DeadLetterInfo): void {
    this.taken++;
    const group = this.group(info);
    group.taken++;
  }

  /** A message this run does not take; it stays in the subscription. */
  notTaken(reason: SkipReason): void {
    this.skipCounts[reason]++;
  }

  leave(info: DeadLetterInfo): void {
    this.overMaxReplays++;
    this.group(info).overMaxReplays++;
  }

  settle(info: DeadLetterInfo, outcome: ReplayOutcome): void {
    const group = this.group(info, false);
    this.settled++;
    switch (outcome.kind) {
      case 'replayed':
        this.replayed++;
        group.replayed++;
        break;
      case 'failed-again':
        this.failedAgain++;
        group.failedAgain++;
        this.failedAgainCodes.set(outcome.code, (this.failedAgainCodes.get(outcome.code) ?? 0) + 1);
        break;
      case 'not-settled':
        this.notSettled++;
        group.notSettled++;
        break;
    }
  }

  ackFailed(count: number): void {
    this.ackFailures += count;
  }

  summary(interrupted: boolean, durationMs: number): ReplaySummary {
    const groups = [...this.groups.values()].sort((a, b) => a.route.localeCompare(b.route) || a.code.localeCompare(b.code)).map((g) => ({ ...g }));
    return {
      mode: this.mode,
      subscription: this.subscription,
      groups,
      totals: {
        taken: this.taken,
        replayed: this.replayed,
        failedAgain: this.failedAgain,
        notSettled: this.notSettled,
        overMaxReplays: this.overMaxReplays,
      },
      skipped: { ...this.skipCounts },
      failedAgainByCode: Object.fromEntries([...this.failedAgainCodes].sort(([a], [b]) => a.localeCompare(b))),
      ackFailed: this.ackFailures,
      interrupted,
      durationMs,
    };
  }

  private group(info: DeadLetterInfo, countTime = true): GroupStats {
    const key = `${info.route}\u0000${info.code}`;
    let group = this.groups.get(key);
    if (group === undefined) {
      group = {
        route: info.route,
        code: info.code,
        taken: 0,
        replayed: 0,
        failedAgain: 0,
        notSettled: 0,
        overMaxReplays: 0,
        firstFailedAtMs: undefined,
        lastFailedAtMs: undefined,
      };
      this.groups.set(key, group);
    }
    const at = info.failedAtMs;
    if (countTime && at !== undefined) {
      if (group.firstFailedAtMs === undefined || at < group.firstFailedAtMs) group.firstFailedAtMs = at;
      if (group.lastFailedAtMs === undefined || at > group.lastFailedAtMs) group.lastFailedAtMs = at;
    }
    return group;
  }
}

/**
 * 0 when everything taken was replayed; 1 when something failed again, was left behind (over
 * `--max-replays`, or not settled) or an ack was refused; 130 (the shell's Ctrl-C code) when the
 * run was interrupted before the subscription was drained. A dry run changes nothing, so it fails
 * only when interrupted.
 */
export function exitCodeOf(summary: ReplaySummary): number {
  if (summary.interrupted) return 130;
  if (summary.mode === 'dry-run') return 0;
  const t = summary.totals;
  return t.failedAgain > 0 || t.notSettled > 0 || t.overMaxReplays > 0 || summary.ackFailed > 0 ? 1 : 0;
}

function isoMinute(ms: number | undefined): string {
  return ms === undefined ? '-' : `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')}Z`;
}

function renderTable(header: string[], rows: string[][], rightAligned: ReadonlySet<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...rows.slice(0, -1).map(line), rule, line(rows[rows.length - 1] ?? [])].join('\n');
}

/** The table printed at the end of a run (plain text, fixed-width columns). */
export function formatSummary(summary: ReplaySummary): string {
  const t = summary.totals;
  const out: string[] = [];
  const verb = summary.mode === 'topic' ? 'republished' : 'inserted';
  const title =
    summary.mode === 'dry-run'
      ? `Dry run of ${summary.subscription}: nothing was changed.`
      : `Replay of ${summary.subscription} ${summary.interrupted ? 'interrupted' : 'finished'} in ${(summary.durationMs / 1000).toFixed(1)} s.`;
  out.push(title, '');
  if (summary.mode === 'dry-run') {
    const rows = summary.groups.map((g) => [
      g.route,
      g.code,
      String(g.taken),
      String(g.overMaxReplays),
      isoMinute(g.firstFailedAtMs),
      isoMinute(g.lastFailedAtMs),
    ]);
    rows.push(['total', '', String(t.taken), String(t.overMaxReplays), '', '']);
    out.push(renderTable(['route', 'code', 'would replay', 'over max replays', 'first failed', 'last failed'], rows, new Set([2, 3])));
  } else {
    const rows = summary.groups.map((g) => [
      g.route,
      g.code,
      String(g.taken),
      String(g.replayed),
      String(g.failedAgain),
      String(g.notSettled),
      String(g.overMaxReplays),
    ]);
    rows.push(['total', '', String(t.taken), String(t.replayed), String(t.failedAgain), String(t.notSettled), String(t.overMaxReplays)]);
    out.push(renderTable(['route', 'code', 'taken', verb, 'failed again', 'not settled', 'over max replays'], rows, new Set([2, 3, 4, 5, 6])));
  }
  const notes: string[] = [];
  const again = Object.entries(summary.failedAgainByCode);
  if (again.length > 0) notes.push(`Failed again, dead-lettered with: ${again.map(([code, n]) => `${code} ${n}`).join(', ')}.`);
  const skipped = Object.entries(summary.skipped).filter(([, n]) => n > 0);
  if (skipped.length > 0) notes.push(`Not taken, left in the subscription: ${skipped.map(([why, n]) => `${n} ${why}`).join(', ')}.`);
  if (t.overMaxReplays > 0) notes.push(`${t.overMaxReplays} message(s) were replayed --max-replays times already and were left in the subscription.`);
  if (t.notSettled > 0) notes.push(`${t.notSettled} message(s) could not be settled and stay in the subscription.`);
  if (summary.ackFailed > 0) notes.push(`${summary.ackFailed} ack(s) were refused: those dead letters will be delivered again.`);
  if (summary.interrupted) notes.push('Interrupted: what was not taken is still in the subscription.');
  if (notes.length > 0) out.push('', ...notes);
  return `${out.join('\n')}\n`;
}
