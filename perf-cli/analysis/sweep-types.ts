import type { RunSummary } from './summary-types.js';

/**
 * The JSON result of `edgeperf sweep`: one fresh run per cell of a grid over comma-listed
 * settings (issue 5). `edgeperf report` plots each cell's rate and latency against every axis.
 */
export interface SweepResult {
  readonly kind: 'sweep';
  /**
   * The swept settings in grid order, named as the `params` keys (e.g. `payloadLength`,
   * `maxUpstreamBatchSize`, `transport`, `modules`).
   */
  readonly axes: readonly string[];
  readonly cells: readonly SweepCell[];
}

/** One grid cell: the value of every axis for this run, and the run's summary. */
export interface SweepCell {
  /** Axis name → value; numbers for numeric settings, strings for e.g. `transport`. */
  readonly params: Readonly<Record<string, string | number>>;
  readonly summary: RunSummary;
}

/** True when `value` has the shape of a {@link SweepResult} at its top level (`kind: 'sweep'`). */
export function isSweepResult(value: unknown): value is SweepResult {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'sweep';
}
