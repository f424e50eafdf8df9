import { defineConfig } from 'vitest/config';

// Integration tests open real sockets and start child processes: run files in forks so a
// crashed runtime cannot take the runner down, and give loopback round trips room.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
