import { PubSub, type Topic } from '@google-cloud/pubsub';
import { PubSubDeadLetterPublisher } from '../adapters/pubsub-dead-letter.js';
import { PubSubPullReader } from '../adapters/pubsub-pull-reader.js';
import { checkDeadLetterTopic, createPipeline, createSinks, drainWithin, oneSink, StartupError, type Pipeline, type SinkSet } from '../app.js';
import { topicPath, type Config } from '../config.js';
import type { ErrorCode, TributaryError } from '../errors.js';
import { systemClock, type Clock, type DeadLetterContext, type DeadLetterPublisher, type Envelope, type Logger } from '../core/ports.js';
import type { Sink } from '../core/sink.js';
import { Metrics } from '../ops/metrics.js';
import {
  judge,
  readDeadLetterInfo,
  replayEnvelopeAttributes,
  republishMessage,
  unwrapped,
  type DeadLetterInfo,
  type DeadLetterMessage,
  type TargetTopic,
} from './dead-letter-message.js';
import type { ReplayOptions } from './replay-options.js';
import { ReplayStats, type ReplayMode, type ReplaySummary } from './replay-stats.js';
import type { ProgressReporter } from './progress-reporter.js';

export interface ReplayDeps {
  logger: Logger;
  /** Aborted on Ctrl-C: stop taking messages, settle what was taken, give the rest back. */
  signal: AbortSignal;
  /** For tests: a sink other than the configured one. */
  sink?: Sink;
  /** Builds the progress display once the stats exist. */
  progress?: (stats: ReplayStats, total: number | undefined) => ProgressReporter;
  clock?: Clock;
}

/** Messages asked for per pull at most. */
const MAX_PULL = 500;
/** Longest single wait for a pull, so the idle timeout and Ctrl-C are noticed in time. */
const MAX_PULL_WAIT_MS = 2000;

/** Records which envelopes were dead-lettered again, and why: their ack then means "failed again". */
class RecordingDeadLetters implements DeadLetterPublisher {
  readonly codes = new WeakMap<Envelope, ErrorCode>();

  constructor(private readonly inner: DeadLetterPublisher) {}

  async publish(envelope: Envelope, error: TributaryError, context: DeadLetterContext): Promise<void> {
    await this.inner.publish(envelope, error, context);
    this.codes.set(envelope, error.code);
  }
}

/** Spaces message starts to at most `perSecond`; a burst of one second's worth is allowed. */
class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock,
  ) {
    this.tokens = Math.max(1, perSecond);
    this.last = clock.now();
  }

  /** How many may start now (at least 1 is waited for). */
  async take(want: number, signal: AbortSignal): Promise<number> {
    for (;;) {
      const now = this.clock.now();
      this.tokens = Math.min(Math.max(1, this.perSecond), this.tokens + ((now - this.last) * this.perSecond) / 1000);
      this.last = now;
      if (this.tokens >= 1) {
        const n = Math.min(want, Math.floor(this.tokens));
        this.tokens -= n;
        return n;
      }
      if (signal.aborted) return 0;
      await this.clock.sleep(Math.ceil(((1 - this.tokens) * 1000) / this.perSecond), signal);
    }
  }
}

function modeOf(options: ReplayOptions): ReplayMode {
  if (options.dryRun) return 'dry-run';
  return options.toTopic !== undefined ? 'topic' : 'direct';
}

/**
 * Takes dead letters back: pulls the dead-letter subscription, judges each message (filter, time
 * window, replay limit), and sends what it takes through the worker's own pipeline (or to a topic).
 * A dead letter is acked only once its row is inserted, its republish confirmed, or its new dead
 * letter confirmed; everything else is handed back to the subscription at the end, so a run that is
 * interrupted or fails loses nothing.
 */
