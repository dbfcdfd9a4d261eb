import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { WriteApi } from '../../src/config.js';
import { encodeConfluentHeader } from '../../src/core/schema-reference.js';
import { startCli } from '../support/cli-process.js';
import { accessRecord, accessV1, audit, auditRecord, encode, tableSchemaFor } from '../support/log-schemas.js';
import { Harness } from '../support/worker-harness.js';

/** What a message of the mixed stream is, so that both runs can be compared message by message. */
type Kind = 'access' | 'audit' | 'undecodable' | 'unknown-schema' | 'unrouted' | 'refused-by-bigquery' | 'timestamp-out-of-range';

interface Message {
  key: string;
  kind: Kind;
  data: Buffer;
  attributes: Record<string, string>;
}

const confluent = (id: number, payload: Buffer): Buffer => Buffer.concat([encodeConfluentHeader(id), payload]);

/** The same stream for both write APIs: two log types and one poison message of each kind every 25. */
function mixedStream(): Message[] {
  const out: Message[] = [];
  for (let i = 0; i < 300; i++) {
    if (i % 25 === 24) {
      const n = Math.floor(i / 25);
      const poison: Message[] = [
        { key: `p${n}`, kind: 'undecodable', data: confluent(1, Buffer.from([0xff, 0xff, 0xff])), attributes: { log_type: 'access' } },
        { key: `p${n}`, kind: 'unknown-schema', data: confluent(99, Buffer.from([0])), attributes: { log_type: 'access' } },
        { key: `p${n}`, kind: 'unrouted', data: confluent(2, encode(audit, auditRecord(i))), attributes: { log_type: 'billing' } },
        {
          key: `p${n}`,
          kind: 'refused-by-bigquery',
          data: confluent(1, encode(accessV1, accessRecord(i, { path: `/poison/${i}` }))),
          attributes: { log_type: 'access' },
        },
        {
          key: `p${n}`,
          kind: 'timestamp-out-of-range',
          data: confluent(1, encode(accessV1, accessRecord(i, { ts: 9_000_000_000_000_000_000n }))),
          attributes: { log_type: 'access' },
        },
      ];
      out.push(poison[n % poison.length] as Message);
    } else if (i % 3 === 2) {
      out.push({ key: `a${i}`, kind: 'audit', data: confluent(2, encode(audit, auditRecord(i))), attributes: { log_type: 'audit' } });
    } else {
      // every fifth access row carries a long beyond 2^53, which must land exactly
      const extra = i % 5 === 0 ? { bytes: 9_007_199_254_740_993n + BigInt(i) } : {};
      out.push({ key: `x${i}`, kind: 'access', data: confluent(1, encode(accessV1, accessRecord(i, extra))), attributes: { log_type: 'access' } });
    }
  }
  return out;
}

interface Landed {
  /** Landed rows without the metadata columns (message ids and publish times differ per run), by message key. */
  rows: Record<string, Record<string, unknown>>;
  /** The dead-letter code of each poison message, by message key and kind. */
  deadLetters: Record<string, string>;
  writeApis: string[];
}

