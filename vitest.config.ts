import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'core/**/*.test.ts', 'drivers/**/*.test.ts', 'sockapi/**/*.test.ts', 'services/**/*.test.ts', 'sim/**/*.test.ts', 'tools/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: process.env.AFCLUSTER_TEST_REPORT
      ? ['default', ['json', { outputFile: process.env.AFCLUSTER_TEST_REPORT }]]
      : ['default'],
  },
});
