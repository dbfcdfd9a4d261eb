import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import { afterEach, describe, expect, it } from 'vitest';
import { createPipeline, type Pipeline } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import type { DeadLetterPublisher } from '../../src/core/ports.js';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import { Metrics } from '../../src/ops/metrics.js';
import { trackedEnvelope, type TrackedEnvelope } from '../support/fake-envelopes.js';
import { accessRecord, accessV1, encode, tableSchemaFor } from '../support/log-schemas.js';
import { ManualClock } from '../support/manual-clock.js';
import { ScriptedSink } from '../support/scripted-sink.js';
import { until } from '../support/until.js';
import { silentLogger } from '../support/worker-harness.js';

const noDeadLetters: DeadLetterPublisher = { publish: () => Promise.reject(new Error('no dead letters expected')) };

async function pipelineWithWindow(maxMessages: number): Promise<{ pipeline: Pipeline; sink: ScriptedSink; clock: ManualClock }> {
  const directory = await mkdtemp(join(tmpdir(), 'tributary-window-'));
  await writeFile(join(directory, '1.avsc'), JSON.stringify(accessV1));
  const config = parseConfig(
    `
projectId: test-project
subscription: logs
deadLetter: { topic: dead-letters }
registry: { kind: directory, directory: ${JSON.stringify(directory)} }
flowControl: { maxMessages: ${maxMessages} }
routes:
  access: { match: [access], table: logs.access, batch: { maxRows: 100, maxDelayMs: 60000 }, metadata: { messageId: _message_id } }
`,
    {},
  );
  const sink = new ScriptedSink(tableSchemaFor(accessV1));
  const clock = new ManualClock();
  const pipeline = createPipeline(config, {
    logger: silentLogger,
    sinks: sink,
    deadLetters: noDeadLetters,
    pubsub: new PubSub({ projectId: 'test-project' }),
    metrics: new Metrics(),
    clock,
  });
  return { pipeline, sink, clock };
}

function message(i: number): TrackedEnvelope {
  return trackedEnvelope(Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(i))]), { log_type: 'access' });
}

function allSettled(envelopes: TrackedEnvelope[]): boolean {
  return envelopes.every((e) => e.settledAs !== undefined);
}

describe('Dispatcher: a full flow-control window', () => {
  let pipeline: Pipeline | undefined;

  afterEach(async () => {
    for (const route of pipeline?.routes.values() ?? []) route.pipeline.abort();
    pipeline = undefined;
  });

  it('sends the batch being filled as soon as the window is full, not at its age limit', async () => {
    const built = await pipelineWithWindow(3);
    const start = built.clock.now();
    pipeline = built.pipeline;
    const first = [message(0), message(1), message(2)];
    for (const envelope of first) pipeline.dispatcher.handle(envelope);
    // These waited for their schema when the window filled: the flush comes when it arrives. The
    // clock never moves, so no batch can have been sent by its age.
    await until('the first window settled', () => allSettled(first));
    const next = [message(3), message(4), message(5)];
    for (const envelope of next) pipeline.dispatcher.handle(envelope);
    await until('the second window settled', () => allSettled(next));
    expect(next.every((e) => e.settledAs === 'ack')).toBe(true);
    expect(built.sink.calls.map((b) => b.length)).toEqual([3, 3]);
    expect(built.clock.now() - start).toBe(0);
  });

  it('keeps filling batches while the window has room', async () => {
    const built = await pipelineWithWindow(10);
    pipeline = built.pipeline;
    const some = [message(0), message(1), message(2)];
    for (const envelope of some) pipeline.dispatcher.handle(envelope);
    const route = pipeline.routes.get('access')?.pipeline;
    await until('the rows reached their batch', () => route?.status().pendingRows === 3);
    expect(built.sink.calls).toEqual([]);
    expect(allSettled(some)).toBe(false);
    // The batch goes at its age limit, not before.
    await built.clock.advance(59_999);
    expect(built.sink.calls).toEqual([]);
    await built.clock.advance(1);
    await until('the batch settled', () => allSettled(some));
    expect(built.sink.calls.map((b) => b.length)).toEqual([3]);
  });
});
