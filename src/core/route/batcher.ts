import type { Clock, Timer } from '../ports.js';

export interface BatchLimits {
  maxRows: number;
  /** In the sink's own unit (`PreparedRow.bytes`): a batch never exceeds it unless one row alone does. */
  maxBytes: number;
  maxDelayMs: number;
}

/**
 * Collects rows into batches and hands each one on when it is full (rows or bytes) or old enough.
 * The age timer starts with the first row of a batch, so no row waits longer than `maxDelayMs`.
 */
export class Batcher<T> {
  private items: T[] = [];
  private itemBytes = 0;
  private timer: Timer | undefined;

  constructor(
    private readonly limits: BatchLimits,
    private readonly clock: Clock,
    /** The size of an item in the unit of `maxBytes`. */
    private readonly sizeOf: (item: T) => number,
    private readonly onBatch: (items: T[], bytes: number) => void,
  ) {}

  add(item: T): void {
    const { maxRows, maxBytes, maxDelayMs } = this.limits;
    const bytes = this.sizeOf(item);
    if (this.items.length > 0 && this.itemBytes + bytes > maxBytes) this.cut();
    this.items.push(item);
    this.itemBytes += bytes;
    if (this.items.length >= maxRows || this.itemBytes >= maxBytes) {
      this.cut();
    } else if (this.timer === undefined) {
      this.timer = this.clock.setTimer(maxDelayMs, () => {
        this.timer = undefined;
        this.cut();
      });
    }
  }

  /** Hands on the batch being filled now, if any. */
  cut(): void {
    this.cancelTimer();
    if (this.items.length === 0) return;
    const items = this.items;
    const bytes = this.itemBytes;
    this.items = [];
    this.itemBytes = 0;
    this.onBatch(items, bytes);
  }

  /** Takes the rows being collected without handing them on (they are given back to the source). */
  takeAll(): T[] {
    this.cancelTimer();
    const items = this.items;
    this.items = [];
    this.itemBytes = 0;
    return items;
  }

  get size(): number {
    return this.items.length;
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}
