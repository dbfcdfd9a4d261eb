import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 90_000,
    teardownTimeout: 30_000,
    reporters: ['default'],
    // Only the fuzz project runs in this pool: its heap is small so that an allocation bomb fails
    // the run instead of passing on a machine with memory to spare. (Pool options are global.)
    poolOptions: { vmForks: { execArgv: ['--max-old-space-size=256'] } },
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts'],
          exclude: ['test/fuzz/**'],
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'fuzz',
          include: ['test/fuzz/**/*.test.ts'],
          pool: 'vmForks',
        },
      },
    ],
  },
});