/** The built CLI worker on a mixed stream against the test servers, on one write API; conservation checked. */
async function runOn(writeApi: WriteApi): Promise<Landed> {
  const h = await Harness.create({ writeApi });
  try {
    const dir = await mkdtemp(join(tmpdir(), `tributary-${writeApi}-`));
    await writeFile(join(dir, '1.avsc'), JSON.stringify(accessV1));
    await writeFile(join(dir, '2.avsc'), JSON.stringify(audit));
    const access = h.table('access');
    const auditTable = h.table('audit');
    h.bigquery.createTable(access, tableSchemaFor(accessV1));
    h.bigquery.createTable(auditTable, tableSchemaFor(audit));
    // BigQuery alone judges this row (pre-validation passes it); and two transient failures.
    h.rejectRows((row) => (String(row.path).startsWith('/poison/') ? 'Invalid value: poison' : null));
    h.failNextWrites(2, access);
    const configPath = join(dir, 'tributary.yaml');
    await writeFile(
      configPath,
      h.configYaml(`
registry: { kind: directory, directory: ${dir} }
routes:
  access: { match: [access], table: $DATASET.access, batch: { maxRows: 50, maxDelayMs: 50 }, metadata: { messageId: _message_id, publishTime: _publish_time } }
  audit: { match: [audit], table: $DATASET.audit, batch: { maxRows: 50, maxDelayMs: 50 }, metadata: { messageId: _message_id, publishTime: _publish_time } }
`),
    );
    const cli = startCli(['run', '--config', configPath]);
    const started = await cli.waitForLine((l) => l.message === 'tributary started.');
    const stream = mixedStream();
    const ids = await h.publish(stream);
    const keyOf = new Map(ids.map((id, k) => [id, stream[k] as Message]));

    // Every message inserted once or dead-lettered once, none both, none lost, no row stored twice.
    const { deadLettered } = await h.expectConservation(ids, [access, auditTable], 60_000);
    const metrics = await (await fetch(`http://127.0.0.1:${String(started.port)}/metrics`)).text();
    cli.child.kill('SIGTERM');
    expect(await cli.exit).toBe(0);

    const rows: Landed['rows'] = {};
    for (const table of [access, auditTable]) {
      for (const { json } of h.bigquery.rows(table)) {
        const { _message_id, _publish_time, ...values } = json;
        const message = keyOf.get(String(_message_id));
        expect(message?.kind, `row of ${String(_message_id)}`).toMatch(/^(access|audit)$/);
        expect(typeof _publish_time).toBe('string');
        rows[(message as Message).key] = values;
      }
    }
    const deadLetters: Landed['deadLetters'] = {};
    for (const m of deadLettered) {
      const message = keyOf.get(m.attributes.tributary_source_message_id ?? '') as Message;
      deadLetters[`${message.key} ${message.kind}`] = m.attributes.tributary_error_code ?? '';
    }
    // The worker wrote through the API asked for: billed bytes are counted under its name only.
    const writeApis = [...metrics.matchAll(/^tributary_insert_billed_bytes_total\{[^}]*write_api="([^"]+)"[^}]*\} [1-9]/gm)].map((m) => m[1] as string);
    return { rows, deadLetters, writeApis: [...new Set(writeApis)] };
  } finally {
    await h.close();
  }
}

describe('the built CLI worker on both write APIs', () => {
  it('a mixed stream with poison messages: conservation on each, the same values land, the same messages are dead-lettered', async () => {
    const insertAll = await runOn('insert-all');
    const storageWrite = await runOn('storage-write');
    const expected = mixedStream();
    const good = expected.filter((m) => m.kind === 'access' || m.kind === 'audit');
    expect(Object.keys(insertAll.rows).sort()).toEqual(good.map((m) => m.key).sort());
    expect(storageWrite.rows).toEqual(insertAll.rows);
    // spot checks of what the equality covers: longs beyond 2^53 exact, microsecond timestamps, decimals
    expect(storageWrite.rows.x0).toMatchObject({ bytes: '9007199254740993', ts: '2025-11-24T16:00:00.000000Z', user_agent: null, tags: ['edge', 'shard-0'] });
    expect(storageWrite.rows.x1).toMatchObject({ bytes: 1001, method: 'POST', ts: '2025-11-24T16:00:00.000001Z' });
    expect(storageWrite.rows.a2).toMatchObject({ actor: 'user-2', amount: '123.45' });

    expect(storageWrite.deadLetters).toEqual(insertAll.deadLetters);
    expect(new Set(Object.values(insertAll.deadLetters))).toEqual(
      new Set(['DECODE_FAILED', 'SCHEMA_NOT_FOUND', 'UNROUTED', 'BIGQUERY_ROW_INVALID', 'CONVERSION_FAILED']),
    );
    expect(Object.keys(insertAll.deadLetters)).toHaveLength(expected.length - good.length);
    expect(insertAll.writeApis).toEqual(['insert-all']);
    expect(storageWrite.writeApis).toEqual(['storage-write']);
  }, 150_000);
});
