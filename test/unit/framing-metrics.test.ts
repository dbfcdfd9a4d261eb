import { describe, expect, it } from 'vitest';
import { detectFraming } from '../../src/core/schema-reference.js';
import { Metrics } from '../../src/ops/metrics.js';
import { metricValue, parseMetrics } from '../support/prometheus-text.js';

describe('framing metrics', () => {
  it('detects the framing from the attributes, then the first bytes', () => {
    expect(detectFraming({ googclient_schemaname: 's', googclient_schemarevisionid: 'r' }, Buffer.from('Obj\x01', 'latin1'))).toBe('pubsub-schema');
    expect(detectFraming({}, Buffer.from([0, 0, 0, 0, 1, 2]))).toBe('confluent');
    expect(detectFraming({}, Buffer.from([0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 2]))).toBe('single-object');
    expect(detectFraming({}, Buffer.from('Obj\x01....', 'latin1'))).toBe('container-file');
    expect(detectFraming({}, Buffer.from('{"json": true}'))).toBeUndefined();
  });

  it('counts received messages per subscription and framing, and embedded-schema bytes per route', async () => {
    const metrics = new Metrics();
    metrics.received('sub', 1, 100, 'container-file');
    metrics.received('sub', 1, 120, 'container-file');
    metrics.received('sub', 1, 30, 'confluent');
    metrics.received('sub', 1, 10);
    metrics.embeddedSchemaBytes('access', 700);
    metrics.embeddedSchemaBytes('access', 700);
    const samples = parseMetrics(await metrics.registry.metrics());
    expect(metricValue(samples, 'tributary_messages_received_total', { subscription: 'sub', framing: 'container-file' })).toBe(2);
    expect(metricValue(samples, 'tributary_messages_received_total', { subscription: 'sub', framing: 'confluent' })).toBe(1);
    expect(metricValue(samples, 'tributary_messages_received_total', { subscription: 'sub', framing: 'none' })).toBe(1);
    expect(metricValue(samples, 'tributary_messages_received_bytes_total', { subscription: 'sub', framing: 'container-file' })).toBe(220);
    expect(metricValue(samples, 'tributary_embedded_schema_bytes_total', { route: 'access' })).toBe(1400);
  });
});
