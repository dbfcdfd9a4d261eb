import type { PubSub, Topic } from '@google-cloud/pubsub';
import type { TributaryError } from '../errors.js';
import { deadLetterMessage } from '../core/dead-letter-attributes.js';
import type { DeadLetterContext, DeadLetterPublisher, Envelope } from '../core/ports.js';
import { withTimeout } from './with-timeout.js';

const PUBLISH_TIMEOUT_MS = 60_000;

/** Publishes the original bytes with the reason; the promise resolves once Pub/Sub confirmed. */
export class PubSubDeadLetterPublisher implements DeadLetterPublisher {
  private readonly topic: Topic;

  constructor(pubsub: PubSub, topicPath: string) {
    this.topic = pubsub.topic(topicPath, { batching: { maxMessages: 100, maxMilliseconds: 20 } });
  }

  /**
   * The client retries a publish for up to 10 minutes by itself; the settler owns retries, so one
   * attempt is cut at PUBLISH_TIMEOUT_MS to keep a message's worst-case settle time bounded. A
   * publish that lands after the cut leaves a duplicate dead letter, never a lost one.
   */
  async publish(envelope: Envelope, error: TributaryError, context: DeadLetterContext): Promise<void> {
    await withTimeout(
      this.topic.publishMessage(deadLetterMessage(envelope, error, context, Date.now())),
      PUBLISH_TIMEOUT_MS,
      () => new Error(`dead-letter publish not confirmed within ${PUBLISH_TIMEOUT_MS} ms`),
    );
  }

  async exists(): Promise<boolean> {
    const [exists] = await this.topic.exists();
    return exists;
  }

  async close(): Promise<void> {
    await this.topic.flush();
  }
}
