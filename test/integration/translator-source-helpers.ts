import { ENVELOPE_PROPS, perfFieldsOfBody } from '../../modules/common/index.js';
import type { UpstreamMessage, UpstreamTransport } from '../../modules/translator/upstream-transport.js';

/** How the test transport answers sends. */
export type AckMode = { kind: 'ack'; delayMs?: number } | { kind: 'withhold' } | { kind: 'fail' };

/** An UpstreamTransport that records what it gets and acks (or not) as the test says. */
export class RecordingTransport implements UpstreamTransport {
  readonly name = 'raw-mqtt' as const;
  readonly sent: { output: string; message: UpstreamMessage }[] = [];
  mode: AckMode;
  inFlight = 0;
  maxInFlight = 0;

  constructor(mode: AckMode = { kind: 'ack' }) {
    this.mode = mode;
  }

  async connect(): Promise<void> {}
  async close(): Promise<void> {}

  async send(output: string, message: UpstreamMessage): Promise<void> {
    const mode = this.mode;
    if (mode.kind === 'fail') throw new Error('upstream unavailable');
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (mode.kind === 'withhold') await new Promise<void>(() => {});
      else if (mode.delayMs !== undefined) await new Promise((r) => setTimeout(r, mode.delayMs));
      // A copy, as the wire takes one: the batcher reuses an acknowledged body.
      this.sent.push({ output, message: { ...message, body: Buffer.from(message.body) } });
    } finally {
      this.inFlight--;
    }
  }

  /** Sequence numbers of every telemetry record acknowledged so far. */
  seqs(output = 'output1'): number[] {
    return this.sent
      .filter((s) => s.output === output)
      .flatMap((s) => perfFieldsOfBody(s.message.body, s.message.properties[ENVELOPE_PROPS.encoding]))
      .map((p) => p.seq);
  }
}

/** Polls until `predicate` holds; throws with `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A simulator-style JSON body carrying perf fields. */
export function perfBody(seq: number, payloadBytes = 64): Buffer {
  return Buffer.from(
    JSON.stringify({ perf: { sid: 'it', burst: 1, seq, ts: Date.now() }, payload: 'p'.repeat(payloadBytes) }),
  );
}
