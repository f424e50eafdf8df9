/**
 * The perf fields a measured message carries from the field to the analysis, so that loss,
 * duplicates, reordering and latency can be computed downstream from real messages.
 *
 * On the wire (simulator JSON body) they sit under the key `perf`:
 * `{"perf":{"sid":"s1","burst":1,"seq":42,"ts":1732000000000,"vc":0},"payload":"…"}`.
 */
export interface PerfFields {
  /** Session (run) id. */
  readonly sid: string;
  /** Burst number, from 1. */
  readonly burst: number;
  /** Gap-free sequence number within the burst, from 0. */
  readonly seq: number;
  /** Creation time, unix ms, taken when the message was built. */
  readonly ts: number;
  /** Timing violations so far in this burst (the schedule was late). */
  readonly vc?: number;
  /** Device (publisher) the simulator played. */
  readonly dev?: string;
}

/** Returns the perf fields of a decoded record, or undefined when absent or malformed. */
export function readPerfFields(value: unknown): PerfFields | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const perf = (value as { perf?: unknown }).perf;
  if (perf === null || typeof perf !== 'object') return undefined;
  const p = perf as Record<string, unknown>;
  if (typeof p.sid !== 'string' || !isInt(p.burst) || !isInt(p.seq) || typeof p.ts !== 'number')
    return undefined;
  return {
    sid: p.sid,
    burst: p.burst,
    seq: p.seq,
    ts: p.ts,
    ...(isInt(p.vc) ? { vc: p.vc } : {}),
    ...(typeof p.dev === 'string' ? { dev: p.dev } : {}),
  };
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}
