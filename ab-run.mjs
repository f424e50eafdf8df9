import { withoutIncrementalMarking } from './dist/perf-cli/gc-tuning.js';
import { BenchRunner } from './dist/bench/runner.js';
withoutIncrementalMarking();
const r = new BenchRunner({ distRoot: '/work/main/dist', messages: 120000, progress: () => {} });
const t = await r.throughput('translator', 1024, 'raw-mqtt');
console.log(JSON.stringify({ rate: t.msgPerSec, cpu: t.cpuMsPer1000, rt: t.runtimeCpuMsPer1000, mbps: t.logicalMBps, rss: t.peakRssMB }));
process.exit(0);
