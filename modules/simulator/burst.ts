import { EdgePerfError, type PerfFields, toError } from '../common/index.js';
import { PayloadBuilder } from './payload.js';
import { type BurstSettings, defaultTopicFor } from './settings.js';

/**
 * Publishes one message; resolves when the broker acknowledged it (QoS 1 PUBACK). Once `publish`
 * resolves the body belongs to the engine again, which writes the next messages into it: a
 * publisher that keeps a body after the acknowledgement must copy it.
 */
export interface BurstPublisher {
  publish(topic: string, body: Buffer): Promise<void>;
}

/** Time sources of the engine, injectable for tests. */
export interface BurstClock {
  /** Monotonic ms for the schedule; default `performance.now()`. */
  monotonicMs(): number;
  /** Unix ms for `perf.ts`; default `Date.now()`. */
  wallMs(): number;
}

/** What the engine is doing. */
export type SimulatorState = 'idle' | 'running' | 'waiting' | 'stopping';

/** The outcome of one burst. */
export interface BurstResult {
  readonly sessionId: string;
  /** Burst number, from 1. */
  readonly burst: number;
  /** Messages built and handed to the publisher. */
  readonly published: number;
  /** Messages acknowledged by the broker. */
  readonly acknowledged: number;
  /** Publishes that failed. */
  readonly failed: number;
  /** Publishes neither acknowledged nor failed when the burst ended (only after `stop`). */
  readonly pending: number;
  /** Messages published more than `lateToleranceMs` after their due time. */
  readonly violations: number;
  /** Largest delay of a publish behind its due time, ms (0 when unpaced). */
  readonly maxLateMs: number;
  /** Burst start (unix ms). */
  readonly startedAt: number;
  /** From burst start to the last acknowledgement, ms. */
  readonly durationMs: number;
  /** Acknowledged messages per second of `durationMs` (the achieved rate). */
  readonly ratePerSec: number;
  /** Body bytes acknowledged. */
  readonly bytes: number;
  /** True when `stop` cut the burst short. */
  readonly stopped: boolean;
}

/** A snapshot for `getStats`, reported properties and the CLI's JSON line. */
export interface SimulatorStats {
  readonly state: SimulatorState;
  /** Session of the current or last run; undefined before the first start. */
  readonly sessionId?: string;
  /** Settings of the current or last run. */
  readonly settings?: BurstSettings;
  /** Burst running or last run, from 1; 0 before the first. */
  readonly burst: number;
  /** Messages acknowledged in the current or last run, all bursts. */
  readonly messagesSent: number;
  /** Failed publishes in the run. */
  readonly messagesFailed: number;
  /** Timing violations in the run. */
  readonly violations: number;
  /** Achieved rate of the burst running (so far) or of the last burst, msg/s. */
  readonly ratePerSec: number;
  /** Completed bursts of the run, in order. */
  readonly bursts: readonly BurstResult[];
}

/** A started run. */
export interface RunHandle {
  readonly sessionId: string;
  /** Resolves with the completed bursts when the run ends (all bursts done, or `stop`); never rejects. */
  readonly done: Promise<readonly BurstResult[]>;
}

/** Options of {@link BurstEngine}. */
export interface BurstEngineOptions {
  /** Where messages go. */
  readonly publisher: BurstPublisher;
  /**
   * Topic template; `{device}` and `{session}` are replaced per message. Default: per format,
   * `sim/{device}/telemetry` (json) or `spBv1.0/edgeperf/DDATA/simulator/{device}` (sparkplug).
   */
  readonly topic?: string;
  /** Publishes awaiting acknowledgement at once; bounds memory when the broker is slow; default 100. */
  readonly maxInFlight?: number;
  /** Messages sent back to back before yielding to the event loop; default 256. */
  readonly maxPerTick?: number;
  /** Injected clock; default performance.now() and Date.now(). */
  readonly clock?: BurstClock;
  /** Called after each burst (reported properties, logs); errors thrown here go to `onError`. */
  readonly onBurstEnd?: (result: BurstResult) => void;
  /** Background failures (first failed publish of a burst, hook errors); default: ignored. */
  readonly onError?: (err: Error) => void;
}

const DEFAULT_MAX_IN_FLIGHT = 100;
const DEFAULT_MAX_PER_TICK = 256;

const systemClock: BurstClock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
};

interface BurstCounters {
  published: number;
  acknowledged: number;
  failed: number;
  violations: number;
  maxLateMs: number;
  bytes: number;
  startMono: number;
  lastAckMono: number;
}

