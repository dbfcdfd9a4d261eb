import { Duration, type Message, type PubSub, type Subscription } from '@google-cloud/pubsub';
import type { Envelope, Logger } from '../core/ports.js';
import type { PipelineObserver } from '../core/observer.js';
import { detectFraming } from '../core/schema-reference.js';
import type { InFlightSnapshot } from '../ops/metrics.js';

/** How long close() waits for the last acks and nacks to reach Pub/Sub. */
const CLOSE_FLUSH_TIMEOUT_MS = 10_000;
/** A reopened stream that stays open this long is healthy again. */
const HEALTHY_AFTER_MS = 10_000;

/** gRPC status names of the codes a streaming pull ends with. */
const GRPC_STATUS: Readonly<Record<number, string>> = {
  1: 'CANCELLED',
  2: 'UNKNOWN',
  3: 'INVALID_ARGUMENT',
  4: 'DEADLINE_EXCEEDED',
  5: 'NOT_FOUND',
  7: 'PERMISSION_DENIED',
  8: 'RESOURCE_EXHAUSTED',
  9: 'FAILED_PRECONDITION',
  10: 'ABORTED',
  13: 'INTERNAL',
  14: 'UNAVAILABLE',
  16: 'UNAUTHENTICATED',
};

export interface PubSubSourceOptions {
  subscription: string;
  maxMessages: number;
  maxBytes: number;
  /** How long a stream that closed for good is reopened before the source gives up. */
  reopenWindowMs?: number;
}

/** A subscription whose stream closed and could not be reopened within the window. */
export interface SourceLost {
  subscription: string;
  /** The gRPC status the stream ended with, e.g. NOT_FOUND (subscription deleted), PERMISSION_DENIED. */
  status: string;
  message: string;
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
  private closing = false;
  private lastStatus = 'UNKNOWN';
  /** Since when the stream is closed without close() having been called; undefined while it works. */
  private lostSince: number | undefined;
  private reopenAttempts = 0;
  private reopenTimer: NodeJS.Timeout | undefined;
  private healthyTimer: NodeJS.Timeout | undefined;
  private gaveUp = false;

  constructor(
    private readonly pubsub: PubSub,
    private readonly options: PubSubSourceOptions,
    private readonly onMessage: (envelope: Envelope) => void,
    private readonly observer: PipelineObserver,
    private readonly logger: Logger,
    /** Called once when the stream stays closed beyond the reopen window: the worker must exit. */
    private readonly onLost: (lost: SourceLost) => void = () => undefined,
  ) {}

  /** Liveness: false from the moment the stream closed for good until it works again. */
  get live(): boolean {
    return this.lostSince === undefined;
  }

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
      this.logger.warn(
        { subscription: this.options.subscription },
        'Cannot read the subscription (no pubsub.subscriptions.get); dead letters will not name the source topic.',
      );
    }
    subscription.on('message', (message: Message) => this.receive(message));
    subscription.on('error', (err: Error) => {
      this.lastError = err.message;
      const code = (err as { code?: unknown }).code;
      this.lastStatus = typeof code === 'number' ? (GRPC_STATUS[code] ?? String(code)) : 'UNKNOWN';
      this.logger.error({ subscription: this.options.subscription, status: this.lastStatus, err: err.message }, 'Subscription stream error.');
    });
    subscription.on('close', () => {
      this.open = false;
      // The client retries only a few statuses by itself; any other one (subscription deleted,
      // consume permission revoked) ends the stream for good and nacks what it held.
      if (!this.closing) this.streamLost();
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
    this.closing = true;
    clearTimeout(this.reopenTimer);
    clearTimeout(this.healthyTimer);
    this.open = false;
    for (const message of this.held ?? []) message.nack();
    this.held = [];
    await subscription.close();
  }

  /**
   * Reopens with backoff (1 s, 2 s, 4 s, … up to 15 s) for a bounded time; a stream that then stays
   * open for a while is healthy again. Past the window the worker is told to stop: a pod that
   * looks alive and never consumes is the worst outcome.
   */
  private streamLost(): void {
    clearTimeout(this.healthyTimer);
    const now = Date.now();
    this.lostSince ??= now;
    const window = this.options.reopenWindowMs ?? 45_000;
    if (now - this.lostSince >= window) {
      if (!this.gaveUp) {
        this.gaveUp = true;
        this.onLost({ subscription: this.options.subscription, status: this.lastStatus, message: this.lastError ?? 'the stream closed' });
      }
      return;
    }
    const delay = Math.min(15_000, 1000 * 2 ** this.reopenAttempts, Math.max(0, window - (now - this.lostSince)));
    this.reopenAttempts++;
    this.logger.warn({ subscription: this.options.subscription, status: this.lastStatus, reopenInMs: delay }, 'Subscription stream closed; reopening.');
    this.reopenTimer = setTimeout(() => {
      if (this.closing || this.subscription === undefined) return;
      this.subscription.open();
      this.open = true;
      this.healthyTimer = setTimeout(() => {
        if (!this.open) return;
        this.lostSince = undefined;
        this.reopenAttempts = 0;
        this.logger.info({ subscription: this.options.subscription }, 'Subscription stream reopened and healthy.');
      }, HEALTHY_AFTER_MS);
      // A stream that fails again at once emits close: streamLost() runs again.
    }, delay);
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

  nack(redeliverAfterMs?: number): void {
    if (this.settled) return;
    this.settled = true;
    this.source.release(this);
    if (redeliverAfterMs === undefined || redeliverAfterMs < 1000 || !nackAfter(this.message, Math.min(600, Math.round(redeliverAfterMs / 1000))))
      this.message.nack();
  }
}

/**
 * A nack that Pub/Sub honours only after `seconds`: the ack deadline is set to the delay and the
 * client stops leasing the message, which frees its flow-control slot at once. The client has no
 * public call for it (its own nack is the same with 0 seconds), so where its internals differ the
 * caller falls back to a plain nack.
 */
function nackAfter(message: Message, seconds: number): boolean {
  const internals = message as unknown as {
    _handled?: boolean;
    _subscriber?: { modAck?: (m: Message, deadline: number) => Promise<void>; _inventory?: { remove?: (m: Message) => void } };
  };
  const subscriber = internals._subscriber;
  const inventory = subscriber?._inventory;
  if (internals._handled !== false || typeof subscriber?.modAck !== 'function' || typeof inventory?.remove !== 'function') return false;
  internals._handled = true;
  subscriber.modAck(message, seconds).catch(() => undefined);
  inventory.remove(message);
  return true;
}
