import { progressBarText } from '../perf-cli/render/progress-bar.js';

// The bench's stderr: its progress lines, each run numbered, and on a terminal a bar that follows
// the messages counted in the running run (a full bench takes about 12 minutes).

/** Where progress goes: stderr, or anything with its `write` and `isTTY`. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

/** The bench's progress output. */
export interface BenchProgress {
  /** A progress line; one starting with `▶` opens a run and gets its number, `[k/N]`. */
  line(text: string): void;
  /** How far the running run is (`done` of `total` `unit`); redrawn in place on a terminal only. */
  count(done: number, total: number, unit: string): void;
}

/** Progress for a bench of `totalRuns` runs, written to `stream`. */
export function benchProgress(stream: ProgressStream, totalRuns: number): BenchProgress {
  let run = 0;
  let barShown = false;
  const clearBar = () => {
    if (barShown) stream.write('\r\x1b[K');
    barShown = false;
  };
  return {
    line(text) {
      clearBar();
      if (text.startsWith('▶')) {
        run++;
        stream.write(`[${run}/${totalRuns}] ${text}\n`);
      } else stream.write(`${text}\n`);
    },
    count(done, total, unit) {
      if (!stream.isTTY || total <= 0) return;
      const share = Math.min(1, Math.max(0, done / total));
      const bar = progressBarText(share);
      const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
      stream.write(
        `\r\x1b[K  [${bar}] ${(share * 100).toFixed(0).padStart(3)}%  ${fmt(Math.min(done, total))} of ${fmt(total)} ${unit}`,
      );
      barShown = true;
    },
  };
}
