import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AvroSchema } from '../../src/core/avro-type.js';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import { startCli } from '../support/cli-process.js';
import { encode, tableSchemaFor } from '../support/log-schemas.js';
import { Harness } from '../support/worker-harness.js';

const blob = {
  type: 'record',
  name: 'Blob',
  namespace: 'test',
  fields: [{ name: 'flags', type: { type: 'array', items: 'boolean' } }],
} as const satisfies AvroSchema;

describe('large payloads under a small heap (the built CLI)', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.create();
  });

  afterEach(async () => {
    await h.close();
  });

  it('a window of 1 MB boolean arrays (each ~30 MB decoded) lands without exhausting a 256 MB heap', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tributary-large-'));
    await writeFile(join(dir, '1.avsc'), JSON.stringify(blob));
    const table = h.table('blob');
    h.bigquery.createTable(table, tableSchemaFor(blob));
    const configPath = join(dir, 'tributary.yaml');
    await writeFile(
      configPath,
      h.configYaml(`registry: { kind: directory, directory: ${dir} }\nroutes:\n  blob: { match: [blob], table: $DATASET.blob, batch: { maxDelayMs: 50 } }\n`),
    );
    // Before the budget, 20 such messages in flight held ~600 MB of heap: an OOM crash loop.
    const count = 20;
    const payload = Buffer.concat([encodeConfluentHeader(1), encode(blob, { flags: Array.from({ length: 1_000_000 }, (_, i) => i % 7 === 0) })]);
    await h.publish(Array.from({ length: count }, () => ({ data: payload, attributes: { log_type: 'blob' } })));
    const cli = startCli(['run', '--config', configPath], { NODE_OPTIONS: '--max-old-space-size=256' });
    await cli.waitForLine((l) => l.message === 'tributary started.');
    await h.bigquery.waitForRows(table, count, 120_000).catch(async (err: unknown) => {
      // A failed wait must not leave the worker running.
      cli.child.kill('SIGKILL');
      await cli.exited;
      throw new Error(`${String(err)}; worker said: ${JSON.stringify(cli.lines.slice(-8))} ${cli.stderr.slice(-5).join(' ')}`);
    });
    cli.child.kill('SIGTERM');
    const exit = await cli.exited;
    expect(exit.code).toBe(0);
    expect(h.bigquery.rows(table)).toHaveLength(count);
  }, 180_000);
});
