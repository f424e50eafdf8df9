import { afterEach, describe, expect, it } from 'vitest';
import type { InputDelivery } from '../../emulator/edgehub/contracts.js';
import type { EdgeMessage } from '../../emulator/edgehub/message.js';
import { EdgeHubMetrics } from '../../emulator/edgehub/metrics.js';
import { StoreAndForward, type StoreAndForwardOptions } from '../../emulator/edgehub/store-and-forward.js';
import { backoffDelayMs, groupBySender } from '../../emulator/edgehub/upstream-pump.js';
import { desiredSettings, envSettings, makeMessage, RecordingSink, until } from './pump-helpers.js';

const noInputs: InputDelivery = { deliver: () => Promise.reject(new Error('not connected')) };
const running: StoreAndForward[] = [];

function create(
  overrides: Partial<StoreAndForwardOptions> & { upstream: StoreAndForwardOptions['upstream'] },
) {
  const saf = new StoreAndForward({
    env: envSettings(),
    desired: desiredSettings({ all: 'FROM /messages/* INTO $upstream' }),
    inputs: noInputs,
    retryBaseMs: 2,
    retryMaxMs: 20,
    ...overrides,
  });
  running.push(saf);
  return saf;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

const seqOf = (m: EdgeMessage): number => Number(m.properties.seq);

describe('upstream pump', () => {
  it('sends one sender in sequential batches of MaxUpstreamBatchSize, in order, and removes what was acked', async () => {
    const sink = new RecordingSink();
    const saf = create({ upstream: sink });
    await saf.start();
    sink.hold();
    await saf.accept(makeMessage('a', { seq: 0 }));
    await until(() => sink.inFlight === 1);
    for (let i = 1; i <= 250; i++) await saf.accept(makeMessage('a', { seq: i }));
    sink.open();
    await until(() => sink.messages.length === 251);
    expect(sink.batches.map((b) => b.messages.length)).toEqual([1, ...new Array(25).fill(10)]);
    expect(sink.messages.map(seqOf)).toEqual(Array.from({ length: 251 }, (_, i) => i));
    expect(sink.maxInFlight).toBe(1);
    await until(() => saf.store.totalLength === 0);
    expect(saf.upstreamStats).toMatchObject({ messagesSent: 251, batchesSent: 26, failedAttempts: 0 });
  });

  it('groups by sender and sends up to UpstreamFanOutFactor groups in parallel', async () => {
    const sink = new RecordingSink();
    const saf = create({
      upstream: sink,
      env: envSettings({ upstreamFanOutFactor: 2, maxUpstreamBatchSize: 5 }),
    });
    await saf.start();
    sink.hold();
    await saf.accept(makeMessage('x', { seq: 0 }));
    await until(() => sink.inFlight === 1);
    for (let i = 1; i <= 10; i++) {
      for (const m of ['a', 'b', 'c']) await saf.accept(makeMessage(m, { seq: i }));
    }
    sink.maxInFlight = 0;
    sink.open();
    await until(() => sink.messages.length === 31);
    expect(sink.maxInFlight).toBe(2);
    for (const batch of sink.batches) {
      const senders = new Set(batch.messages.map((m) => m.system.connectionModuleId));
      expect(senders.size).toBe(1);
    }
    for (const m of ['a', 'b', 'c']) {
      const seqs = sink.messages.filter((x) => x.system.connectionModuleId === m).map(seqOf);
      expect(seqs).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    }
  });

  it('with three senders and fan-out 10, three groups are in flight at once', async () => {
    const sink = new RecordingSink();
    const saf = create({ upstream: sink });
    await saf.start();
    sink.hold();
    await saf.accept(makeMessage('x'));
    await until(() => sink.inFlight === 1);
    for (let i = 0; i < 30; i++) await saf.accept(makeMessage(['a', 'b', 'c'][i % 3]));
    sink.maxInFlight = 0;
    sink.open();
    await until(() => sink.messages.length === 31);
    expect(sink.maxInFlight).toBe(3);
  });

  it('reads priority 0 before lower priorities', async () => {
    const sink = new RecordingSink();
    const saf = create({
      upstream: sink,
      desired: desiredSettings({
        normal: "FROM /messages/* WHERE kind = 'normal' INTO $upstream",
        alarm: { route: "FROM /messages/* WHERE kind = 'alarm' INTO $upstream", priority: 0 },
        mid: { route: "FROM /messages/* WHERE kind = 'mid' INTO $upstream", priority: 5 },
      }),
    });
    await saf.start();
    sink.hold();
    await saf.accept(makeMessage('x', { props: { kind: 'normal' } }));
    await until(() => sink.inFlight === 1);
    for (let i = 0; i < 20; i++)
      await saf.accept(makeMessage('a', { props: { kind: 'normal' }, seq: 100 + i }));
    for (let i = 0; i < 5; i++) await saf.accept(makeMessage('a', { props: { kind: 'mid' }, seq: 50 + i }));
    for (let i = 0; i < 5; i++) await saf.accept(makeMessage('a', { props: { kind: 'alarm' }, seq: i }));
    sink.open();
    await until(() => sink.messages.length === 31);
    const after = sink.messages.slice(1).map((m) => m.properties.kind);
    expect(after.slice(0, 5)).toEqual(new Array(5).fill('alarm'));
    expect(after.slice(5, 10)).toEqual(new Array(5).fill('mid'));
    expect(after.slice(10)).toEqual(new Array(20).fill('normal'));
    expect(
      saf.store
        .queueLengths()
        .map((q) => q.priority)
        .sort((a, b) => a - b),
    ).toEqual([0, 5, 2_000_000_000]);
  });

  it('caps a batch at 256 KiB / largest message', async () => {
    const sink = new RecordingSink();
    const saf = create({ upstream: sink });
    await saf.start();
    sink.hold();
    await saf.accept(makeMessage('x'));
    await until(() => sink.inFlight === 1);
    for (let i = 0; i < 9; i++)
      await saf.accept(makeMessage('a', { bodyBytes: i === 4 ? 100 * 1024 : 1024 }));
    sink.open();
    await until(() => sink.messages.length === 10);
    // Largest message ~100 KiB → batches of 2.
    expect(sink.batches.slice(1).map((b) => b.messages.length)).toEqual([2, 2, 2, 2, 1]);
  });

  it('retries a failed batch with backoff and loses nothing', async () => {
    const sink = new RecordingSink();
    sink.failNext = 3;
    const saf = create({ upstream: sink });
    await saf.start();
    for (let i = 0; i < 25; i++) await saf.accept(makeMessage('a', { seq: i }));
    await until(() => sink.messages.length === 25);
    expect(sink.messages.map(seqOf)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(saf.upstreamStats.failedAttempts).toBe(3);
    expect(backoffDelayMs(0)).toBe(1000);
    expect(backoffDelayMs(3)).toBe(8000);
    expect(backoffDelayMs(10)).toBe(60_000);
  });

  it('keeps messages in the store while the sink fails', async () => {
    const sink = new RecordingSink();
    sink.failNext = Number.POSITIVE_INFINITY;
    const saf = create({ upstream: sink });
    await saf.start();
    for (let i = 0; i < 15; i++) await saf.accept(makeMessage('a'));
    await until(() => saf.upstreamStats.failedAttempts >= 3);
    expect(saf.store.totalLength).toBe(15);
    sink.failNext = 0;
    await until(() => sink.messages.length === 15, 10_000);
    await until(() => saf.store.totalLength === 0);
  });

  it('applies new batch settings and routes live without losing queued messages', async () => {
    const sink = new RecordingSink();
    const saf = create({ upstream: sink });
    await saf.start();
    sink.hold();
    await saf.accept(makeMessage('a', { seq: 0 }));
    await until(() => sink.inFlight === 1);
    for (let i = 1; i <= 20; i++) await saf.accept(makeMessage('a', { seq: i }));
    saf.reconfigure({
      env: envSettings({ maxUpstreamBatchSize: 4 }),
      desired: desiredSettings({ only: "FROM /messages/* WHERE kind = 'none' INTO $upstream" }),
    });
    sink.open();
    await until(() => sink.messages.length === 21);
    expect(sink.batches.slice(1).map((b) => b.messages.length)).toEqual([4, 4, 4, 4, 4]);
    // The new route no longer matches: later messages are dropped as no_route, queued ones were kept.
    await saf.accept(makeMessage('a'));
    expect(saf.store.totalLength).toBe(0);
  });
});

describe('module endpoints', () => {
  it('delivers one message per ack, in order, retrying while the module is not connected', async () => {
    let connected = false;
    let inFlight = 0;
    let maxInFlight = 0;
    const delivered: { module: string; input: string; seq: number }[] = [];
    const inputs: InputDelivery = {
      async deliver(moduleId, input, message) {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          await new Promise((r) => setImmediate(r));
          if (!connected) throw new Error('module not connected');
          delivered.push({ module: moduleId, input, seq: seqOf(message) });
        } finally {
          inFlight--;
        }
      },
    };
    const sink = new RecordingSink();
    const saf = create({
      upstream: sink,
      inputs,
      desired: desiredSettings({
        toB: 'FROM /messages/modules/a/* INTO BrokeredEndpoint("/modules/b/inputs/in1")',
      }),
    });
    await saf.start();
    for (let i = 0; i < 10; i++) await saf.accept(makeMessage('a', { output: 'o', seq: i }));
    await new Promise((r) => setTimeout(r, 30));
    expect(delivered).toEqual([]);
    expect(saf.store.endpointLength('/modules/b/inputs/in1')).toBe(10);
    connected = true;
    await until(() => delivered.length === 10);
    expect(delivered.map((d) => d.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(delivered[0]).toMatchObject({ module: 'b', input: 'in1' });
    expect(maxInFlight).toBe(1);
    expect(sink.messages).toEqual([]);
  });
});

describe('module reconnect', () => {
  it('moduleConnected() delivers at once instead of after the retry delay', async () => {
    let connected = false;
    const delivered: EdgeMessage[] = [];
    const saf = create({
      upstream: new RecordingSink(),
      inputs: {
        deliver: async (_m, _i, message) => {
          if (!connected) throw new Error('module not connected');
          delivered.push(message);
        },
      },
      retryBaseMs: 30_000,
      retryMaxMs: 60_000,
      moduleRetryMaxMs: 60_000,
      desired: desiredSettings({ toB: 'FROM /messages/* INTO BrokeredEndpoint("/modules/b/inputs/in1")' }),
    });
    await saf.start();
    await saf.accept(makeMessage('a'));
    await new Promise((r) => setTimeout(r, 20));
    connected = true;
    saf.moduleConnected('other');
    await new Promise((r) => setTimeout(r, 20));
    expect(delivered).toHaveLength(0);
    saf.moduleConnected('b');
    await until(() => delivered.length === 1, 1000);
  });
});

describe('metrics', () => {
  it('counts received, sent, no_route drops and exposes queue lengths over HTTP', async () => {
    const metrics = new EdgeHubMetrics({
      iothub: 'hub.local',
      edgeDevice: 'edge1',
      instanceNumber: '7',
      storageFolder: '/tmp',
    });
    const sink = new RecordingSink();
    const saf = create({
      upstream: sink,
      metrics,
      desired: desiredSettings({ r: 'FROM /messages/modules/a/* INTO $upstream' }),
    });
    await saf.start();
    const url = await metrics.start(0);
    try {
      sink.hold();
      for (let i = 0; i < 3; i++) await saf.accept(makeMessage('a', { output: 'o1', bodyBytes: 100 }));
      await saf.accept(makeMessage('zz'));
      const text = await (await fetch(url)).text();
      expect(text).toContain(
        'edgehub_messages_received_total{id="edge1/a",route_output="o1",iothub="hub.local",edge_device="edge1",instance_number="7"} 3',
      );
      expect(text).toMatch(/edgehub_messages_dropped_total\{reason="no_route",from="edge1\/zz"[^}]*\} 1/);
      expect(text).toMatch(/edgehub_queue_length\{endpoint="iothub",priority="2000000000"[^}]*\} [23]/);
      expect(text).toMatch(/edgeAgent_available_disk_space_bytes\{disk_name="\/tmp"[^}]*\} \d+/);
      expect(text).toContain('edgehub_message_size_bytes_count{id="edge1/a"');
      sink.open();
      await until(() => sink.messages.length === 3);
      const after = await metrics.metricsText();
      expect(after).toMatch(/edgehub_messages_sent_total\{from="edge1\/a",to="upstream"[^}]*\} 3/);
      expect(after).toMatch(
        /edgehub_message_send_duration_seconds_count\{from="edge1\/a",to="upstream"[^}]*\} \d/,
      );
      expect((await fetch(url.replace('/metrics', '/other'))).status).toBe(404);
    } finally {
      await metrics.stop();
    }
  });
});

describe('groupBySender', () => {
  it('keeps first-appearance order of groups', () => {
    const e = (senderKey: string, seq: number) =>
      ({
        seq,
        senderKey,
        endpoint: 'iothub',
        priority: 0,
        expiresAtMs: 0,
        sizeBytes: 1,
        removed: false,
      }) as const;
    const groups = groupBySender([e('b', 1), e('a', 2), e('b', 3)].map((x) => ({ ...x })));
    expect(groups.map((g) => g.map((x) => x.seq))).toEqual([[1, 3], [2]]);
  });
});
