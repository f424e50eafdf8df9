import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Wakeup } from '../../emulator/edgehub/upstream-pump.js';

describe('Wakeup', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Resolves to how long `wait` took on the fake clock, or undefined if still waiting after `horizonMs`. */
  async function timed(w: Promise<void>, horizonMs: number): Promise<number | undefined> {
    const t0 = Date.now();
    let at: number | undefined;
    void w.then(() => {
      at = Date.now() - t0;
    });
    for (let i = 0; i < horizonMs && at === undefined; i++) await vi.advanceTimersByTimeAsync(1);
    return at;
  }

  it('a notify before the wait ends the next wait at once, and only that one', async () => {
    const w = new Wakeup();
    w.notify();
    expect(await timed(w.wait(1000), 5)).toBe(0);
    expect(await timed(w.wait(1000), 5)).toBeUndefined();
  });

  it('a notify during the wait ends it; without one it ends at the timeout', async () => {
    const w = new Wakeup();
    const waiting = w.wait(1000);
    setTimeout(() => w.notify(), 30);
    expect(await timed(waiting, 100)).toBe(30);
    expect(await timed(w.wait(50), 100)).toBe(50);
    // The timed-out wait left nothing behind: the next notify is remembered for the next wait.
    w.notify();
    expect(await timed(w.wait(1000), 5)).toBe(0);
  });

  it('abort ends the wait, and an already aborted signal does not wait at all', async () => {
    const w = new Wakeup();
    const controller = new AbortController();
    const waiting = w.wait(10_000, controller.signal);
    setTimeout(() => controller.abort(), 20);
    expect(await timed(waiting, 100)).toBe(20);
    expect(await timed(w.wait(10_000, controller.signal), 5)).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
