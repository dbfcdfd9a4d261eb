import type { Clock, Timer } from '../../src/core/ports.js';

interface Scheduled {
  at: number;
  seq: number;
  callback: () => void;
  cancelled: boolean;
}

/**
 * A clock the test moves by hand: timers and sleeps fire only inside `advance`, in time order,
 * with pending promise callbacks run between them, so a test asserts on events instead of sleeping.
 */
export class ManualClock implements Clock {
  private time: number;
  private seq = 0;
  private scheduled: Scheduled[] = [];

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  now = (): number => this.time;

  setTimer(ms: number, callback: () => void): Timer {
    const entry: Scheduled = { at: this.time + Math.max(0, ms), seq: this.seq++, callback, cancelled: false };
    this.scheduled.push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = this.setTimer(ms, done);
      function done(): void {
        timer.cancel();
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Timers not yet fired nor cancelled. */
  get pendingTimers(): number {
    return this.scheduled.filter((s) => !s.cancelled).length;
  }

  /** When the next timer is due, if any. */
  get nextAt(): number | undefined {
    const live = this.live();
    return live[0]?.at;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, each at its own time. */
  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    await settle();
    for (;;) {
      const next = this.live()[0];
      if (next === undefined || next.at > until) break;
      this.time = Math.max(this.time, next.at);
      next.cancelled = true;
      next.callback();
      await settle();
    }
    this.time = until;
    await settle();
  }

  /** Fires timers one after another until none is left or `limitMs` of clock time has passed. */
  async runAll(limitMs = 3_600_000): Promise<void> {
    const deadline = this.time + limitMs;
    await settle();
    for (let next = this.nextAt; next !== undefined && next <= deadline; next = this.nextAt) {
      await this.advance(next - this.time);
    }
  }

  private live(): Scheduled[] {
    this.scheduled = this.scheduled.filter((s) => !s.cancelled);
    this.scheduled.sort((a, b) => a.at - b.at || a.seq - b.seq);
    return this.scheduled;
  }
}

/** Lets every promise callback that is ready run (several turns, for chains of awaits). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
