import type { PubSub, Topic } from '@google-cloud/pubsub';
import type { TributaryError } from '../errors.js';
import { deadLetterMessage } from '../core/dead-letter-attributes.js';
import type { DeadLetterContext, DeadLetterPublisher, Envelope } from '../core/ports.js';

/** Publishes the original bytes with the reason; the promise resolves once Pub/Sub confirmed. */
export class PubSubDeadLetterPublisher implements DeadLetterPublisher {
  private readonly topic: Topic;

  constructor(pubsub: PubSub, topicPath: string) {
    this.topic = pubsub.topic(topicPath, { batching: { maxMessages: 100, maxMilliseconds: 20 } });
  }

  async publish(envelope: Envelope, error: TributaryError, context: DeadLetterContext): Promise<void> {
    await this.topic.publishMessage(deadLetterMessage(envelope, error, context, Date.now()));
  }

  async exists(): Promise<boolean> {
    const [exists] = await this.topic.exists();
    return exists;
  }

  async close(): Promise<void> {
    await this.topic.flush();
  }
}
