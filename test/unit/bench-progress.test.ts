import { describe, expect, it } from 'vitest';
import { benchProgress } from '../../bench/progress.js';

function stream(isTTY: boolean) {
  const written: string[] = [];
  return { isTTY, written, write: (text: string) => written.push(text) };
}

describe("the bench's progress", () => {
  it('numbers the runs and passes other lines on', () => {
    const s = stream(false);
    const p = benchProgress(s, 3);
    p.line('▶ ingest-limit 1024 B × 100');
    p.line('  30,000 msg/s');
    p.line('▶ naive 1024 B × 100');
    expect(s.written).toEqual([
      '[1/3] ▶ ingest-limit 1024 B × 100\n',
      '  30,000 msg/s\n',
      '[2/3] ▶ naive 1024 B × 100\n',
    ]);
  });

  it('draws a bar on a terminal only, and clears it before the next line', () => {
    const tty = stream(true);
    const p = benchProgress(tty, 1);
    p.count(60_000, 120_000, 'messages');
    expect(tty.written.at(-1)).toBe(
      `\r\x1b[K  [${'#'.repeat(15)}${'.'.repeat(15)}]  50%  60,000 of 120,000 messages`,
    );
    p.count(200, 100, 's');
    expect(tty.written.at(-1)).toContain(`[${'#'.repeat(30)}] 100%  100 of 100 s`);
    p.line('  done');
    expect(tty.written.slice(-2)).toEqual(['\r\x1b[K', '  done\n']);
    const pipe = stream(false);
    benchProgress(pipe, 1).count(1, 2, 'messages');
    expect(pipe.written).toEqual([]);
  });
});
