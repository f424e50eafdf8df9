import { z } from 'zod';
import { EdgePerfError } from '../../modules/common/index.js';
import type { RunSummary } from '../analysis/summary-types.js';
import type { SweepResult } from '../analysis/sweep-types.js';

/** What `edgeperf report` and {@link renderHtmlReport} accept. */
export type ReportInput = RunSummary | readonly RunSummary[] | SweepResult;

const num = z.number();
const rate = z.object({ messages: num, ratePerSec: num, throughputKBps: num });
const latency = z.object({ min: num, avg: num, p50: num, p95: num, p99: num, max: num });
const integrity = z.object({
  sent: num,
  delivered: num,
  lost: num,
  duplicates: num,
  outOfOrder: num,
  expired: num,
});
const gappy = z.array(num.nullable());
// Only what the report reads is checked; other fields pass through untouched (the contract grows).
const summarySchema = z.object({
  mode: z.string(),
  runId: z.string(),
  config: z.object({
    burstLength: num,
    targetRate: num,
    payloadLength: num,
    maxUpstreamBatchSize: num,
    transport: z.string(),
    bursts: num.optional(),
    appBatch: z.object({ maxMessages: num, maxBytes: num, maxWaitTimeInMs: num }).optional(),
  }),
  source: rate,
  upstream: rate.extend({ hubMessages: num, meteredUnits4KB: num }),
  latencyMs: latency,
  queue: z.object({ peakLength: num, samples: num }),
  integrity,
  faults: z.array(z.object({ fault: z.string(), atSecs: num, detail: z.string() })).optional(),
  partial: z.boolean().optional(),
  bursts: z
    .array(
      z.object({
        burst: num,
        messages: num,
        durationMs: num,
        upstreamRatePerSec: num,
        latencyMs: latency,
        integrity,
      }),
    )
    .optional(),
  series: z
    .object({
      t: z.array(num),
      sourceRate: gappy,
      upstreamRate: gappy,
      queueLength: gappy,
      latencyP50: gappy,
      latencyP99: gappy,
    })
    .optional(),
  latencyHistogram: z.object({ boundsMs: z.array(num), counts: z.array(num) }).optional(),
});
const sweepSchema = z.object({
  kind: z.literal('sweep'),
  axes: z.array(z.string()),
  cells: z.array(
    z.object({ params: z.record(z.string(), z.union([z.string(), num])), summary: summarySchema }),
  ),
});

const EXPECTED =
  'expected the --json summary of edgeperf local/run, an array of them, or an edgeperf sweep result';

/**
 * Checks parsed JSON from `source` (a file name) is a report input and returns it unchanged.
 * @throws EdgePerfError(E_ARGS, exit 2), one line naming the source, what was expected and the
 *   first field that did not fit.
 */
export function parseReportInput(value: unknown, source: string): ReportInput {
  const isSweep =
    typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'sweep';
  const schema = isSweep ? sweepSchema : Array.isArray(value) ? z.array(summarySchema).min(1) : summarySchema;
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    throw new EdgePerfError('E_ARGS', `${source}: ${EXPECTED}; at ${where}: ${issue?.message ?? 'invalid'}`, {
      exitCode: 2,
    });
  }
  return value as ReportInput;
}

/**
 * Parses JSON text from `source` with {@link parseReportInput}.
 * @throws EdgePerfError(E_ARGS, exit 2) when the text is not JSON or not a report input.
 */
export function parseReportJson(text: string, source: string): ReportInput {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EdgePerfError('E_ARGS', `${source}: not JSON (${(err as Error).message}); ${EXPECTED}`, {
      exitCode: 2,
    });
  }
  return parseReportInput(value, source);
}
