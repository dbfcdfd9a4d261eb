import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import { describe, expect, it } from 'vitest';
import { createPipeline } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import type { AvroSchema } from '../../src/core/avro-type.js';
import { DecodedBudget } from '../../src/core/decoded-budget.js';
import type { DeadLetterPublisher } from '../../src/core/ports.js';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import { Metrics } from '../../src/ops/metrics.js';
import { trackedEnvelope, type TrackedEnvelope } from '../support/fake-envelopes.js';
import { encode, tableSchemaFor } from '../support/log-schemas.js';
import { ManualClock } from '../support/manual-clock.js';
import { ScriptedSink } from '../support/scripted-sink.js';
import { until } from '../support/until.js';
import { silentLogger } from '../support/worker-harness.js';

describe('DecodedBudget', () => {
  it('is spent at its limit, released per message once, and says when it has room again', () => {
    let freed = 0;
    const budget = new DecodedBudget(100, () => freed++);
    const [a, b] = [trackedEnvelope(), trackedEnvelope()];
    budget.charge(a, 60);
    expect(budget.spent).toBe(false);
    budget.charge(b, 30);
    budget.charge(b, 30);
    expect(budget.spent).toBe(true);
    budget.release(b);
    expect(budget.bytes).toBe(60);
    expect(freed).toBe(1);
    budget.release(b);
    budget.release(trackedEnvelope());
    expect(budget.bytes).toBe(60);
    budget.release(a);
    expect(budget.bytes).toBe(0);
    expect(freed).toBe(1);
  });
});

const blob = {
  type: 'record',
  name: 'Blob',
  namespace: 'test',
  fields: [{ name: 'flags', type: { type: 'array', items: 'boolean' } }],
} as const satisfies AvroSchema;

describe('Dispatcher under a decoded-bytes budget', () => {
  it('holds new messages undecoded while the budget is spent, and decodes them as rows settle; nothing is dropped', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'tributary-budget-'));
    await writeFile(join(directory, '1.avsc'), JSON.stringify(blob));
    const config = parseConfig(
      `
projectId: test-project
subscription: logs
deadLetter: { topic: dead-letters }
registry: { kind: directory, directory: ${JSON.stringify(directory)} }
flowControl: { maxDecodedBytes: 1048576 }
routes:
  blob: { match: [blob], table: logs.blob, batch: { maxRows: 1, maxDelayMs: 60000 } }
`,
      {},
    );
    const sink = new ScriptedSink(tableSchemaFor(blob));
    sink.hold = true;
    const noDeadLetters: DeadLetterPublisher = { publish: () => Promise.reject(new Error('no dead letters expected')) };
    const pipeline = createPipeline(config, {
      logger: silentLogger,
      sinks: sink,
      deadLetters: noDeadLetters,
      pubsub: new PubSub({ projectId: 'test-project' }),
      metrics: new Metrics(),
      clock: new ManualClock(),
    });
    // each row is about 330 KB of JSON: four of them spend a 1 MiB budget
    const messages: TrackedEnvelope[] = Array.from({ length: 8 }, () =>
      trackedEnvelope(Buffer.concat([encodeConfluentHeader(1), encode(blob, { flags: Array.from({ length: 60_000 }, (_, i) => i % 3 === 0) })]), {
        log_type: 'blob',
      }),
    );
    for (const m of messages) pipeline.dispatcher.handle(m);
    await until('the first rows reached the sink', () => sink.calls.length >= 4);
    expect(sink.calls).toHaveLength(4);
    expect(pipeline.dispatcher.unsettled).toBe(8);
    while (messages.some((m) => m.settledAs === undefined)) {
      sink.release();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    expect(messages.every((m) => m.settledAs === 'ack')).toBe(true);
    expect(sink.calls).toHaveLength(8);
  });
});