/**
 * The burst source: publishes `burstNumber` bursts of `burstLength` messages on a schedule.
 *
 * Pacing: message n of a burst is due n×1000/targetRate ms after the burst start. The engine
 * sleeps on a timer until the next due time, then publishes every message already due (at
 * 2,000 msg/s, ~2 per 1 ms tick), so there is no busy loop and idle CPU is near zero. A message
 * published more than `lateToleranceMs` after its due time counts as a violation; the schedule
 * stays anchored at the burst start, so late messages are sent at once until it has caught up.
 * targetRate 0 publishes as fast as acknowledgements allow.
 *
 * Backpressure: at most `maxInFlight` publishes await acknowledgement; the engine waits for one
 * to settle before building the next message, so memory stays bounded when the broker is slow
 * (late messages then count as violations).
 */
export class BurstEngine {
  private readonly options: BurstEngineOptions;
  private readonly clock: BurstClock;
  private readonly maxInFlight: number;
  private readonly maxPerTick: number;
  private state: SimulatorState = 'idle';
  private settings: BurstSettings | undefined;
  private abort: AbortController | undefined;
  private runDone: Promise<readonly BurstResult[]> | undefined;
  private results: BurstResult[] = [];
  private current: BurstCounters | undefined;
  private burst = 0;
  private inFlight = 0;
  // Bumped per run so that acknowledgements a stopped run left behind free no slot of the next one.
  private generation = 0;
  private slotWaiter: (() => void) | undefined;

  constructor(options: BurstEngineOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.maxPerTick = options.maxPerTick ?? DEFAULT_MAX_PER_TICK;
  }

  /** True while a run is going (bursting, waiting between bursts or stopping). */
  get running(): boolean {
    return this.state !== 'idle';
  }

  /**
   * Starts a run in the background.
   * @throws EdgePerfError `E_BUSY` when a run is already going (call `stop` first).
   */
  start(settings: BurstSettings): RunHandle {
    if (this.state !== 'idle') {
      throw new EdgePerfError(
        'E_BUSY',
        `a run (session ${this.settings?.sessionId}) is already going; stop it first`,
      );
    }
    this.settings = settings;
    this.results = [];
    this.current = undefined;
    this.burst = 0;
    this.generation++;
    this.inFlight = 0;
    this.abort = new AbortController();
    this.state = 'running';
    const signal = this.abort.signal;
    this.runDone = this.run(settings, signal).then(
      () => this.finishRun(),
      (err: unknown) => {
        this.options.onError?.(toError(err));
        return this.finishRun();
      },
    );
    return { sessionId: settings.sessionId, done: this.runDone };
  }

  /**
   * Stops the run: no further messages are built; publishes in flight are not awaited.
   * Resolves when the run has ended; a no-op when idle.
   */
  async stop(): Promise<void> {
    if (this.state === 'idle' || this.abort === undefined) return;
    this.state = 'stopping';
    this.abort.abort();
    this.slotWaiter?.();
    await this.runDone;
  }

  /** A snapshot of the current or last run. */
  stats(): SimulatorStats {
    const results = this.results;
    const sum = (f: (r: BurstResult) => number) => results.reduce((a, r) => a + f(r), 0);
    const cur = this.current;
    const live = cur === undefined ? undefined : this.liveRate(cur);
    const last = results.at(-1);
    return {
      state: this.state,
      ...(this.settings === undefined ? {} : { sessionId: this.settings.sessionId, settings: this.settings }),
      burst: this.burst,
      messagesSent: sum((r) => r.acknowledged) + (cur?.acknowledged ?? 0),
      messagesFailed: sum((r) => r.failed) + (cur?.failed ?? 0),
      violations: sum((r) => r.violations) + (cur?.violations ?? 0),
      ratePerSec: live ?? last?.ratePerSec ?? 0,
      bursts: [...results],
    };
  }

  private finishRun(): readonly BurstResult[] {
    this.state = 'idle';
    this.current = undefined;
    return [...this.results];
  }

  private liveRate(c: BurstCounters): number {
    return rate(c.acknowledged, c.lastAckMono - c.startMono);
  }

  private async run(s: BurstSettings, signal: AbortSignal): Promise<void> {
    const builder = new PayloadBuilder(s.format, s.payloadLength);
    const devices = Array.from({ length: s.devices }, (_, i) => deviceId(i));
    const template = this.options.topic ?? defaultTopicFor(s.format);
    const topics = devices.map((d) =>
      template.replaceAll('{device}', d).replaceAll('{session}', s.sessionId),
    );
    for (let burst = 1; burst <= s.burstNumber && !signal.aborted; burst++) {
      if (burst > 1 && s.burstWaitMs > 0) {
        this.state = 'waiting';
        await sleep(s.burstWaitMs, signal);
        if (signal.aborted) break;
      }
      this.state = 'running';
      this.burst = burst;
      const result = await this.runBurst(s, burst, builder, devices, topics, signal);
      this.results.push(result);
      this.current = undefined;
      try {
        this.options.onBurstEnd?.(result);
      } catch (err) {
        this.options.onError?.(toError(err));
      }
    }
  }

