import type { Clock } from '../ports.js';

/** The first pacing gap once a single request in flight is still throttled. */
const MIN_PACING_MS = 20;
/** Pacing never waits longer than this between two request starts. */
const MAX_PACING_MS = 5_000;
/**
 * Additive increase of the paced request rate, in requests per second gained per second of
 * successes: each success adds RATE_STEP / rate, and `rate` successes take about a second. Gentle,
 * so that the rate spends most of its time below the quota rather than probing above it.
 */
const RATE_STEP = 0.5;

/**
 * Adaptive concurrency of one route (AIMD): throttling halves the requests in flight, and once a
 * single request is still throttled, request starts are spaced apart; successes win both back
 * slowly. Retrying at full speed into a quota is what this avoids.
 */
export class ConcurrencyController {
  private concurrency: number;
  private pacing = 0;
  private nextStartAt = 0;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;
  private latency = 0;

  constructor(
    private readonly max: number,
    private readonly clock: Clock,
  ) {
    this.concurrency = max;
  }

  /** Requests that may be in flight now. */
  get limit(): number {
    return Math.floor(this.concurrency);
  }

  /** Minimum gap between request starts; 0 when requests are not paced. */
  get pacingMs(): number {
    return this.pacing;
  }

  /**
   * One decrease per round trip: requests sent before the last decrease were sent at the old rate,
   * and their rejections must not cut the rate again.
   */
  throttled(requestStartedAt: number): void {
    if (requestStartedAt < this.lastDecreaseAt) return;
    this.lastDecreaseAt = this.clock.now();
    if (this.concurrency > 1) {
      this.concurrency = Math.max(1, this.concurrency / 2);
    } else {
      this.pacing = Math.min(MAX_PACING_MS, Math.max(MIN_PACING_MS, this.pacing * 2));
    }
  }

  /** Additive increase: the paced rate first, then one more request in flight per window of successes. */
  succeeded(): void {
    if (this.pacing > 0) {
      const rate = 1000 / this.pacing;
      const gap = 1000 / (rate + RATE_STEP / rate);
      this.pacing = gap < MIN_PACING_MS ? 0 : gap;
      return;
    }
    if (this.concurrency < this.max) this.concurrency = Math.min(this.max, this.concurrency + 1 / this.concurrency);
  }

  /** Remembers how long a request took (a moving average): how busy the destination is. */
  observeLatency(ms: number): void {
    this.latency = this.latency === 0 ? ms : this.latency * 0.8 + ms * 0.2;
  }

  /** The recent request duration, in ms (0 before the first answer). */
  get latencyMs(): number {
    return this.latency;
  }

  /** Takes the next request start: how long to wait for it (0 when not paced). */
  reserveStart(): number {
    if (this.pacing <= 0) return 0;
    const now = this.clock.now();
    const at = Math.max(now, this.nextStartAt);
    this.nextStartAt = at + this.pacing;
    return at - now;
  }
}
