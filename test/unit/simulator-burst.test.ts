import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readPerfFields } from '../../modules/common/index.js';
import { BurstEngine, type BurstPublisher } from '../../modules/simulator/burst.js';
import { type BurstSettings, parseBurstSettings } from '../../modules/simulator/settings.js';

interface Sent {
  topic: string;
  body: Buffer;
  at: number;
}

/**
 * Records publishes with the fake time they happened; acks after `ackDelayMs` (0 = at once).
 * Bodies are copied: after the ack the engine writes later messages into them.
 */
function recorder(ackDelayMs = 0): BurstPublisher & { sent: Sent[] } {
  const sent: Sent[] = [];
  return {
    sent,
    publish(topic, body) {
      sent.push({ topic, body: Buffer.from(body), at: Date.now() });
      if (ackDelayMs === 0) return Promise.resolve();
      return new Promise((r) => setTimeout(r, ackDelayMs));
    },
  };
}

const clock = { monotonicMs: () => Date.now(), wallMs: () => Date.now() };

function settings(over: Partial<BurstSettings>): BurstSettings {
  return parseBurstSettings({ sessionId: 's1', burstWaitMs: 0, lateToleranceMs: 0, ...over });
}

function perfOf(s: Sent) {
  const perf = readPerfFields(JSON.parse(s.body.toString('utf8')));
  if (perf === undefined) throw new Error('no perf fields');
  return perf;
}

