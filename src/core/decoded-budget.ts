import type { Envelope } from './ports.js';

/**
 * Bounds what decoded rows hold in memory. Flow control counts the bytes Pub/Sub delivered, but a
 * decoded row is many times its payload (a 1.5 MB array of booleans held 36 MB of heap), so a
 * window of large messages can exhaust the heap. Messages are charged their prepared size when
 * they enter a route and released when they are settled; while the budget is spent, new messages
 * wait undecoded, and since they still count in the flow-control window, pulling stops. Nothing is
 * dropped: the budget slows intake, it never refuses.
 */
export class DecodedBudget {
  private held = 0;
  private readonly charged = new WeakMap<Envelope, number>();

  constructor(
    readonly limitBytes: number,
    /** Called when the budget has room again after being spent. */
    private readonly freed: () => void,
  ) {}

  get bytes(): number {
    return this.held;
  }

  get spent(): boolean {
    return this.held >= this.limitBytes;
  }

  charge(envelope: Envelope, bytes: number): void {
    this.charged.set(envelope, (this.charged.get(envelope) ?? 0) + bytes);
    this.held += bytes;
  }

  release(envelope: Envelope): void {
    const bytes = this.charged.get(envelope);
    if (bytes === undefined) return;
    this.charged.delete(envelope);
    const wasSpent = this.spent;
    this.held -= bytes;
    if (wasSpent && !this.spent) this.freed();
  }
}
