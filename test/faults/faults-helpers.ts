import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type MosquittoBroker, startMosquittoInTempDir } from '../../perf-cli/mosquitto-broker.js';

/** Root of the repository (tests run after `npm run build`, so dist/ exists). */
export const ROOT = resolve(import.meta.dirname, '..', '..');
/** The CLI users run the same drills with. */
export const EDGEPERF = join(ROOT, 'dist', 'perf-cli', 'main.js');
export const MOSQUITTO = '/usr/sbin/mosquitto';

/** Every file of the suite: the last one to finish prints the table (see {@link recordFigures}). */
export const SUITE_FILES = ['cli-kill', 'cli-outage', 'components', 'bad-input'] as const;
export type SuiteFile = (typeof SUITE_FILES)[number];

/** Counts one drill or one input kind contributes to the summary. */
export interface Figures {
  readonly name: string;
  /** Generated or scripted cases tried. */
  cases: number;
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  expired: number;
  /** Free text: what was asserted, what was scaled. */
  note?: string;
}

/** A row of figures with zeros. */
export function figures(name: string, init: Partial<Omit<Figures, 'name'>> = {}): Figures {
  return { name, cases: 0, sent: 0, delivered: 0, lost: 0, duplicated: 0, expired: 0, ...init };
}

// Forks of one vitest run share the parent, so its pid keys this run's summary file.
const SUMMARY_FILE = join(tmpdir(), `edgeperf-faults-${process.ppid}.jsonl`);
/** Where the last file writes the printed table (stable name, for CI artefacts). */
export const SUMMARY_TABLE_FILE = join(tmpdir(), 'edgeperf-faults-summary.txt');

/**
 * Appends a file's figures to this run's summary; when every file of the suite has reported, prints
 * the table (cases, sent, delivered, lost, duplicated, expired) and writes it to {@link SUMMARY_TABLE_FILE}.
 */
export function recordFigures(file: SuiteFile, rows: readonly Figures[]): void {
  appendFileSync(SUMMARY_FILE, `${JSON.stringify({ file, rows })}\n`);
  const entries = readFileSync(SUMMARY_FILE, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { file: SuiteFile; rows: Figures[] });
  const done = new Set(entries.map((e) => e.file));
  const complete = SUITE_FILES.every((f) => done.has(f));
  const table = renderTable(
    entries.flatMap((e) => e.rows),
    complete,
  );
  writeFileSync(SUMMARY_TABLE_FILE, table);
  if (complete) rmSync(SUMMARY_FILE, { force: true });
  // The CLI's test output is the place a CI reader looks for these figures.
  console.log(table);
}

function renderTable(rows: readonly Figures[], complete: boolean): string {
  const cols = ['cases', 'sent', 'delivered', 'lost', 'duplicated', 'expired'] as const;
  const total = figures('TOTAL');
  for (const r of rows) for (const c of cols) total[c] += r[c];
  const all = [...rows, total];
  const w0 = Math.max(...all.map((r) => r.name.length), 10);
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w0) : c.padStart(10))).join(' ');
  const out = [
    `edgeperf fault & bad-input suite — ${complete ? 'all files reported' : 'partial (files still running)'}`,
    line(['drill / input', ...cols]),
    ...all.map((r) => line([r.name, ...cols.map((c) => String(r[c]))])),
    ...rows.filter((r) => r.note).map((r) => `  ${r.name}: ${r.note}`),
  ];
  return `${out.join('\n')}\n`;
}

/** What `edgeperf local --json` printed and how it exited. */
export interface LocalRun {
  readonly code: number | null;
  readonly summary: LocalSummary | undefined;
  readonly stderr: string;
  readonly wallMs: number;
}

/** The parts of the `--json` summary the drills read (architecture.md). */
export interface LocalSummary {
  readonly source: { messages: number };
  readonly upstream: { messages: number; hubMessages: number };
  readonly queue: { peakLength: number; samples: number };
  readonly integrity: {
    sent: number;
    delivered: number;
    lost: number;
    duplicates: number;
    outOfOrder: number;
    expired: number;
  };
  readonly faults?: { fault: string; atSecs: number; detail: string }[];
  readonly partial?: boolean;
}

const running = new Set<ChildProcess>();

/** SIGKILLs every `edgeperf local` still running (afterAll; its runtime dies with it via the orphan guard). */
export function killRunningCli(): void {
  for (const c of running) c.kill('SIGKILL');
  running.clear();
}

/**
 * Runs `node dist/perf-cli/main.js local ARGS --json` and parses its one JSON line.
 * `onStderrLine` sees each log line (e.g. to act when a fault is injected).
 */
export function runEdgeperfLocal(
  args: readonly string[],
  opts: { timeoutMs?: number; onStderrLine?: (line: string) => void } = {},
): Promise<LocalRun> {
  if (!existsSync(EDGEPERF)) throw new Error(`${EDGEPERF} is missing: run npm run build first`);
  const started = Date.now();
  const child = spawn(process.execPath, [EDGEPERF, 'local', ...args, '--json'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  let partialLine = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    const text = d.toString();
    stderr += text;
    const lines = (partialLine + text).split('\n');
    partialLine = lines.pop() ?? '';
    for (const l of lines) opts.onStderrLine?.(l);
  });
  const timer = setTimeout(() => child.kill('SIGINT'), opts.timeoutMs ?? 120_000);
  return new Promise((resolveRun) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      const line = stdout.trim().split('\n').at(-1) ?? '';
      let summary: LocalSummary | undefined;
      try {
        summary = line ? (JSON.parse(line) as LocalSummary) : undefined;
      } catch {
        summary = undefined;
      }
      resolveRun({ code, summary, stderr, wallMs: Date.now() - started });
    });
  });
}

export { freePort } from '../../perf-cli/local-ports.js';

/**
 * A real Mosquitto on 127.0.0.1 (ephemeral port) with persistence, so a restart keeps sessions
 * and queued QoS 1 messages, and `$SYS` every second (drills read the broker's stored-message
 * count). `maxInflightMessages` 0 (default) = unlimited: deferred PUBACKs of a whole batch need at
 * least the batch size, and an overload's backlog must stay at the broker.
 */
export function startMosquitto(options: { maxInflightMessages?: number } = {}): Promise<MosquittoBroker> {
  return startMosquittoInTempDir({ ...options, sysIntervalSecs: 1 });
}

/** `--set` assignments that point the translator and the simulator at an external broker instead of the embedded one. */
export function externalBrokerSets(url: string): string[] {
  return [
    'translator.env.EmbeddedBrokerEnabled=false',
    // Removing the port keeps edgeperf local from relocating the URL to a port of its own.
    'translator.env.EmbeddedBrokerPort=',
    `translator.env.SourceUrl=${url}`,
    `simulator.env.SourceBrokerUrl=${url}`,
  ].flatMap((s) => ['--set', s]);
}

/** Reads a process's resident set size from /proc, bytes (undefined when it is gone). */
export function rssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
