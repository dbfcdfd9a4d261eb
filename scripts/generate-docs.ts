import { readFile, writeFile } from 'node:fs/promises';
import { renderConfigurationReference } from './configuration-reference.js';
import { withMetricsReference } from './metrics-reference.js';

/** `npm run docs`: writes the generated references (run from the repository root). */
async function generate(): Promise<void> {
  await writeFile('docs/configuration.md', renderConfigurationReference());
  const operations = await readFile('docs/operations.md', 'utf8');
  await writeFile('docs/operations.md', withMetricsReference(operations));
  process.stdout.write('wrote docs/configuration.md and the metrics reference in docs/operations.md\n');
}

generate().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  },
);
