import { loadavg } from 'node:os';
import { describe, expect, it } from 'vitest';
import { StoreAndForward } from '../../emulator/edgehub/store-and-forward.js';
import { IotHubIngest } from '../../emulator/iothub/ingest.js';
import { LinkModel } from '../../emulator/iothub/link-model.js';
import { desiredSettings, envSettings, makeMessage } from './pump-helpers.js';

const inputs = { deliver: () => Promise.reject(new Error('not connected')) };

/**
 * Upstream rate with the default link model and real timers, the queue kept full (as during a
 * burst above the upstream rate): `modules` senders, MaxUpstreamBatchSize 10, 1 KB messages.
 * Timed between the 100th·modules and the last enqueue at IoT Hub (start-up excluded); waits on
 * the enqueue callback rather than polling, so the measurement does not steal CPU from the pump.
 */
async function measure(modules: number, perModule: number): Promise<number> {
  const total = modules * perModule;
  const warmup = 100 * modules;
  let count = 0;
  let startedAt = 0;
  let done: (ms: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => {
    done = resolve;
  });
  const ingest = new IotHubIngest({
    onEnqueued: () => {
      count++;
      if (count === warmup) startedAt = performance.now();
      if (count === total) done(performance.now() - startedAt);
    },
  });
  const link = new LinkModel(ingest);
  link.start();
  const saf = new StoreAndForward({
    env: envSettings(),
    desired: desiredSettings({ up: 'FROM /messages/* INTO $upstream' }),
    upstream: link,
    inputs,
  });
  await saf.start();
  try {
    for (let i = 0; i < perModule; i++) {
      for (let m = 0; m < modules; m++) await saf.accept(makeMessage(`mod${m}`, { bodyBytes: 1024 }));
    }
    const ms = await finished;
    return ((total - warmup) * 1000) / ms;
  } finally {
    await saf.stop();
  }
}

describe('link model calibration (real timers)', () => {
  it('one module, batch 10, 1 KB gives 500–700 msg/s; three modules roughly double it or more', async () => {
    // Up to three attempts: other processes can delay timers; one attempt in range is enough.
    const runs: { one: number; three: number }[] = [];
    const ok = (r: { one: number; three: number }) => r.one >= 500 && r.one <= 700 && r.three >= 1.8 * r.one;
    while (runs.length < 3 && !runs.some(ok))
      runs.push({ one: await measure(1, 1200), three: await measure(3, 1000) });
    const summary = runs.map(
      (r) => `1 module ${r.one.toFixed(0)} msg/s, 3 modules ${r.three.toFixed(0)} msg/s`,
    );
    console.log(`calibration (load ${loadavg()[0]?.toFixed(1)}): ${summary.join('; ')}`);
    expect(runs.some(ok), summary.join('; ')).toBe(true);
  });
});
