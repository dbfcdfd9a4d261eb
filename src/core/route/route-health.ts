import type { ErrorCode, TributaryError } from '../../errors.js';
import { actionFor } from '../failure-policy.js';
import type { RouteStateName } from '../observer.js';
import type { Clock, Timer } from '../ports.js';
import { backoffCap, type BackoffPolicy } from '../retry.js';

export interface RouteHealthOptions {
  /** The first probe comes after this (at least 100 ms); each failed probe doubles the wait. */
  initialProbeDelayMs: number;
  /** Upper bound of the wait between probes. */
  probeIntervalMs: number;
}

/** What a probe found: the destination takes writes again, or the error that says it does not. */
export type ProbeResult = { ok: true } | { ok: false; error: TributaryError };

export interface RouteHealthHooks {
  /** One request to the destination; a real write of held rows when there are any. */
  probe(): Promise<ProbeResult>;
  /** The state changed: metrics, logs, and sending what was held after a resume. */
  changed(state: RouteStateName, error: TributaryError | undefined): void;
}

/**
 * Pause, probe, resume. A paused route probes its destination with backoff up to the probe
 * interval. The backoff is kept across a resume that is followed by another pause: only a write
 * that succeeds resets it, so a destination that reads but refuses writes (a viewer role, billing
 * blocking streaming) is probed ever more slowly instead of flapping every few hundred ms.
 */
export class RouteHealth {
  private current: RouteStateName = 'running';
  private pauseError: TributaryError | undefined;
  private since: number;
  private failures = 0;
  private probeTimer: Timer | undefined;
  private probing = false;
  private readonly backoff: BackoffPolicy;

  constructor(
    options: RouteHealthOptions,
    private readonly clock: Clock,
    private readonly hooks: RouteHealthHooks,
  ) {
    this.since = clock.now();
    this.backoff = { initialDelayMs: Math.max(100, options.initialProbeDelayMs), maxDelayMs: options.probeIntervalMs };
  }

  get state(): RouteStateName {
    return this.current;
  }

  get error(): TributaryError | undefined {
    return this.pauseError;
  }

  get stateSince(): number {
    return this.since;
  }

  /** Failed probes and pauses since the last successful write. */
  get failedProbes(): number {
    return this.failures;
  }

  /** Whether batches may be sent now. */
  get sending(): boolean {
    return this.current === 'running' || this.current === 'draining';
  }

  /** The code nacks carry while paused. */
  get pauseCode(): ErrorCode | undefined {
    return this.pauseError?.code;
  }

  pause(error: TributaryError): void {
    if (this.current === 'draining' || this.current === 'stopped') return;
    const wasPaused = this.current === 'paused';
    this.set('paused', error);
    if (!wasPaused) this.failures++;
    this.scheduleProbe();
  }

  /** A write succeeded: the destination works, the next pause starts probing fast again. */
  recovered(): void {
    this.failures = 0;
  }

  draining(): void {
    this.cancelProbe();
    this.set('draining', undefined);
  }

  stopped(): void {
    this.cancelProbe();
    this.set('stopped', undefined);
  }

  /** The wait before the next probe. */
  nextProbeDelay(): number {
    return backoffCap(this.backoff, this.failures);
  }

  private scheduleProbe(): void {
    if (this.probeTimer !== undefined || this.probing) return;
    this.probeTimer = this.clock.setTimer(this.nextProbeDelay(), () => {
      this.probeTimer = undefined;
      void this.probe();
    });
  }

  private cancelProbe(): void {
    this.probeTimer?.cancel();
    this.probeTimer = undefined;
  }

  private async probe(): Promise<void> {
    if (this.current !== 'paused') return;
    this.probing = true;
    let result: ProbeResult;
    try {
      result = await this.hooks.probe();
    } finally {
      this.probing = false;
    }
    if (this.current !== 'paused') return;
    if (result.ok) {
      this.set('running', undefined);
      return;
    }
    this.failures++;
    // A probe that failed for a passing reason keeps the destination error that paused the route.
    this.set('paused', actionFor(result.error) === 'pause' ? result.error : this.pauseError);
    this.scheduleProbe();
  }

  private set(state: RouteStateName, error: TributaryError | undefined): void {
    if (this.current === state && this.pauseError === error) return;
    this.current = state;
    this.pauseError = error;
    this.since = this.clock.now();
    this.hooks.changed(state, error);
  }
}
