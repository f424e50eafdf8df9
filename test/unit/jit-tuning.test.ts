import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// A child that runs a lukewarm function (a few times the default interrupt budget of bytecode)
// and a hot one (many times the raised budget), with or without the tuning, and reports which
// of the two V8 optimised.
const CHILD = `
const { withFewerOptimisations } = await import('./perf-cli/jit-tuning.ts');
if (process.argv[1] === 'tuned') withFewerOptimisations();
const data = Array.from({ length: 64 }, (_, i) => i);
function lukewarm(a) { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * 3; return s; }
function hot(a) { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * 5; return s; }
let x = 0;
for (let i = 0; i < LUKEWARM_CALLS; i++) { x += lukewarm(data); if (i % 50 === 0) await new Promise((r) => setImmediate(r)); }
for (let i = 0; i < 200000; i++) x += hot(data);
await new Promise((r) => setTimeout(r, 200));
console.log('sum', x);
`;

function optimised(mode: 'tuned' | 'default', lukewarmCalls: number): string[] {
  const res = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--trace-opt',
      '--input-type=module',
      '-e',
      CHILD.replace('LUKEWARM_CALLS', String(lukewarmCalls)),
      mode,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  expect(res.status, res.stderr).toBe(0);
  const names = new Set<string>();
  for (const m of res.stdout.matchAll(/completed (?:compiling|optimizing) [^<]*<JSFunction (lukewarm|hot)/g))
    names.add(m[1] as string);
  return [...names].sort();
}

describe('withFewerOptimisations', () => {
  it('leaves lukewarm code unoptimised and still optimises hot code', () => {
    // V8 optimised \`lukewarm\` after 30–50 calls by default and after 400–500 with the tuning.
    const calls = 150;
    expect(optimised('default', calls)).toEqual(['hot', 'lukewarm']);
    expect(optimised('tuned', calls)).toEqual(['hot']);
  });
});
