import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import { afterEach, describe, expect, it } from 'vitest';
import { createPipeline, type Pipeline } from '../../src/app.js';
import { parseConfig } from '../../src/config.js';
import type { DeadLetterPublisher, InsertOutcome, InsertRow, Sink } from '../../src/core/ports.js';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import type { TableRef, TableSchema } from '../../src/core/table-schema.js';
import { Metrics } from '../../src/ops/metrics.js';
import { trackedEnvelope, type TrackedEnvelope } from '../support/fake-envelopes.js';
import { accessRecord, accessV1, encode, tableSchemaFor } from '../support/log-schemas.js';
import { silentLogger } from '../support/worker-harness.js';

class RecordingSink implements Sink {
  readonly batches: InsertRow[][] = [];
  insert(_table: TableRef, rows: InsertRow[]): Promise<InsertOutcome> {
    this.batches.push(rows);
    return Promise.resolve({ failures: [] });
  }
  getTableSchema(): Promise<TableSchema> {
    return Promise.resolve(tableSchemaFor(accessV1));
  }
}

const noDeadLetters: DeadLetterPublisher = { publish: () => Promise.reject(new Error('no dead letters expected')) };

async function pipelineWithWindow(maxMessages: number): Promise<{ pipeline: Pipeline; sink: RecordingSink }> {
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
  const sink = new RecordingSink();
  const pipeline = createPipeline(config, { logger: silentLogger, sink, deadLetters: noDeadLetters, pubsub: new PubSub({ projectId: 'test-project' }), metrics: new Metrics() });
  return { pipeline, sink };
}

function message(i: number): TrackedEnvelope {
  return trackedEnvelope(Buffer.concat([encodeConfluentHeader(1), encode(accessV1, accessRecord(i))]), { log_type: 'access' });
}

async function settled(envelopes: TrackedEnvelope[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (envelopes.every((e) => e.settledAs !== undefined)) return true;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return false;
}

describe('Dispatcher: a full flow-control window', () => {
  let pipeline: Pipeline | undefined;

  afterEach(async () => {
    for (const route of pipeline?.routes.values() ?? []) route.pipeline.abort();
    pipeline = undefined;
  });

  it('sends the batch being filled as soon as the window is full, not at its age limit', async () => {
    const built = await pipelineWithWindow(3);
    pipeline = built.pipeline;
    const first = [message(0), message(1), message(2)];
    for (const envelope of first) pipeline.dispatcher.handle(envelope);
    // These waited for their schema when the window filled: the flush comes when it arrives.
    expect(await settled(first, 2_000)).toBe(true);
    const next = [message(3), message(4), message(5)];
    for (const envelope of next) pipeline.dispatcher.handle(envelope);
    expect(await settled(next, 2_000)).toBe(true);
    expect(next.every((e) => e.settledAs === 'ack')).toBe(true);
    expect(built.sink.batches.map((b) => b.length)).toEqual([3, 3]);
  });

  it('keeps filling batches while the window has room', async () => {
    const built = await pipelineWithWindow(10);
    pipeline = built.pipeline;
    const some = [message(0), message(1), message(2)];
    for (const envelope of some) pipeline.dispatcher.handle(envelope);
    expect(await settled(some, 300)).toBe(false);
    expect(built.sink.batches).toEqual([]);
  });
});
