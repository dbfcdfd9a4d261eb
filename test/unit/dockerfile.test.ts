import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
const verify = readFileSync(new URL('scripts/verify-production-install.sh', root), 'utf8');
const ci = readFileSync(new URL('.ci/run', root), 'utf8');

/** The `npm ci` line of the production dependencies, flags sorted. */
function productionInstall(text: string): string[] {
  const line = text.split('\n').find((l) => !l.trim().startsWith('#') && /npm ci .*--omit=dev/.test(l));
  if (line === undefined) throw new Error('no production npm ci line');
  const command = /npm ci[^&;\n]*/.exec(line)?.[0] ?? '';
  return command.trim().split(/\s+/).sort();
}

describe('the Dockerfile and the CI check of its install path', () => {
  it('install production dependencies the same way, and CI runs the check', () => {
    expect(productionInstall(dockerfile)).toEqual(productionInstall(verify));
    expect(productionInstall(dockerfile)).toEqual(expect.arrayContaining(['--omit=dev', '--ignore-scripts']));
    expect(ci).toContain('./scripts/verify-production-install.sh');
  });

  it('is multi-stage, runs as a numeric non-root user behind tini, stops on SIGTERM', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(3);
    expect(dockerfile).toMatch(/^USER [1-9]\d*:[1-9]\d*$/m);
    expect(dockerfile).toMatch(/^STOPSIGNAL SIGTERM$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "\/app\/bin\/tributary.js"\]$/m);
    // Only built output reaches the final stage: no sources, no dev dependencies.
    const final = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(final).toContain('COPY --from=deps /app/node_modules ./node_modules');
    expect(final).toContain('COPY --from=build /app/dist ./dist');
    expect(final).not.toMatch(/COPY src|npm ci |npm install/);
  });
});
