import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../modules/common/index.js';
import { BurstEngine, type BurstPublisher } from '../../modules/simulator/burst.js';
import { type MethodReply, SimulatorController } from '../../modules/simulator/module.js';

const logger = createLogger('sim-test', { level: 'silent' });
const clock = { monotonicMs: () => Date.now(), wallMs: () => Date.now() };

function setup() {
  const sent: string[] = [];
  const publisher: BurstPublisher = {
    publish: (topic) => {
      sent.push(topic);
      return Promise.resolve();
    },
  };
  const reports: Record<string, unknown>[] = [];
  let controller: SimulatorController | undefined;
  const engine = new BurstEngine({ publisher, clock, onBurstEnd: (r) => controller?.onBurstEnd(r) });
  controller = new SimulatorController({ engine, logger, report: (p) => reports.push(p) });
  return { controller, engine, sent, reports };
}

type Reported = { simulator: { state: string; ratePerSec: number; violations: number; lastBurst: unknown } };

describe('SimulatorController', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 5_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('start answers 400 with one line naming the invalid fields', async () => {
    const { controller } = setup();
    const reply = await controller.handleMethod('start', { burstLength: -1, format: 'csv' });
    expect(reply.status).toBe(400);
    const error = (reply.payload as { error: string }).error;
    expect(error).not.toContain('\n');
    expect(error).toMatch(/start\.burstLength/);
    expect(error).toMatch(/start\.format/);
  });

  it('start runs the bursts, 409 while running, and getStats shows the achieved rate', async () => {
    const { controller, sent } = setup();
    const started = await controller.handleMethod('start', {
      sessionId: 'm1',
      burstLength: 100,
      targetRate: 1000,
      burstNumber: 2,
      burstWaitMs: 50,
    });
    expect(started).toEqual({ status: 200, payload: { started: true, sessionId: 'm1' } });
    expect((await controller.handleMethod('start', {})).status).toBe(409);
    await vi.advanceTimersByTimeAsync(500);
    expect(sent).toHaveLength(200);
    const stats = (await controller.handleMethod('getStats', null)) as MethodReply & {
      payload: { state: string; messagesSent: number; ratePerSec: number; bursts: unknown[] };
    };
    expect(stats.status).toBe(200);
    expect(stats.payload.state).toBe('idle');
    expect(stats.payload.messagesSent).toBe(200);
    expect(stats.payload.bursts).toHaveLength(2);
    expect(stats.payload.ratePerSec).toBeCloseTo(1010, -1); // 100 messages over 99 ms
  });

  it('stop ends a run and answers with the stats', async () => {
    const { controller, sent } = setup();
    await controller.handleMethod('start', { burstLength: 1000, targetRate: 100 });
    await vi.advanceTimersByTimeAsync(95);
    const reply = (await controller.handleMethod('stop', undefined)) as {
      status: number;
      payload: { state: string };
    };
    expect(reply.status).toBe(200);
    expect(reply.payload.state).toBe('idle');
    const count = sent.length;
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent.length).toBe(count);
  });

  it('answers 404 to an unknown method', async () => {
    const { controller } = setup();
    expect((await controller.handleMethod('reboot', {})).status).toBe(404);
  });

  it('reports state, achieved rate and violations after each burst', async () => {
    const { controller, reports } = setup();
    await controller.handleMethod('start', {
      burstLength: 10,
      targetRate: 100,
      burstNumber: 2,
      burstWaitMs: 10,
    });
    await vi.advanceTimersByTimeAsync(500);
    const sims = reports.map((r) => (r as Reported).simulator);
    expect(sims[0]?.state).toBe('running');
    expect(sims.filter((s) => s.lastBurst !== null)).toHaveLength(3); // burst 1, burst 2, run end
    expect(sims.at(-1)).toMatchObject({ state: 'idle', violations: 0, ratePerSec: expect.any(Number) });
  });

  it('autoStart from desired config, merging patches; invalid config is reported, not thrown', async () => {
    const { controller, sent, reports } = setup();
    controller.handleDesired({ config: { burstLength: 5, targetRate: 0 }, $version: 1 });
    await vi.advanceTimersByTimeAsync(10);
    expect(sent).toHaveLength(0); // no autoStart yet
    controller.handleDesired({ config: { autoStart: true }, $version: 2 });
    await vi.advanceTimersByTimeAsync(10);
    expect(sent).toHaveLength(5);
    controller.handleDesired({ config: { burstLength: 'many' }, $version: 3 });
    const last = reports.at(-1) as { simulator: { error: string } };
    expect(last.simulator.error).toMatch(/twin\.config\.burstLength/);
    controller.handleDesired({ config: { burstLength: null }, $version: 4 }); // null removes: default 1000
    await vi.advanceTimersByTimeAsync(10);
    expect(sent).toHaveLength(1005);
  });
});
