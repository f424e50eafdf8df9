/**
 * The bar of a one-line progress display: `share` (0–1, clamped) of `width` cells as `#`, the rest
 * as `.`. Shared by `edgeperf`'s measuring commands and the bench.
 */
export function progressBarText(share: number, width = 30): string {
  const done = Math.min(1, Math.max(0, share));
  return '#'.repeat(Math.round(done * width)).padEnd(width, '.');
}
