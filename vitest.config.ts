import { defineConfig } from 'vitest/config';

/**
 * Four tiers, each a project: `unit` (pure logic, no emulator, manual clocks), `fuzz` (hostile
 * input under a small heap), `integration` (the real Pub/Sub emulator, test servers, the built CLI)
 * and `fault` (the fault suite: conservation under crashes, outages and load). `npm run test:unit`
 * runs the first two; `npm test` runs all four.
 */
const withEmulator = { globalSetup: ['test/support/global-setup.ts'] };

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 90_000,
    teardownTimeout: 30_000,
    reporters: ['default'],
    // Never probe the GCE metadata server for a project id or credentials during tests.
    env: { METADATA_SERVER_DETECTION: 'none' },
    // Only the fuzz project runs in this pool: its heap is small so that an allocation bomb fails
    // the run instead of passing on a machine with memory to spare. (Pool options are global.)
    poolOptions: { vmForks: { execArgv: ['--max-old-space-size=256'] } },
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'fuzz', include: ['test/fuzz/**/*.test.ts'], pool: 'vmForks' } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'], ...withEmulator } },
      { extends: true, test: { name: 'fault', include: ['test/fault/**/*.test.ts'], ...withEmulator } },
    ],
  },
});
