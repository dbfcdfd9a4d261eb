import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startCli } from '../support/cli-process.js';
import { accessV2, audit, metric } from '../support/log-schemas.js';
import { createAvroSchema, createSchemaTopic, pullAll, uniqueName } from '../support/pubsub-fixtures.js';
import { Harness, PROJECT } from '../support/worker-harness.js';

interface Inspected {
  messageId: string;
  framing?: string;
  schemaRef?: string;
  schemaName?: string;
  records: Array<{ index: number; rowId: string; record: Record<string, unknown>; route?: string; table?: string; row?: Record<string, unknown> }>;
  deadLetter?: { code: string; reason: string };
}

const json = (lines: Array<Record<string, unknown>>): Inspected[] => lines.filter((l) => l.raw === undefined && 'messageId' in l) as unknown as Inspected[];

describe('tributary publish and inspect on the built CLI', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await Harness.create();
  });

  afterEach(async () => {
    await h.close();
  });

  it('publishes JSON lines in every framing; inspect shows each message and hands it back unacked', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tributary-framings-e2e-'));
    const schemas = join(dir, 'schemas');
    await import('node:fs/promises').then((fs) => fs.mkdir(schemas));
    await writeFile(join(schemas, '3.avsc'), JSON.stringify(metric));
    await writeFile(join(schemas, 'access.avsc'), JSON.stringify(accessV2));
    await writeFile(join(dir, 'metric.avsc'), JSON.stringify(metric));
    await writeFile(join(dir, 'access.avsc'), JSON.stringify(accessV2));
    await writeFile(join(dir, 'audit.avsc'), JSON.stringify(audit));
    await writeFile(join(dir, 'metric.jsonl'), Array.from({ length: 5 }, (_, i) => JSON.stringify({ name: `m${i}`, value: i / 2, count: i })).join('\n'));
    await writeFile(
      join(dir, 'access.jsonl'),
      `${JSON.stringify({ ts: 1700000000000000, method: 'GET', path: '/a', status: 200, bytes: 10, user_agent: { string: 'curl' }, headers: { h: 'v' }, tags: ['x'], latency_ms: null })}\n`,
    );
    await writeFile(join(dir, 'audit.jsonl'), `${JSON.stringify({ ts: 1700000000000, actor: 'alice', action: 'login', amount: null })}\n`);
    const config = join(dir, 'tributary.yaml');
    await writeFile(
      config,
      `projectId: ${PROJECT}
subscription: ${h.subscription.name}
deadLetter: { topic: ${h.deadLetterTopic.name} }
registry: { kind: auto, directory: ${schemas} }
routing: { from: record-name }
routes:
  access: { match: [com.acme.logs.Access], table: logs.access }
  audit: { match: [com.acme.logs.Audit], table: logs.audit }
  metric: { match: [com.acme.logs.Metric], table: logs.metric }
`,
    );
    const schemaName = uniqueName('audit-schema');
    await createAvroSchema(h.pubsub, schemaName, audit);
    const schemaTopic = await createSchemaTopic(h.pubsub, uniqueName('audit-topic'), schemaName, 'BINARY');
    const [schemaSub] = await schemaTopic.createSubscription(uniqueName('audit-sub'));
    const topic = h.topic.name.split('/').pop() as string;

    const runs = [
      ['--framing', 'confluent', '--schema-id', '3', '--jsonl', join(dir, 'metric.jsonl'), '--topic', topic, '--config', config],
      ['--framing', 'single-object', '--schema', join(dir, 'access.avsc'), '--jsonl', join(dir, 'access.jsonl'), '--topic', topic, '--project', PROJECT],
      [
        '--framing',
        'container-file',
        '--schema',
        join(dir, 'metric.avsc'),
        '--jsonl',
        join(dir, 'metric.jsonl'),
        '--records-per-message',
        '3',
        '--codec',
        'deflate',
        '--topic',
        topic,
        '--project',
        PROJECT,
        '--batch',
        '1',
      ],
      [
        '--framing',
        'pubsub-schema',
        '--schema',
        join(dir, 'audit.avsc'),
        '--jsonl',
        join(dir, 'audit.jsonl'),
        '--topic',
        schemaTopic.name,
        '--project',
        PROJECT,
      ],
    ];
    const summaries = [];
    for (const args of runs) {
      const cli = startCli(['publish', ...args]);
      expect(await cli.exit, cli.stderr.join('\n')).toBe(0);
      summaries.push(cli.lines.find((l) => 'published' in l));
      expect(cli.stderr.join('\n')).toMatch(/published +\[#+\] +\d+\/\d+ in [\d.]+ s/);
    }
    expect(summaries.map((s) => [s?.framing, s?.published, s?.records])).toEqual([
      ['confluent', 5, 5],
      ['single-object', 1, 1],
      ['container-file', 2, 5],
      ['pubsub-schema', 1, 1],
    ]);

    // 5 + 1 + 2 messages on the main subscription
    const inspect = startCli(['inspect', '--config', config, '--subscription', h.subscription.name, '--max', '8', '--wait', '10', '--json']);
    expect(await inspect.exit, inspect.stderr.join('\n')).toBe(0);
    const seen = json(inspect.lines);
    expect(seen).toHaveLength(8);
    const byFraming = (f: string): Inspected[] => seen.filter((m) => m.framing === f);
    expect(byFraming('confluent')).toHaveLength(5);
    expect(byFraming('confluent')[0]).toMatchObject({ schemaRef: 'Confluent schema id 3', schemaName: 'com.acme.logs.Metric' });
    expect(byFraming('single-object')[0]).toMatchObject({
      schemaName: 'com.acme.logs.Access',
      records: [{ route: 'access', table: `${PROJECT}.logs.access`, row: { path: '/a', user_agent: 'curl', ts: '2023-11-14T22:13:20.000000Z' } }],
    });
    expect(byFraming('single-object')[0]?.schemaRef).toMatch(/^single-object fingerprint [0-9a-f]{16} \(CRC-64-AVRO -?\d+\)$/);
    const files = byFraming('container-file');
    expect(files.map((f) => f.records.length).sort()).toEqual([2, 3]);
    const three = files.find((f) => f.records.length === 3) as Inspected;
    expect(three.records.map((r) => r.rowId)).toEqual([0, 1, 2].map((n) => `${three.messageId}:${n}`));
    expect(three.schemaRef).toMatch(/^embedded schema sha256:[0-9a-f]{64}$/);
    expect(inspect.stderr.join('\n')).toContain('8 message(s) inspected, 0 would be dead-lettered; all handed back unacked');
    // handed back: all 8 are still there
    expect(await pullAll(h.subscription, { max: 8, timeoutMs: 10_000 })).toHaveLength(8);

    const audited = startCli(['inspect', '--config', config, '--subscription', schemaSub.name, '--max', '1', '--wait', '10']);
    expect(await audited.exit, audited.stderr.join('\n')).toBe(0);
    const text = audited.lines.map((l) => String(l.raw)).join('\n');
    expect(text).toContain('framing:     pubsub-schema');
    expect(text).toContain(`schema ref:  Pub/Sub schema projects/${PROJECT}/schemas/${schemaName} revision`);
    expect(text).toContain('route: audit -> test-project.logs.audit');

    // one payload from a file: a fingerprint nobody knows
    const bad = join(dir, 'bad.bin');
    await writeFile(bad, Buffer.concat([Buffer.from([0xc3, 0x01]), Buffer.alloc(8, 0xab), Buffer.from([0x02])]));
    const file = startCli(['inspect', '--config', config, '--file', bad, '--attributes', 'log_type=access,x=a=b', '--json']);
    expect(await file.exit).toBe(2);
    const [m] = json(file.lines);
    expect(m).toMatchObject({ framing: 'single-object', attributes: { log_type: 'access', x: 'a=b' }, deadLetter: { code: 'SCHEMA_NOT_FOUND' } });
    expect(m?.deadLetter?.reason).toMatch(/no known schema has the single-object fingerprint abababababababab \(\d+ schemas indexed/);

    // the fingerprint a producer needs, from a schema file
    const fp = startCli(['inspect', '--schema', join(dir, 'access.avsc'), '--json']);
    expect(await fp.exit).toBe(0);
    const printed = fp.lines[0] as { canonicalForm: string; fingerprintHex: string; fingerprint: string };
    expect(printed.canonicalForm).toMatch(/^\{"name":"com.acme.logs.Access","type":"record","fields":\[\{"name":"ts","type":"long"\}/);
    expect(byFraming('single-object')[0]?.schemaRef).toContain(printed.fingerprintHex);
    expect(byFraming('single-object')[0]?.schemaRef).toContain(`(CRC-64-AVRO ${printed.fingerprint})`);

    const usage = startCli(['publish', '--framing', 'bogus']);
    expect(await usage.exit).toBe(64);
  });
});