  private async runBurst(
    s: BurstSettings,
    burst: number,
    builder: PayloadBuilder,
    devices: readonly string[],
    topics: readonly string[],
    signal: AbortSignal,
  ): Promise<BurstResult> {
    const startMono = this.clock.monotonicMs();
    const startedAt = this.clock.wallMs();
    const c: BurstCounters = {
      published: 0,
      acknowledged: 0,
      failed: 0,
      violations: 0,
      maxLateMs: 0,
      bytes: 0,
      startMono,
      lastAckMono: startMono,
    };
    this.current = c;
    const intervalMs = s.targetRate > 0 ? 1000 / s.targetRate : 0;
    let firstFailure = true;
    const generation = this.generation;
    const onAck = (body: Buffer) => {
      c.acknowledged++;
      c.bytes += body.length;
      builder.release(body);
      c.lastAckMono = this.clock.monotonicMs();
      this.releaseSlot(generation);
    };
    const onFail = (err: unknown) => {
      c.failed++;
      if (firstFailure) {
        firstFailure = false;
        this.options.onError?.(toError(err));
      }
      this.releaseSlot(generation);
    };

    let n = 0;
    while (n < s.burstLength && !signal.aborted) {
      const now = this.clock.monotonicMs();
      // Messages 0..due-1 are due by now; the schedule is anchored at the burst start.
      const due =
        intervalMs === 0
          ? s.burstLength
          : Math.min(s.burstLength, Math.floor((now - startMono) / intervalMs) + 1);
      if (n >= due) {
        // ceil and ≥1 ms: a fractional or zero timeout would spin (and never advance fake timers).
        await sleep(Math.max(1, Math.ceil(startMono + n * intervalMs - now)), signal);
        continue;
      }
      let sentThisTick = 0;
      while (n < due && sentThisTick < this.maxPerTick && !signal.aborted) {
        if (this.inFlight >= this.maxInFlight) {
          await this.waitForSlot(signal);
          continue;
        }
        const sendMono = this.clock.monotonicMs();
        if (intervalMs > 0) {
          const lateMs = sendMono - (startMono + n * intervalMs);
          if (lateMs > c.maxLateMs) c.maxLateMs = lateMs;
          if (lateMs > s.lateToleranceMs) c.violations++;
        }
        const seq = n;
        const dev = devices[seq % devices.length] as string;
        const topic = topics[seq % topics.length] as string;
        const perf: PerfFields = {
          sid: s.sessionId,
          burst,
          seq,
          ts: this.clock.wallMs(),
          vc: c.violations,
          dev,
        };
        const body = builder.build(perf);
        this.inFlight++;
        c.published++;
        n++;
        sentThisTick++;
        let publishing: Promise<void>;
        try {
          publishing = this.options.publisher.publish(topic, body);
        } catch (err) {
          publishing = Promise.reject(toError(err));
        }
        publishing.then(() => onAck(body), onFail);
      }
      // A long run of due messages (unpaced, or catching up) must not starve timers and I/O.
      if (sentThisTick >= this.maxPerTick) await yieldToLoop();
    }
    // Wait for the burst's acknowledgements, unless stopped (a dead broker must not hang stop).
    while (this.inFlight > 0 && !signal.aborted) await this.waitForSlot(signal);

    return {
      sessionId: s.sessionId,
      burst,
      published: c.published,
      acknowledged: c.acknowledged,
      failed: c.failed,
      pending: c.published - c.acknowledged - c.failed,
      violations: c.violations,
      maxLateMs: Math.round(c.maxLateMs * 10) / 10,
      startedAt,
      durationMs: c.lastAckMono - startMono,
      ratePerSec: this.liveRate(c),
      bytes: c.bytes,
      stopped: signal.aborted,
    };
  }

  private releaseSlot(generation: number): void {
    if (generation !== this.generation) return;
    this.inFlight--;
    const w = this.slotWaiter;
    this.slotWaiter = undefined;
    w?.();
  }

  private waitForSlot(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.slotWaiter = resolve;
    });
  }
}

/** Device id `sim-<i+1>` of the i-th simulated device (round-robin target of message i). */
export function deviceId(index: number): string {
  return `sim-${index + 1}`;
}

function rate(messages: number, durationMs: number): number {
  if (messages === 0) return 0;
  // A 1 ms floor keeps a one-message burst finite.
  return Math.round((messages / (Math.max(durationMs, 1) / 1000)) * 10) / 10;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function yieldToLoop(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
