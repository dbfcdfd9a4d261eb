import { Writable } from 'node:stream';
import type { Logger } from '../core/ports.js';
import type { ReplayStats } from './replay-stats.js';

/** Shows how a replay is going: a redrawn line on a terminal, a log line now and then otherwise. */
export interface ProgressReporter {
  start(): void;
  stop(): void;
}

export interface ProgressOptions {
  stats: ReplayStats;
  /** Messages the run will take at most (`--max`), for the bar and the ETA. */
  total: number | undefined;
  now?: () => number;
}

/** Rate over the last few seconds, so a slow start or a pause does not skew it for long. */
class RateWindow {
  private samples: Array<[number, number]> = [];

  constructor(private readonly windowMs: number) {}

  add(at: number, count: number): number {
    this.samples.push([at, count]);
    while (this.samples.length > 2 && (this.samples[1] as [number, number])[0] <= at - this.windowMs) this.samples.shift();
    const [firstAt, firstCount] = this.samples[0] as [number, number];
    return at > firstAt ? ((count - firstCount) * 1000) / (at - firstAt) : 0;
  }
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export interface ProgressFigures {
  processed: number;
  replayed: number;
  failedAgain: number;
  ratePerSecond: number;
  /** Seconds left, when the total is known and the rate is not zero. */
  etaSeconds: number | undefined;
}

export function progressFigures(stats: ReplayStats, total: number | undefined, ratePerSecond: number): ProgressFigures {
  const processed = stats.settled;
  const eta = total !== undefined && ratePerSecond > 0 ? Math.max(0, total - processed) / ratePerSecond : undefined;
  return { processed, replayed: stats.replayed, failedAgain: stats.failedAgain, ratePerSecond, etaSeconds: eta };
}

/** One line: `[#####-----] 50/100 processed, 48 inserted, 2 failed again, 12.5/s, ETA 4s`. */
export function formatProgressLine(f: ProgressFigures, total: number | undefined, verb: string, width: number): string {
  const parts = [
    `${f.processed}${total !== undefined ? `/${total}` : ''} processed`,
    `${f.replayed} ${verb}`,
    `${f.failedAgain} failed again`,
    `${f.ratePerSecond.toFixed(1)}/s`,
    `ETA ${f.etaSeconds === undefined ? '?' : formatDuration(f.etaSeconds)}`,
  ];
  const text = parts.join(', ');
  let bar = '';
  if (total !== undefined && total > 0) {
    const cells = 20;
    const done = Math.min(cells, Math.floor((f.processed / total) * cells));
    bar = `[${'#'.repeat(done)}${'-'.repeat(cells - done)}] `;
  }
  const line = bar + text;
  return line.length > width ? line.slice(0, Math.max(0, width - 1)) : line;
}

const TTY_REDRAW_MS = 200;
const LOG_EVERY_MS = 5000;
const CLEAR_LINE = '\r\x1b[2K';

/** Redraws one line on stderr; log lines written meanwhile clear it first and it is drawn again. */
export class TerminalProgress implements ProgressReporter {
  private timer: NodeJS.Timeout | undefined;
  private drawn = false;
  private readonly rate = new RateWindow(5000);
  private readonly now: () => number;

  constructor(
    private readonly options: ProgressOptions,
    private readonly verb: string,
    private readonly terminal: NodeJS.WriteStream = process.stderr,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** A log destination that keeps the progress line below the log lines instead of torn by them. */
  logDestination(out: NodeJS.WritableStream = process.stdout): NodeJS.WritableStream {
    return new Writable({
      write: (chunk: Buffer | string, _encoding, callback) => {
        const redraw = this.drawn;
        this.clear();
        out.write(chunk);
        if (redraw) this.draw();
        callback();
      },
    });
  }

  start(): void {
    this.draw();
    this.timer = setInterval(() => this.draw(), TTY_REDRAW_MS);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  private draw(): void {
    const { stats, total } = this.options;
    const figures = progressFigures(stats, total, this.rate.add(this.now(), stats.settled));
    this.terminal.write(CLEAR_LINE + formatProgressLine(figures, total, this.verb, this.terminal.columns || 100));
    this.drawn = true;
  }

  private clear(): void {
    if (!this.drawn) return;
    this.terminal.write(CLEAR_LINE);
    this.drawn = false;
  }
}

/** Not a terminal: a log line every few seconds while there is something to say. */
export class LogProgress implements ProgressReporter {
  private timer: NodeJS.Timeout | undefined;
  private readonly rate = new RateWindow(LOG_EVERY_MS * 2);
  private readonly now: () => number;
  private lastSettled = -1;

  constructor(
    private readonly options: ProgressOptions,
    private readonly logger: Logger,
  ) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.rate.add(this.now(), 0);
    this.timer = setInterval(() => this.log(), LOG_EVERY_MS);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private log(): void {
    const { stats, total } = this.options;
    const rate = this.rate.add(this.now(), stats.settled);
    if (stats.settled === this.lastSettled) return;
    this.lastSettled = stats.settled;
    const f = progressFigures(stats, total, rate);
    this.logger.info(
      {
        processed: f.processed,
        replayed: f.replayed,
        failedAgain: f.failedAgain,
        ratePerSecond: Math.round(f.ratePerSecond * 10) / 10,
        ...(total !== undefined ? { total } : {}),
        ...(f.etaSeconds !== undefined ? { etaSeconds: Math.round(f.etaSeconds) } : {}),
      },
      'Replay progress.',
    );
  }
}
