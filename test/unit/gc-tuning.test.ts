import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// A child that makes old-generation garbage (arrays surviving two scavenges, then dropped), with
// or without the tuning, and reports each incremental marking V8 starts.
const CHILD = `
const { withoutIncrementalMarking } = await import('./perf-cli/gc-tuning.ts');
if (process.argv[1] === 'off') withoutIncrementalMarking();
const keep = [];
for (let i = 0; i < 3000; i++) {
  keep.push(new Array(5000).fill({ i }));
  if (keep.length > 2000) keep.shift();
  if (i % 100 === 0) await new Promise((r) => setTimeout(r, 1));
}
`;

function markingStarts(mode: 'off' | 'default'): number {
  const res = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--trace-incremental-marking', '--input-type=module', '-e', CHILD, mode],
    { encoding: 'utf8', timeout: 60_000 },
  );
  expect(res.status, res.stderr).toBe(0);
  return (res.stdout.match(/\[IncrementalMarking\] Start \(/g) ?? []).length;
}

describe('withoutIncrementalMarking', () => {
  it('stops V8 from starting incremental marking, which it otherwise does on the same allocations', () => {
    expect(markingStarts('default')).toBeGreaterThan(0);
    expect(markingStarts('off')).toBe(0);
  });
});