export async function runReplay(config: Config, options: ReplayOptions, deps: ReplayDeps): Promise<ReplaySummary> {
  const { logger, signal } = deps;
  const clock = deps.clock ?? systemClock;
  const mode = modeOf(options);
  const started = clock.now();
  const stats = new ReplayStats(mode, options.subscription);
  const pubsub = new PubSub({ projectId: config.projectId });
  const reader = new PubSubPullReader(pubsub, { subscription: options.subscription });
  let pipeline: Pipeline | undefined;
  let deadLetters: PubSubDeadLetterPublisher | undefined;
  let recorder: RecordingDeadLetters | undefined;
  let sinks: SinkSet | undefined;
  let target: { topic: Topic; info: TargetTopic } | undefined;
  let progress: ProgressReporter | undefined;
  try {
    try {
      await reader.open();
    } catch (err) {
      throw new StartupError((err as Error).message);
    }
    if (mode === 'direct') {
      deadLetters = new PubSubDeadLetterPublisher(pubsub, config.deadLetter.topic);
      await checkDeadLetterTopic(deadLetters, config.deadLetter.topic, logger);
      recorder = new RecordingDeadLetters(deadLetters);
      sinks = deps.sink ? oneSink(deps.sink) : await createSinks(config, logger);
      pipeline = createPipeline(config, { logger, sinks, deadLetters: recorder, pubsub, metrics: new Metrics(), clock });
    } else if (mode === 'topic' && options.toTopic !== undefined) {
      const topic = pubsub.topic(topicPath(config.projectId, options.toTopic), { batching: { maxMessages: 100, maxMilliseconds: 10 } });
      let metadata;
      try {
        [metadata] = await topic.getMetadata();
      } catch (err) {
        const code = (err as { code?: number }).code;
        throw new StartupError(code === 5 ? `topic ${topic.name} does not exist` : `cannot read topic ${topic.name}: ${(err as Error).message}`);
      }
      target = { topic, info: { schemaTopic: Boolean(metadata.schemaSettings?.schema) } };
    }

    logger.info(
      { subscription: options.subscription, mode, ...(options.toTopic ? { toTopic: options.toTopic } : {}), max: options.max, maxReplays: options.maxReplays },
      'Replay started.',
    );
    progress = deps.progress?.(stats, options.max);
    progress?.start();

    let inFlight = 0;
    let waiters: Array<() => void> = [];
    const wake = (): void => {
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    };
    const changed = (): Promise<void> =>
      new Promise((resolve) => {
        waiters.push(resolve);
      });
    signal.addEventListener('abort', wake, { once: true });
    let lastActivityAt = clock.now();
    const done = (): void => {
      inFlight--;
      lastActivityAt = clock.now();
      wake();
    };
    const takenSources = new Set<string>();
    const limiter = options.ratePerSecond !== undefined ? new RateLimiter(options.ratePerSecond, clock) : undefined;
    const maxInFlight = config.flowControl.maxMessages;

    const settleAck = (message: DeadLetterMessage, info: DeadLetterInfo, failedAgain: ErrorCode | undefined): void => {
      reader
        .ack(message.ackId)
        .then(
          () => stats.settle(info, failedAgain !== undefined ? { kind: 'failed-again', code: failedAgain } : { kind: 'replayed' }),
          (err: unknown) => {
            stats.ackFailed(1);
            stats.settle(info, { kind: 'not-settled', code: 'ACK_FAILED' });
            logger.error({ messageId: info.sourceMessageId, err: (err as Error).message }, 'Ack of a dead letter refused; it will be delivered again.');
          },
        )
        .finally(done);
    };

    const replayDirect = (message: DeadLetterMessage, info: DeadLetterInfo): void => {
      let settled = false;
      const envelope: Envelope = {
        // The first identity: the insertId and the message-id column match the first attempt's,
        // so a replay of a message that was in fact inserted is deduplicated downstream.
        id: info.sourceMessageId,
        data: message.data,
        attributes: replayEnvelopeAttributes(message.attributes, info.replayCount + 1),
        publishTimeMs: info.sourcePublishTimeMs,
        subscription: info.sourceSubscription ?? options.subscription,
        topic: info.sourceTopic,
        deliveryAttempt: message.deliveryAttempt,
        receivedAtMs: clock.now(),
        ack: () => {
          if (settled) return;
          settled = true;
          settleAck(message, info, recorder?.codes.get(envelope));
        },
        nack: () => {
          if (settled) return;
          settled = true;
          // Left leased until the run ends, then handed back: a nack now would bring it straight
          // back to this run in a loop.
          stats.settle(info, { kind: 'not-settled', code: 'NACKED' });
          done();
        },
      };
      (pipeline as Pipeline).dispatcher.handle(envelope);
    };

    const replayToTopic = (message: DeadLetterMessage, info: DeadLetterInfo): void => {
      const { topic, info: targetInfo } = target as { topic: Topic; info: TargetTopic };
      const out = republishMessage(message, info.replayCount + 1, targetInfo);
      topic.publishMessage({ data: out.data, attributes: out.attributes }).then(
        () => settleAck(message, info, undefined),
        (err: unknown) => {
          logger.warn({ messageId: info.sourceMessageId, err: (err as Error).message }, 'Republish failed; the dead letter stays in the subscription.');
          stats.settle(info, { kind: 'not-settled', code: 'PUBLISH_FAILED' });
          done();
        },
      );
    };

    let drained = false;
    while (!signal.aborted) {
      const remaining = options.max === undefined ? Number.POSITIVE_INFINITY : options.max - stats.taken;
      if (remaining <= 0) break;
      if (inFlight >= maxInFlight) {
        await changed();
        continue;
      }
      let want = Math.min(MAX_PULL, remaining, maxInFlight - inFlight);
      if (limiter) want = await limiter.take(Math.min(want, Math.ceil(options.ratePerSecond ?? want)), signal);
      if (want <= 0) continue;
      const idleLeft = options.idleTimeoutMs - (clock.now() - lastActivityAt);
      const messages = await reader.pull(want, Math.min(MAX_PULL_WAIT_MS, Math.max(100, idleLeft)));
      if (messages.length === 0) {
        if (inFlight === 0 && clock.now() - lastActivityAt >= options.idleTimeoutMs) {
          drained = true;
          break;
        }
        continue;
      }
      lastActivityAt = clock.now();
      stats.pulled += messages.length;
      for (const pulled of messages) {
        let message: DeadLetterMessage;
        try {
          message = unwrapped(pulled);
        } catch (err) {
          logger.error({ messageId: pulled.messageId, err: (err as Error).message }, 'A wrapped dead letter cannot be read; it stays in the subscription.');
          stats.notTaken('damaged');
          continue;
        }
        const info = readDeadLetterInfo(message);
        // A message this run took and dead-lettered again comes back as a new dead letter: it
        // waits for the next run, which is what the replay count is for.
        if (takenSources.has(info.sourceMessageId)) {
          stats.notTaken('duplicate');
          continue;
        }
        const verdict = judge(info, options.filter, options.maxReplays);
        if (verdict === 'filtered' || verdict === 'outside-window') {
          stats.notTaken(verdict);
          continue;
        }
        if (verdict === 'over-max-replays') {
          stats.leave(info);
          continue;
        }
        // Pulled beyond --max (rate bursts cannot cause it, but a filter changes what counts).
        if (options.max !== undefined && stats.taken >= options.max) continue;
        stats.take(info);
        takenSources.add(info.sourceMessageId);
        if (mode === 'dry-run') continue;
        inFlight++;
        if (mode === 'direct') replayDirect(message, info);
        else replayToTopic(message, info);
      }
    }
    const interrupted = signal.aborted && !drained;
    if (interrupted) logger.info({ inFlight }, 'Interrupted: taking no more; settling what was taken.');

    if (pipeline) {
      const { dispatcher } = pipeline;
      await drainWithin(dispatcher, config.shutdown.drainTimeoutMs, () =>
        logger.warn({ unsettled: dispatcher.unsettled }, 'Drain timeout: what is left stays in the dead-letter subscription.'),
      );
    }
    while (inFlight > 0) await changed();
    progress?.stop();
    progress = undefined;
    const released = await reader.releaseAll();
    logger.debug({ released }, 'Messages not acked handed back to the subscription.');
    const summary = stats.summary(interrupted, clock.now() - started);
    logger.info({ ...summary.totals, skipped: summary.skipped, ackFailed: summary.ackFailed, interrupted, durationMs: summary.durationMs }, 'Replay finished.');
    return summary;
  } finally {
    progress?.stop();
    await reader.releaseAll().catch(() => undefined);
    await reader.close().catch(() => undefined);
    await deadLetters?.close().catch(() => undefined);
    await sinks?.close().catch(() => undefined);
    await target?.topic.flush().catch(() => undefined);
    await pubsub.close().catch(() => undefined);
  }
}
