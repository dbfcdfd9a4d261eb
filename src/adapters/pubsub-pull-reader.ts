import { v1, type PubSub } from '@google-cloud/pubsub';
import type { DeadLetterMessage } from '../replay/dead-letter-message.js';

export interface PullReaderOptions {
  /** Full subscription path. */
  subscription: string;
  /** Lease given to every pulled message, renewed until it is acked or released. */
  leaseSeconds?: number;
}

/** Acks are sent in batches: at most this many ids per request (the request limit is 512 KB). */
const MAX_IDS_PER_REQUEST = 1000;
const ACK_FLUSH_MS = 50;
/** gRPC DEADLINE_EXCEEDED: a long-poll pull that found nothing in time. */
const DEADLINE_EXCEEDED = 4;
const NOT_FOUND = 5;

export class SubscriptionNotFoundError extends Error {}

interface PendingAck {
  ackId: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Synchronous pull with explicit leases, for the dead-letter replay. Streaming pull does not fit:
 * a message the replay does not take (filtered, over the replay limit, failed again) must stay
 * out of its way until the run ends, and with streaming flow control such messages would fill the
 * window. Here every pulled message stays leased (renewed) until it is acked or released, and
 * `releaseAll()` hands what was not acked back to the subscription at once.
 */
export class PubSubPullReader {
  private client: v1.SubscriberClient | undefined;
  private readonly leased = new Set<string>();
  private ackQueue: PendingAck[] = [];
  private ackTimer: NodeJS.Timeout | undefined;
  private readonly acksInFlight = new Set<Promise<void>>();
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly leaseSeconds: number;

  constructor(
    private readonly pubsub: PubSub,
    private readonly options: PullReaderOptions,
  ) {
    this.leaseSeconds = options.leaseSeconds ?? 120;
  }

  get name(): string {
    return this.options.subscription;
  }

  /** Messages pulled and neither acked nor released. */
  get leasedCount(): number {
    return this.leased.size;
  }

  async open(): Promise<void> {
    const config = await this.pubsub.getClientConfig();
    // ClientConfig types `port` as string | number; the GAPIC client wants a number. Built from the
    // PubSub client's config so the emulator's insecure channel carries over.
    this.client = new v1.SubscriberClient({ ...config, port: config.port === undefined ? undefined : Number(config.port) });
    try {
      await this.client.getSubscription({ subscription: this.options.subscription });
    } catch (err) {
      if ((err as { code?: number }).code === NOT_FOUND) throw new SubscriptionNotFoundError(`subscription ${this.options.subscription} does not exist`);
      throw err;
    }
    const every = Math.max(1000, (this.leaseSeconds * 1000) / 3);
    this.renewTimer = setInterval(() => void this.renew(), every);
    this.renewTimer.unref();
  }

  /**
   * Up to `max` messages; waits at most about `waitMs` for the first one. Every message returned
   * is leased for `leaseSeconds` and renewed until acked or released.
   */
  async pull(max: number, waitMs: number): Promise<DeadLetterMessage[]> {
    const client = this.requireClient();
    let response;
    try {
      [response] = await client.pull({ subscription: this.options.subscription, maxMessages: max }, { timeout: Math.max(100, waitMs) });
    } catch (err) {
      if ((err as { code?: number }).code === DEADLINE_EXCEEDED) return [];
      throw err;
    }
    const out: DeadLetterMessage[] = [];
    for (const { ackId, message, deliveryAttempt } of response.receivedMessages ?? []) {
      if (!ackId || !message) continue;
      this.leased.add(ackId);
      const data = message.data;
      const seconds = message.publishTime?.seconds;
      out.push({
        ackId,
        messageId: message.messageId ?? '',
        data: typeof data === 'string' ? Buffer.from(data, 'base64') : Buffer.from(data ?? new Uint8Array()),
        attributes: { ...(message.attributes ?? {}) },
        publishTimeMs: seconds === undefined || seconds === null ? 0 : Number(seconds.toString()) * 1000 + Math.floor((message.publishTime?.nanos ?? 0) / 1e6),
        deliveryAttempt: deliveryAttempt ?? 0,
      });
    }
    // The subscription's own ack deadline may be 10 s: lengthen at once, before any work starts.
    if (out.length > 0)
      await this.modify(
        out.map((m) => m.ackId),
        this.leaseSeconds,
      );
    return out;
  }

  /** Resolves once Pub/Sub confirmed the ack; rejects if it refused it. */
  ack(ackId: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.ackQueue.push({ ackId, resolve, reject });
      if (this.ackQueue.length >= MAX_IDS_PER_REQUEST) this.flushAcks();
      else this.ackTimer ??= setTimeout(() => this.flushAcks(), ACK_FLUSH_MS);
    });
  }

  /** Waits for every ack asked for so far. */
  async settleAcks(): Promise<void> {
    this.flushAcks();
    while (this.acksInFlight.size > 0) await Promise.allSettled([...this.acksInFlight]);
  }

  /** Hands every message still leased back to the subscription for immediate redelivery. */
  async releaseAll(): Promise<number> {
    await this.settleAcks();
    const ids = [...this.leased];
    this.leased.clear();
    await this.modify(ids, 0);
    return ids.length;
  }

  async close(): Promise<void> {
    if (this.renewTimer !== undefined) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    await this.client?.close();
    this.client = undefined;
  }

  private flushAcks(): void {
    if (this.ackTimer !== undefined) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    while (this.ackQueue.length > 0) {
      const batch = this.ackQueue.splice(0, MAX_IDS_PER_REQUEST);
      const sending = this.requireClient()
        .acknowledge({ subscription: this.options.subscription, ackIds: batch.map((a) => a.ackId) })
        .then(
          () => {
            for (const a of batch) {
              this.leased.delete(a.ackId);
              a.resolve();
            }
          },
          (err: unknown) => {
            const error = err instanceof Error ? err : new Error(String(err));
            for (const a of batch) a.reject(error);
          },
        );
      this.acksInFlight.add(sending);
      void sending.finally(() => this.acksInFlight.delete(sending));
    }
  }

  private async renew(): Promise<void> {
    // A failed renewal only shortens a lease: the message comes back to the subscription, never lost.
    await this.modify([...this.leased], this.leaseSeconds).catch(() => undefined);
  }

  private async modify(ackIds: string[], ackDeadlineSeconds: number): Promise<void> {
    const client = this.requireClient();
    for (let i = 0; i < ackIds.length; i += MAX_IDS_PER_REQUEST) {
      await client.modifyAckDeadline({ subscription: this.options.subscription, ackIds: ackIds.slice(i, i + MAX_IDS_PER_REQUEST), ackDeadlineSeconds });
    }
  }

  private requireClient(): v1.SubscriberClient {
    if (this.client === undefined) throw new Error('PubSubPullReader used before open()');
    return this.client;
  }
}
