import { Duration, type Message, type PubSub, type Subscription } from '@google-cloud/pubsub';
import type { Envelope, Logger } from '../core/ports.js';
import type { PipelineObserver } from '../core/observer.js';
import { detectFraming } from '../core/schema-reference.js';
import type { InFlightSnapshot } from '../ops/metrics.js';

/** How long close() waits for the last acks and nacks to reach Pub/Sub. */
const CLOSE_FLUSH_TIMEOUT_MS = 10_000;

export interface PubSubSourceOptions {
  subscription: string;
  maxMessages: number;
  maxBytes: number;
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
  /** Messages handed to the pipeline and not settled yet. */
  private readonly inFlight = new Set<PubSubEnvelope>();
  private inFlightBytes = 0;
  /** Set by pause(): messages that arrive are kept here, unprocessed, until close() nacks them. */
  private held: Message[] | undefined;

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
      // close() comes after the drain (see pause()): whatever the client still holds then is either
      // held back by flow control or given up by the drain deadline, so it is nacked at once, and
      // the acks of the drain are flushed before close() resolves. Waiting ('WAIT') instead would
      // wait for messages the client never hands out once closed: the full timeout at any backlog.
      closeOptions: { behavior: 'NACK', timeout: Duration.from({ milliseconds: CLOSE_FLUSH_TIMEOUT_MS }) },
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

  /**
   * Stops handing messages on. The stream stays open so that the acks of the drain still reach
   * Pub/Sub; what arrives meanwhile is held, not processed (it holds flow-control slots, so little
   * does), and nacked by close().
   */
  pause(): void {
    this.held ??= [];
  }

  /** Nacks what pause() held and everything the client still leases, flushes acks, closes the stream. */
  async close(): Promise<void> {
    const subscription = this.subscription;
    if (!subscription) return;
    this.open = false;
    for (const message of this.held ?? []) message.nack();
    this.held = [];
    await subscription.close();
  }

  private receive(message: Message): void {
    if (this.held !== undefined) {
      this.held.push(message);
      return;
    }
    const size = message.data.length;
    this.observer.received(this.options.subscription, 1, size, detectFraming(message.attributes, message.data));
    const envelope = new PubSubEnvelope(message, this.options.subscription, this.topic, this);
    this.inFlight.add(envelope);
    this.inFlightBytes += size;
    this.onMessage(envelope);
  }

  /** Called once per envelope when it is settled. */
  release(envelope: PubSubEnvelope): void {
    if (this.inFlight.delete(envelope)) this.inFlightBytes -= envelope.data.length;
  }
}

/**
 * A message as the core sees it. A class rather than an object literal with two closures: one
 * allocation per message instead of three.
 */
class PubSubEnvelope implements Envelope {
  readonly id: string;
  readonly data: Buffer;
  readonly attributes: Readonly<Record<string, string>>;
  readonly publishTimeMs: number;
  readonly deliveryAttempt: number;
  readonly receivedAtMs: number;
  private settled = false;

  constructor(
    private readonly message: Message,
    readonly subscription: string,
    readonly topic: string | undefined,
    private readonly source: PubSubSource,
  ) {
    this.id = message.id;
    this.data = message.data;
    this.attributes = message.attributes ?? {};
    this.publishTimeMs = message.publishTime.getTime();
    this.deliveryAttempt = message.deliveryAttempt ?? 0;
    this.receivedAtMs = Date.now();
  }

  // Settled exactly once: a late insert result after a shutdown nack must not also ack.
  ack(): void {
    if (this.settled) return;
    this.settled = true;
    this.source.release(this);
    this.message.ack();
  }

  nack(): void {
    if (this.settled) return;
    this.settled = true;
    this.source.release(this);
    this.message.nack();
  }
}
