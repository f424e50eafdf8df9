import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** One reading of a process's CPU and memory counters from /proc (Linux). */
export interface ProcSample {
  /** User + system CPU time so far, ms. */
  readonly cpuMs: number;
  /** Resident set now (VmRSS), bytes. */
  readonly rssBytes: number;
  /** Peak resident set since start (VmHWM), bytes. */
  readonly peakRssBytes: number;
}

let ticksPerSec: number | undefined;

/** The machine's CPU time counters from the `cpu` line of /proc/stat, in clock ticks. */
export interface MachineCpuTimes {
  /** Every state summed (user … steal). */
  readonly total: number;
  /** Time the hypervisor ran something else while this machine's vCPUs wanted to run. */
  readonly steal: number;
}

/**
 * Parses the first line of /proc/stat (`cpu user nice system idle iowait irq softirq steal …`).
 * @returns undefined when the line is not there (not Linux).
 */
export function parseMachineCpuTimes(stat: string): MachineCpuTimes | undefined {
  const line = stat.split('\n', 1)[0] ?? '';
  const fields = line.trim().split(/\s+/);
  if (fields[0] !== 'cpu') return undefined;
  // user nice system idle iowait irq softirq steal: guest time is already inside user and nice.
  const ticks = fields.slice(1, 9).map(Number);
  if (ticks.length < 8 || ticks.some((t) => !Number.isFinite(t))) return undefined;
  return { total: ticks.reduce((a, b) => a + b, 0), steal: ticks[7] ?? 0 };
}

/** The machine's CPU counters now; undefined where /proc/stat cannot be read. */
export function sampleMachineCpu(): MachineCpuTimes | undefined {
  try {
    return parseMachineCpuTimes(readFileSync('/proc/stat', 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Share of the machine's CPU time stolen by the hypervisor between two samples, %. On a shared VM
 * stolen time is still counted as the running process's CPU, which inflates every CPU figure.
 */
export function stealPercent(before: MachineCpuTimes, after: MachineCpuTimes): number {
  const total = after.total - before.total;
  return total > 0 ? (100 * (after.steal - before.steal)) / total : 0;
}

/** Clock ticks per second (`getconf CLK_TCK`), 100 when it cannot be read. */
export function clockTicksPerSec(): number {
  if (ticksPerSec === undefined) {
    try {
      ticksPerSec = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSec = 100;
    }
  }
  return ticksPerSec;
}

/**
 * Parses `/proc/<pid>/stat` text into user+system CPU ms. The command name (field 2) may hold
 * spaces and parentheses, so fields are counted from the last `)`.
 * @throws Error when the text is not a stat line.
 */
export function parseProcStatCpuMs(stat: string, ticks: number): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime))
    throw new Error(`not a /proc stat line: ${stat.slice(0, 40)}`);
  return ((utime + stime) * 1000) / ticks;
}

/** Reads a `kB` field such as `VmHWM` from `/proc/<pid>/status` text, in bytes; 0 when absent. */
export function parseStatusKb(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Samples a process; undefined when it has exited or /proc is unavailable. */
export function sampleProcess(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return {
      cpuMs: parseProcStatCpuMs(stat, clockTicksPerSec()),
      rssBytes: parseStatusKb(status, 'VmRSS'),
      peakRssBytes: parseStatusKb(status, 'VmHWM'),
    };
  } catch {
    return undefined;
  }
}

let gcFunction: (() => void) | undefined;

/**
 * Runs a full garbage collection of the bench process, which hosts the edge runtime: called
 * before each measured run so that the garbage of earlier runs is not collected (and its CPU
 * counted as edgeHub's) in the middle of the next one.
 */
export function collectGarbage(): void {
  if (gcFunction === undefined) {
    // `--expose-gc` without restarting node: the flag applies to contexts created after it.
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  gcFunction();
}
