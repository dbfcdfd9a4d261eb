import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/ops/metrics.js';

describe('tributary_table_changes_total', () => {
  it('counts table changes by table, kind and result', async () => {
    const metrics = new Metrics();
    metrics.tableChanged('p.d.access', 'added-columns', 'conflict');
    metrics.tableChanged('p.d.access', 'added-columns', 'ok');
    metrics.tableChanged('p.d.access', 'added-columns', 'ok');
    metrics.tableChanged('p.d.audit', 'refused', 'ok');
    const text = await metrics.registry.getSingleMetricAsString('tributary_table_changes_total');
    expect(text).toContain('# TYPE tributary_table_changes_total counter');
    expect(text).toContain('tributary_table_changes_total{table="p.d.access",kind="added-columns",result="ok"} 2');
    expect(text).toContain('tributary_table_changes_total{table="p.d.access",kind="added-columns",result="conflict"} 1');
    expect(text).toContain('tributary_table_changes_total{table="p.d.audit",kind="refused",result="ok"} 1');
  });
});
