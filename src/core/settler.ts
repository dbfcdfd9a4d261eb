import type { ErrorCode, TributaryError } from '../errors.js';
import type { DecodedBudget } from './decoded-budget.js';
import type { PipelineObserver } from './observer.js';
import type { Clock, DeadLetterPublisher, Envelope, Logger, Random } from './ports.js';
import { retry, type RetryPolicy } from './retry.js';

export interface DeadLetterRequest {
  envelope: Envelope;
  error: TributaryError;
  route: string | undefined;
  attempts: number;
  schemaKey: string | undefined;
}

/**
 * The one place messages are settled: ack after an insert, ack after a confirmed dead-letter
 * publish, nack otherwise. Tracks dead-letter publishes still in flight so shutdown can wait.
 */
export class Settler {
  private pendingDeadLetters = 0;
  private settledCount = 0;
  private idleWaiters: Array<() => void> = [];
  /** Told of every settled message, so what its rows held in memory is released. */
  budget: DecodedBudget | undefined;

  constructor(
    private readonly deadLetters: DeadLetterPublisher,
    private readonly observer: PipelineObserver,
    private readonly clock: Clock,
    private readonly logger: Logger,
    /**
     * Publishes that fail are retried before the message is nacked: an unavailable dead-letter topic
     * must not turn every poison message into a redelivery hot loop.
     */
    private readonly publishRetry: RetryPolicy = { maxAttempts: 4, initialDelayMs: 250, maxDelayMs: 5000 },
    private readonly random: Random = Math.random,
  ) {}

  ack(envelopes: readonly Envelope[], route: string): void {
    if (envelopes.length === 0) return;
    this.settledCount += envelopes.length;
    for (const envelope of envelopes) {
      envelope.ack();
      this.budget?.release(envelope);
    }
    this.observer.settled(route, 'acked', undefined, envelopes, this.clock.now());
  }

  nack(envelopes: readonly Envelope[], route: string, code: ErrorCode, redeliverAfterMs?: number): void {
    if (envelopes.length === 0) return;
    this.settledCount += envelopes.length;
    for (const envelope of envelopes) {
      envelope.nack(redeliverAfterMs);
      this.budget?.release(envelope);
    }
    this.observer.settled(route, 'nacked', code, envelopes, this.clock.now());
  }

  /** Publishes to the dead-letter topic, then acks; a failed publish nacks so nothing is lost. */
  async deadLetter(request: DeadLetterRequest): Promise<void> {
    const { envelope, error, route } = request;
    const label = route ?? 'unrouted';
    this.pendingDeadLetters++;
    try {
      await retry(() => this.deadLetters.publish(envelope, error, { route, attempts: request.attempts, schemaKey: request.schemaKey }), {
        policy: this.publishRetry,
        clock: this.clock,
        random: this.random,
      });
      envelope.ack();
      this.observer.settled(label, 'dead-lettered', error.code, [envelope], this.clock.now());
      this.logger.warn({ messageId: envelope.id, route, code: error.code, reason: error.message }, 'Message dead-lettered.');
    } catch (err) {
      envelope.nack();
      this.observer.settled(label, 'nacked', 'DEAD_LETTER_FAILED', [envelope], this.clock.now());
      this.logger.error(
        { messageId: envelope.id, route, code: error.code, err: err instanceof Error ? err.message : String(err) },
        'Dead-letter publish failed; message nacked for redelivery.',
      );
    } finally {
      this.budget?.release(envelope);
      this.settledCount++;
      this.pendingDeadLetters--;
      if (this.pendingDeadLetters === 0) this.wakeIdle();
    }
  }

  /** Messages settled so far, every outcome counted. */
  get settled(): number {
    return this.settledCount;
  }

  get deadLettersInFlight(): number {
    return this.pendingDeadLetters;
  }

  whenIdle(): Promise<void> {
    if (this.pendingDeadLetters === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
