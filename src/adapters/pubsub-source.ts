import { Duration, type Message, type PubSub, type Subscription } from '@google-cloud/pubsub';
import type { Envelope, Logger } from '../core/ports.js';
import type { PipelineObserver } from '../core/observer.js';
import type { InFlightSnapshot } from '../ops/metrics.js';

export interface PubSubSourceOptions {
  subscription: string;
  maxMessages: number;
  maxBytes: number;
  /** How long close() keeps leases alive while in-flight messages are settled. */
  drainTimeoutMs: number;
}

/**
 * Streaming pull from one subscription, with flow control that bounds memory:
 * `allowExcessMessages: false`, otherwise each of the client's streams may exceed the limits.
 */
export class PubSubSource {
  private subscription: Subscription | undefined;
  private topic: string | undefined;
  private lastError: string | undefined;
  private open = false;
  /** Messages handed to the pipeline and not settled yet, in arrival order. */
  private readonly inFlight = new Set<Envelope>();
  private inFlightBytes = 0;

  constructor(
    private readonly pubsub: PubSub,
    private readonly options: PubSubSourceOptions,
    private readonly onMessage: (envelope: Envelope) => void,
    private readonly observer: PipelineObserver,
    private readonly logger: Logger,
  ) {}

  get name(): string {
    return this.options.subscription;
  }

  get isOpen(): boolean {
    return this.open;
  }

  get error(): string | undefined {
    return this.lastError;
  }

  /** For the in-flight metrics; walks the held messages (bounded by flow control) at scrape time. */
  inFlightSnapshot(): InFlightSnapshot {
    let oldest: number | undefined;
    for (const envelope of this.inFlight) if (oldest === undefined || envelope.publishTimeMs < oldest) oldest = envelope.publishTimeMs;
    return { subscription: this.options.subscription, messages: this.inFlight.size, bytes: this.inFlightBytes, oldestPublishTimeMs: oldest };
  }

  async start(): Promise<void> {
    const subscription = this.pubsub.subscription(this.options.subscription, {
      flowControl: { maxMessages: this.options.maxMessages, maxBytes: this.options.maxBytes, allowExcessMessages: false },
      // close() stops the stream at once and keeps leasing until every message is settled, so
      // acks sent during the drain reach Pub/Sub; after the timeout what is left is nacked.
      closeOptions: { behavior: 'WAIT', timeout: Duration.from({ milliseconds: this.options.drainTimeoutMs + 5000 }) },
    });
    try {
      const [metadata] = await subscription.getMetadata();
      this.topic = typeof metadata.topic === 'string' ? metadata.topic : undefined;
    } catch (err) {
      // roles/pubsub.subscriber can pull but not read the subscription: the topic is only a
      // detail of dead letters, not a reason to refuse to run. Any other error stops the start.
      if ((err as { code?: number }).code !== 7) throw err;
      this.logger.warn({ subscription: this.options.subscription }, 'Cannot read the subscription (no pubsub.subscriptions.get); dead letters will not name the source topic.');
    }
    subscription.on('message', (message: Message) => this.receive(message));
    subscription.on('error', (err: Error) => {
      this.lastError = err.message;
      this.logger.error({ subscription: this.options.subscription, err: err.message }, 'Subscription stream error.');
    });
    subscription.on('close', () => {
      this.open = false;
    });
    this.subscription = subscription;
    this.open = true;
  }

  /** Stops pulling now; resolves when every message handed out is settled (or the timeout). */
  async close(): Promise<void> {
    const subscription = this.subscription;
    if (!subscription) return;
    this.open = false;
    await subscription.close();
  }

  private receive(message: Message): void {
    const size = message.data.length;
    this.observer.received(this.options.subscription, 1, size);
    let settled = false;
    const envelope: Envelope = {
      id: message.id,
      data: message.data,
      attributes: message.attributes ?? {},
      publishTimeMs: message.publishTime.getTime(),
      subscription: this.options.subscription,
      topic: this.topic,
      deliveryAttempt: message.deliveryAttempt ?? 0,
      receivedAtMs: Date.now(),
      // Settled exactly once: a late insert result after a shutdown nack must not also ack.
      ack: () => {
        if (settled) return;
        settled = true;
        this.release(envelope, size);
        message.ack();
      },
      nack: () => {
        if (settled) return;
        settled = true;
        this.release(envelope, size);
        message.nack();
      },
    };
    this.inFlight.add(envelope);
    this.inFlightBytes += size;
    this.onMessage(envelope);
  }

  private release(envelope: Envelope, size: number): void {
    if (this.inFlight.delete(envelope)) this.inFlightBytes -= size;
  }
}
