import { defineConfig } from 'vitest/config';

// Integration tests open real sockets and start child processes: run files in forks so a
// crashed runtime cannot take the runner down, and give loopback round trips room. `npm test`
// runs test/faults on its own afterwards, one file at a time: each drill runs a whole runtime with
// its modules, and two at once on 2 cores distort the timings the drills depend on.
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
