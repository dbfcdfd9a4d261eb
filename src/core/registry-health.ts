import type { TributaryError } from '../errors.js';

/** A standing access fault is logged loudly once per this period, not once per message. */
export const REGISTRY_FAULT_REPORT_INTERVAL_MS = 60_000;

export type RegistryHealthState =
  | { readonly healthy: true }
  | {
      readonly healthy: false;
      readonly code: TributaryError['code'];
      readonly reason: string;
      /** Since the first failure of this fault, by the clock the tracker was given. */
      readonly failingForSeconds: number;
    };

/**
 * Whether the schema registry lets the worker read schemas at all. Only REGISTRY_ACCESS_DENIED
 * counts: it is the worker's configuration, not a message, that is wrong, so readiness fails until
 * a schema read succeeds again. A registry that is merely down is not a readiness matter: every
 * replica would go unready at once for a fault that retries already absorb.
 */
export class RegistryHealth {
  private fault: { error: TributaryError; since: number } | undefined;
  private lastReportAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly now: () => number,
    private readonly reportIntervalMs: number = REGISTRY_FAULT_REPORT_INTERVAL_MS,
  ) {}

  /** Records a failed read; true when this one should be reported loudly (the first of its period). */
  failed(error: TributaryError): boolean {
    if (error.code !== 'REGISTRY_ACCESS_DENIED') return false;
    const at = this.now();
    this.fault = { error, since: this.fault?.since ?? at };
    if (at - this.lastReportAt < this.reportIntervalMs) return false;
    this.lastReportAt = at;
    return true;
  }

  /** Records a successful read; true when it ends a fault. */
  succeeded(): boolean {
    if (this.fault === undefined) return false;
    this.fault = undefined;
    // The next fault is news again: it is reported at once.
    this.lastReportAt = Number.NEGATIVE_INFINITY;
    return true;
  }

  state(): RegistryHealthState {
    if (this.fault === undefined) return { healthy: true };
    return {
      healthy: false,
      code: this.fault.error.code,
      reason: this.fault.error.message,
      failingForSeconds: Math.round((this.now() - this.fault.since) / 1000),
    };
  }
}