describe('BurstEngine schedule', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('publishes message n at n×1000/rate ms after the burst start, without violations when on time', async () => {
    const pub = recorder();
    const engine = new BurstEngine({ publisher: pub, topic: 'sim/{device}/t', clock });
    const run = engine.start(settings({ burstLength: 10, targetRate: 100 }));
    await vi.advanceTimersByTimeAsync(200);
    const results = await run.done;
    expect(pub.sent.map((s) => s.at - 1_000_000)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    expect(results[0]?.violations).toBe(0);
    expect(results[0]?.acknowledged).toBe(10);
    expect(pub.sent.map((s) => perfOf(s).vc)).toEqual(Array(10).fill(0));
  });

  it('batches every due message into one timer tick at high rates (2,000 msg/s → 2 per ms)', async () => {
    const pub = recorder();
    const engine = new BurstEngine({ publisher: pub, topic: 't', clock });
    // 1 ms tolerance: a due time between ticks is served at the next 1 ms tick.
    const run = engine.start(settings({ burstLength: 2000, targetRate: 2000, lateToleranceMs: 1 }));
    await vi.advanceTimersByTimeAsync(1500);
    await run.done;
    const perMs = new Map<number, number>();
    for (const s of pub.sent) perMs.set(s.at, (perMs.get(s.at) ?? 0) + 1);
    // 2,000 messages over ~1 s of ticks: no tick was skipped and none sent more than was due.
    expect(pub.sent).toHaveLength(2000);
    expect(Math.max(...perMs.values())).toBe(2);
    expect(pub.sent.at(-1)?.at).toBe(1_000_000 + 1000); // message 1999 due at 999.5 ms → 1 ms tick
    const s = engine.stats();
    expect(s.violations).toBe(0);
    expect(s.ratePerSec).toBeCloseTo(2000, -1);
  });

  it('counts a late message as a violation and catches up without waiting', async () => {
    const sent: Sent[] = [];
    const pub: BurstPublisher = {
      publish(topic, body) {
        sent.push({ topic, body: Buffer.from(body), at: Date.now() });
        return Promise.resolve();
      },
    };
    // A clock that jumps 55 ms once, as a stalled event loop would.
    let skew = 0;
    const jumpy = {
      monotonicMs: () => Date.now() + skew,
      wallMs: () => Date.now() + skew,
    };
    const engine = new BurstEngine({ publisher: pub, topic: 't', clock: jumpy });
    const run = engine.start(settings({ burstLength: 10, targetRate: 100, lateToleranceMs: 5 }));
    await vi.advanceTimersByTimeAsync(20); // messages 0,1,2 on time
    // The timer for message 3 fires at 30 ms real, 85 ms on the engine's clock: 3..8 are due.
    skew = 55;
    await vi.advanceTimersByTimeAsync(100);
    await run.done;
    const perf = sent.map(perfOf);
    expect(perf.map((p) => p.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // 3..8 go out in one tick at 85 ms; 3..7 are 55..15 ms late (violations), 8 is exactly 5 ms
    // late (within tolerance), and 9 is on time again: the schedule caught up.
    expect(perf.map((p) => p.vc)).toEqual([0, 0, 0, 1, 2, 3, 4, 5, 5, 5]);
    const times = sent.map((s) => s.at - 1_000_000);
    expect(new Set(times.slice(3, 9))).toEqual(new Set([30]));
    expect(times[9]).toBe(35);
    expect(engine.stats().violations).toBe(5);
  });

  it('keeps seq gap-free from 0 within each burst and numbers bursts from 1', async () => {
    const pub = recorder();
    const engine = new BurstEngine({ publisher: pub, topic: 't', clock });
    const run = engine.start(
      settings({ burstLength: 50, burstNumber: 3, burstWaitMs: 100, targetRate: 1000 }),
    );
    await vi.advanceTimersByTimeAsync(1000);
    const results = await run.done;
    expect(results.map((r) => r.burst)).toEqual([1, 2, 3]);
    const perf = pub.sent.map(perfOf);
    for (const b of [1, 2, 3]) {
      expect(perf.filter((p) => p.burst === b).map((p) => p.seq)).toEqual([...Array(50).keys()]);
    }
    expect(new Set(perf.map((p) => p.sid))).toEqual(new Set(['s1']));
    // burstWaitMs separates the last ack of one burst and the start of the next.
    const firstOf2 = pub.sent.find((s) => perfOf(s).burst === 2);
    const lastOf1 = pub.sent.filter((s) => perfOf(s).burst === 1).at(-1);
    expect((firstOf2?.at ?? 0) - (lastOf1?.at ?? 0)).toBeGreaterThanOrEqual(100);
  });

  it('spreads messages round-robin across devices and topics', async () => {
    const pub = recorder();
    const engine = new BurstEngine({ publisher: pub, topic: 'plant/{device}/{session}', clock });
    const run = engine.start(settings({ burstLength: 6, targetRate: 0, devices: 3 }));
    await vi.advanceTimersByTimeAsync(10);
    await run.done;
    expect(pub.sent.map((s) => s.topic)).toEqual([
      'plant/sim-1/s1',
      'plant/sim-2/s1',
      'plant/sim-3/s1',
      'plant/sim-1/s1',
      'plant/sim-2/s1',
      'plant/sim-3/s1',
    ]);
    expect(pub.sent.map((s) => perfOf(s).dev)).toEqual([
      'sim-1',
      'sim-2',
      'sim-3',
      'sim-1',
      'sim-2',
      'sim-3',
    ]);
  });

  it('unpaced mode sends everything at once, bounded by maxInFlight, and counts no violations', async () => {
    const pub = recorder(10);
    const engine = new BurstEngine({ publisher: pub, topic: 't', clock, maxInFlight: 4 });
    const run = engine.start(settings({ burstLength: 20, targetRate: 0 }));
    await vi.advanceTimersByTimeAsync(0);
    expect(pub.sent).toHaveLength(4); // the in-flight bound holds the rest back
    await vi.advanceTimersByTimeAsync(100);
    const [r] = await run.done;
    expect(pub.sent).toHaveLength(20);
    expect(r?.violations).toBe(0);
    expect(r?.acknowledged).toBe(20);
    expect(r?.durationMs).toBe(50); // 5 waves of 4, 10 ms each
    expect(r?.ratePerSec).toBe(400);
  });

  it('stop ends the run promptly, even with acknowledgements outstanding', async () => {
    const pub: BurstPublisher = { publish: () => new Promise(() => {}) }; // a broker that never acks
    const engine = new BurstEngine({ publisher: pub, topic: 't', clock, maxInFlight: 2 });
    const run = engine.start(settings({ burstLength: 1000, targetRate: 100 }));
    await vi.advanceTimersByTimeAsync(50);
    expect(engine.stats().state).toBe('running');
    await engine.stop();
    const [r] = await run.done;
    expect(r?.stopped).toBe(true);
    expect(r?.pending).toBe(2);
    expect(engine.stats().state).toBe('idle');
  });

  it('a stopped run with unacknowledged publishes does not hold back the next run', async () => {
    let ackNothing = true;
    const sent: number[] = [];
    const pub: BurstPublisher = {
      publish: () => {
        sent.push(Date.now());
        return ackNothing ? new Promise(() => {}) : Promise.resolve();
      },
    };
    const engine = new BurstEngine({ publisher: pub, topic: 't', clock, maxInFlight: 3 });
    engine.start(settings({ burstLength: 100, targetRate: 0 }));
    await vi.advanceTimersByTimeAsync(10);
    expect(sent).toHaveLength(3);
    await engine.stop();
    ackNothing = false;
    const run = engine.start(settings({ burstLength: 10, targetRate: 0, sessionId: 's2' }));
    await vi.advanceTimersByTimeAsync(10);
    const [r] = await run.done;
    expect(r?.acknowledged).toBe(10);
  });

  it('refuses a second start while running, and can start again after stop', async () => {
    const engine = new BurstEngine({ publisher: recorder(), topic: 't', clock });
    engine.start(settings({ burstLength: 100, targetRate: 10 }));
    expect(() => engine.start(settings({}))).toThrow(/already going/);
    await engine.stop();
    const again = engine.start(settings({ burstLength: 1, sessionId: 's2' }));
    await vi.advanceTimersByTimeAsync(5);
    await again.done;
    expect(engine.stats().sessionId).toBe('s2');
  });

  it('counts failed publishes and reports only the first failure of a burst', async () => {
    const errors: Error[] = [];
    const pub: BurstPublisher = { publish: () => Promise.reject(new Error('broker said no')) };
    const engine = new BurstEngine({ publisher: pub, topic: 't', clock, onError: (e) => errors.push(e) });
    const run = engine.start(settings({ burstLength: 5, targetRate: 0 }));
    await vi.advanceTimersByTimeAsync(5);
    const [r] = await run.done;
    expect(r?.failed).toBe(5);
    expect(r?.acknowledged).toBe(0);
    expect(errors.map((e) => e.message)).toEqual(['broker said no']);
  });

  it('writes a new message only into bodies already acknowledged, never into one that failed', async () => {
    // Acks arrive in the order the test chooses; the first publish fails (a client may resend it).
    const held: { body: Buffer; copy: Buffer; settle: (ok: boolean) => void }[] = [];
    const pub: BurstPublisher = {
      publish: (_topic, body) =>
        new Promise<void>((resolve, reject) => {
          held.push({
            body,
            copy: Buffer.from(body),
            settle: (ok) => (ok ? resolve() : reject(new Error('connection lost'))),
          });
        }),
    };
    const engine = new BurstEngine({ publisher: pub, topic: 't', clock, maxInFlight: 4 });
    const run = engine.start(settings({ burstLength: 40, targetRate: 0, payloadLength: 1024 }));
    await vi.advanceTimersByTimeAsync(1);
    for (let i = 0; i < 40; i++) {
      while (held.length <= i) await vi.advanceTimersByTimeAsync(1);
      const h = held[i];
      if (h === undefined) throw new Error('unreachable');
      // Whatever is in flight, and the failed body, still hold the bytes they were published with.
      for (const other of [...held.slice(0, 1), ...held.slice(i)])
        expect(other.body.equals(other.copy)).toBe(true);
      h.settle(i !== 0);
      await vi.advanceTimersByTimeAsync(0);
    }
    const [r] = await run.done;
    expect(r?.acknowledged).toBe(39);
    expect(r?.failed).toBe(1);
    // The failed body was never written again; acknowledged ones were reused.
    expect(held.slice(1).some((h) => h.body.buffer === held[0]?.body.buffer)).toBe(false);
    const distinct = new Set(held.map((h) => h.body.buffer)).size;
    expect(distinct).toBeLessThan(held.length);
  });

  it('calls onBurstEnd after each burst with the achieved rate', async () => {
    const ends: number[] = [];
    const engine = new BurstEngine({
      publisher: recorder(),
      topic: 't',
      clock,
      onBurstEnd: (r) => ends.push(r.burst),
    });
    const run = engine.start(settings({ burstLength: 3, burstNumber: 2, targetRate: 100 }));
    await vi.advanceTimersByTimeAsync(100);
    await run.done;
    expect(ends).toEqual([1, 2]);
  });
});
