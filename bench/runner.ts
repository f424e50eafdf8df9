import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { localImageEnv, orphanGuardPath } from '../emulator/agent/image-map.js';
import type { EdgeMessage } from '../emulator/edgehub/message.js';
import { LocalEdgeRuntime, parseDeployment } from '../emulator/index.js';
import { createLogger, decodeEnvelopeBody, type Logger, readPerfFields } from '../modules/common/index.js';
import { startMosquittoInTempDir } from '../perf-cli/mosquitto-broker.js';
import { collectGarbage, type ProcSample, sampleProcess } from './proc.js';
import { type BenchKind, type BenchResult, percentile, round } from './report.js';

/** Translator transports the bench runs. */
export type BenchTransport = 'sdk-mqtt' | 'sdk-amqp' | 'raw-mqtt';

/** Options for {@link BenchRunner}. */
export interface BenchRunnerOptions {
  /** Folder holding the compiled package (`dist`): children start from there. */
  readonly distRoot: string;
  /** Messages per throughput run (the runner's {@link BenchRunner.messages} starts here). */
  readonly messages: number;
  /** Simulator publishes awaiting PUBACK at once. Default 200. */
  readonly publisherMaxInFlight?: number;
  /** Naive module's send window (`NaiveMaxInFlight`). Default 16. */
  readonly naiveMaxInFlight?: number;
  /** A run ends when no message was counted for this long, ms. Default 20000. */
  readonly stallTimeoutInMs?: number;
  /** When set, modules under test write V8 CPU profiles (`--cpu-prof`) into this folder. */
  readonly cpuProfDir?: string;
  /** Source broker of every run. Default mosquitto. */
  readonly sourceBroker?: BenchSourceBroker;
  /** Progress lines (stderr); a line starting with `▶` opens a run. */
  readonly progress: (line: string) => void;
  /** How far the running run is, every 100–250 ms where its end is known (a progress bar). */
  readonly onCount?: (done: number, total: number, unit: string) => void;
  readonly logger?: Logger;
}

/** Field broker of the source chain: Mosquitto (what a field deployment runs) or aedes (Node). */
export type BenchSourceBroker = 'mosquitto' | 'aedes';

/** The source broker of one run, whichever kind. */
interface SourceBroker {
  readonly url: string;
  /** Resolves once the module (or the counter) has subscribed. */
  waitSubscribed(timeoutInMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** What the module under test and the ingest-limit counter subscribe to. */
const SOURCE_TOPIC_FILTER = 'bench/#';

/**
 * Link of the throughput runs: instant (no round trip, no bandwidth limit), so edgeHub → IoT Hub
 * is not what is measured. Why not a 1 ms link: the link model waits on two timers per batch and
 * timers fire on whole milliseconds, so each 256 KiB batch took at least 2 ms, about 130 MB/s at
 * best, and less while the runtime's thread was busy receiving. At 8 KB edgeHub's upstream queue
 * then grew to 724 batches during a translator run and drained after the module had finished, so
 * the rate counted at IoT Hub was partly the drain; the wire limit was bound by the same timers.
 * Each run records the queue's peak ({@link BenchResult.peakUpstreamQueue}) to show it stays empty.
 */
export const FAST_LINK = { rttMs: 0, bandwidthMbps: Number.POSITIVE_INFINITY } as const;
/** edgeHub env of the throughput runs: 200 messages per upstream batch (a naive module's 1 KB messages go 200 at a time). */
export const FAST_EDGEHUB_ENV = { MaxUpstreamBatchSize: '200', UpstreamFanOutFactor: '10' } as const;
/**
 * Share of a throughput run's messages that is warm-up: the measured window opens once this many
 * have been counted. A module runs for days; its first seconds (JIT, connection windows) are not
 * what users get. With 240,000 instead of 60,000 messages the translator needed 24–26 instead of
 * 31–33 ms of CPU per 1,000 and the bare subscriber 17 instead of 22.
 */
export const WARM_UP_SHARE = 0.25;

/**
 * Publishes the wire-limit publisher keeps awaiting PUBACK. A limit must saturate: with 8 the
 * runtime used under one core and measured 94–99 MB/s; with 16, 117; with 32, 114–127.
 */
export const WIRE_IN_FLIGHT = 32;

/** Payload of the wire-limit publisher: 256 KiB less room for properties and system properties. */
export const WIRE_PAYLOAD_BYTES = 256 * 1024 - 2048;

/** {@link IngestCounter}'s counters, /proc sample and runtime CPU when the measured window opened. */
interface WindowMark {
  readonly messages: number;
  readonly bodyBytes: number;
  readonly ms: number;
  /** Latency samples taken before the window. */
  readonly latencies: number;
  readonly ownMs: number;
  readonly sample: ProcSample | undefined;
  readonly runtimeCpu: NodeJS.CpuUsage;
}

/** Logical messages and latency counted at IoT Hub's ingest (the runtime's enqueue callback). */
export class IngestCounter {
  messages = 0;
  upstreamMessages = 0;
  bodyBytes = 0;
  firstMs = 0;
  lastMs = 0;
  readonly latencies: number[] = [];
  /** Time spent parsing bodies for latency, ms: the bench's own work, taken off edgeHub's CPU. */
  ownMs = 0;
  /** Process under test, whose /proc CPU is sampled as the window opens (with this process's). */
  watchedPid: number | undefined;
  private mark: WindowMark | undefined;
  private lastSampleMs = 0;

  /**
   * @param sampleEveryMs - parse at most one batch per this many ms for latency. It
   *   bounds the bench's own CPU, which shares the machine with the chain it measures: parsing
   *   every 256 KB batch at 16,000 msg/s took 4.5 ms of CPU per 1,000 messages (`--cpu-prof`).
   * @param markAt - logical messages after which the measured window opens (0: at the first).
   */
  constructor(
    private readonly sampleEveryMs = 50,
    private readonly markAt = 0,
  ) {}

  /** The counters when the measured window opened after a warm-up; undefined until then. */
  get window(): WindowMark | undefined {
    return this.mark;
  }

  /** The ingest callback. */
  readonly onEnqueued = (_partition: number, m: EdgeMessage, enqueuedMs: number): void => {
    const count = Number(m.properties['edgeperf-count'] ?? '1') || 1;
    this.messages += count;
    this.upstreamMessages++;
    this.bodyBytes += m.body.length;
    if (this.firstMs === 0) this.firstMs = enqueuedMs;
    this.lastMs = enqueuedMs;
    if (this.markAt > 0 && this.mark === undefined && this.messages >= this.markAt) {
      const { messages, bodyBytes, latencies, ownMs, watchedPid } = this;
      const sample = watchedPid === undefined ? undefined : sampleProcess(watchedPid);
      const runtimeCpu = process.cpuUsage();
      this.mark = {
        messages,
        bodyBytes,
        ms: enqueuedMs,
        latencies: latencies.length,
        ownMs,
        sample,
        runtimeCpu,
      };
    }
    // Single messages (the naive module's) are cheap to parse and each one is a latency sample.
    if (count > 1 && enqueuedMs - this.lastSampleMs < this.sampleEveryMs) return;
    // Only JSON (or an encoded envelope) can carry perf fields. Why check: decoding every 254 KiB
    // wire-limit body to find that out cost the runtime's thread 0.2 ms a message (--cpu-prof),
    // about 9% of a core taken from the limit being measured.
    const encoding = m.properties['edgeperf-encoding'];
    const first = m.body[0];
    if (encoding === undefined && first !== 0x7b && first !== 0x5b) return;
    this.lastSampleMs = enqueuedMs;
    const t0 = performance.now();
    try {
      for (const item of decodeEnvelopeBody(m.body, encoding)) {
        const perf = readPerfFields(item);
        if (perf) this.latencies.push(enqueuedMs - perf.ts);
      }
    } catch {
      // Not JSON (the wire-limit payload): no latency to take.
    }
    this.ownMs += performance.now() - t0;
  };
}

type JsonLine = Record<string, unknown>;

/** A child process whose stdout is JSON lines. */
class Child {
  readonly lines: JsonLine[] = [];
  readonly exited: Promise<number | null>;
  private stderrTail = '';
  private waiters: (() => void)[] = [];

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line) as JsonLine);
        for (const w of this.waiters.splice(0)) w();
      } catch {
        // Not a JSON line: ignore.
      }
    });
    proc.stderr?.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-2000);
    });
    // Not consumed when a child prints only stdout; reading stderr keeps its pipe from filling.
    this.exited = new Promise((resolve) =>
      proc.once('exit', (code) => {
        for (const w of this.waiters.splice(0)) w();
        resolve(code);
      }),
    );
  }

  /** The last 2,000 characters the child wrote to stderr. */
  get stderrText(): string {
    return this.stderrTail;
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Resolves with the first line matching, rejects on exit or timeout. */
  async waitFor(match: (line: JsonLine) => boolean, timeoutInMs: number): Promise<JsonLine> {
    const deadline = Date.now() + timeoutInMs;
    for (;;) {
      const found = this.lines.find(match);
      if (found) return found;
      if (!this.alive)
        throw new Error(`${this.name} exited (${this.proc.exitCode}): ${this.stderrTail.slice(-400)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: timed out after ${timeoutInMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** SIGTERM, then SIGKILL after 3 s. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(t);
  }
}

function startNode(name: string, script: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  // The agent's orphan guard: a child exits once the bench is gone (Ctrl-C, SIGKILL).
  const proc = spawn(process.execPath, ['--import', orphanGuardPath(), script, ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', RuntimeLogLevel: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Child(name, proc);
}

interface ModuleRunSpec {
  readonly kind: 'naive' | 'translator';
  readonly transport?: BenchTransport;
  readonly payloadBytes: number;
  readonly messages: number;
  /** Publisher rate, msg/s; 0 = as fast as PUBACKs allow. */
  readonly targetRate: number;
  readonly link: { readonly rttMs: number; readonly bandwidthMbps: number };
  readonly edgeHubEnv: Readonly<Record<string, string>>;
  readonly storeMaxBytes?: number;
  /** End when the publisher is done instead of when every message is counted (overload). */
  readonly endWithPublisher?: boolean;
  readonly resultKind: BenchKind;
  readonly name: string;
}

/**
 * Runs the competitors one at a time, each on its own local edge runtime, source broker and
 * simulator process, and measures the module process from /proc.
 */
export class BenchRunner {
  private readonly opts: BenchRunnerOptions;
  private readonly log: Logger;
  /** Messages per throughput run; may change between runs (per payload size). */
  messages: number;

  constructor(options: BenchRunnerOptions) {
    this.opts = options;
    this.messages = options.messages;
    this.log = options.logger ?? createLogger('bench', { level: 'error' });
  }

  private script(...parts: string[]): string {
    return join(this.opts.distRoot, ...parts);
  }

  private async startBroker(): Promise<SourceBroker> {
    if (this.opts.sourceBroker === 'aedes') {
      const child = startNode('source broker', this.script('bench', 'children', 'source-broker.js'), []);
      const line = await child.waitFor((l) => typeof l.port === 'number', 15_000);
      return {
        url: `mqtt://127.0.0.1:${line.port as number}`,
        waitSubscribed: async (timeoutInMs) => {
          await child.waitFor((l) => typeof l.subscribed === 'string', timeoutInMs);
        },
        stop: () => child.stop(),
      };
    }
    const broker = await startMosquittoInTempDir({ persistence: false });
    return {
      url: broker.url,
      waitSubscribed: (timeoutInMs) => broker.waitForSubscription(SOURCE_TOPIC_FILTER, timeoutInMs),
      stop: () => broker.destroy(),
    };
  }

  private startPublisher(
    brokerUrl: string,
    payloadBytes: number,
    messages: number,
    targetRate: number,
  ): Child {
    return startNode('simulator', this.script('modules', 'simulator', 'main.js'), [
      '--standalone',
      '--broker',
      brokerUrl,
      '--topic',
      'bench/{device}/telemetry',
      '--burst-length',
      String(messages),
      '--burst-number',
      '1',
      '--target-rate',
      String(targetRate),
      '--payload-length',
      String(payloadBytes),
      '--late-tolerance-ms',
      '1000',
      '--max-in-flight',
      String(this.opts.publisherMaxInFlight ?? 200),
    ]);
  }

  private manifest(
    spec: { image: string; env: Record<string, string> },
    edgeHubEnv: Readonly<Record<string, string>>,
    storeMaxBytes?: number,
  ) {
    const wrap = (env: Readonly<Record<string, string>>) =>
      Object.fromEntries(Object.entries(env).map(([k, v]) => [k, { value: v }]));
    return parseDeployment({
      modulesContent: {
        $edgeAgent: {
          'properties.desired': {
            schemaVersion: '1.1',
            runtime: { type: 'docker', settings: {} },
            systemModules: {
              edgeAgent: { type: 'docker', settings: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5' } },
              edgeHub: {
                type: 'docker',
                settings: { image: 'mcr.microsoft.com/azureiotedge-hub:1.5' },
                env: wrap({ ...edgeHubEnv, ...(storeMaxBytes ? { UsePersistentStorage: 'false' } : {}) }),
              },
            },
            modules: {
              bench: {
                type: 'docker',
                status: 'running',
                restartPolicy: 'never',
                settings: { image: spec.image },
                env: wrap(spec.env),
              },
            },
          },
        },
        $edgeHub: {
          'properties.desired': {
            schemaVersion: '1.1',
            routes: { up: 'FROM /messages/modules/bench/* INTO $upstream' },
            storeAndForwardConfiguration: {
              timeToLiveSecs: 7200,
              ...(storeMaxBytes ? { storeLimits: { maxSizeBytes: storeMaxBytes } } : {}),
            },
          },
        },
      },
    });
  }

  private newRuntime(deployment: ReturnType<typeof parseDeployment>, link: ModuleRunSpec['link']) {
    const stateDir = mkdtempSync(join(tmpdir(), 'edgeperf-bench-'));
    const runtime = new LocalEdgeRuntime({
      deployment,
      stateDir,
      ports: { mqtt: 0, amqp: 0, metrics: 0, iothub: 0, eventHubs: 0 },
      link,
      logger: this.log,
    });
    return { runtime, stateDir };
  }

  /** One module (naive or translator) between the source and edgeHub. */
  async runModule(s: ModuleRunSpec): Promise<BenchResult> {
    this.opts.progress(
      `▶ ${s.name} ${s.payloadBytes} B × ${s.messages}${s.targetRate ? ` at ${s.targetRate} msg/s` : ''}`,
    );
    const broker = await this.startBroker();
    const env: Record<string, string> = {
      SourceUrl: broker.url,
      SourceTopics: SOURCE_TOPIC_FILTER,
      RuntimeLogLevel: 'warn',
    };
    const image = s.kind === 'translator' ? 'edgeperf/translator:local' : 'edgeperf/naive:local';
    if (this.opts.cpuProfDir) {
      // The manifest's NODE_OPTIONS replaces the image's (as in a container): keep the image's.
      const imageOptions = localImageEnv(image).NODE_OPTIONS;
      const preload = `--import ${this.script('bench', 'children', 'cpu-prof-preload.js')}`;
      env.NODE_OPTIONS = imageOptions === undefined ? preload : `${imageOptions} ${preload}`;
      env.EDGEPERF_CPU_PROF_DIR = this.opts.cpuProfDir;
    }
    if (s.kind === 'translator') {
      Object.assign(env, {
        UpstreamTransport: s.transport ?? 'sdk-mqtt',
        MetricsPort: '0',
        // Bytes close a batch (256 KiB), not a record count.
        BatchMaxMessages: '100000',
      });
    } else {
      env.NaiveMaxInFlight = String(this.opts.naiveMaxInFlight ?? 16);
    }
    const { runtime, stateDir } = this.newRuntime(
      this.manifest({ image, env }, s.edgeHubEnv, s.storeMaxBytes),
      s.link,
    );
    let publisher: Child | undefined;
    try {
      await runtime.start();
      // The overload check is about the whole 60 s, not a rate: no warm-up there.
      const counter = new IngestCounter(50, s.endWithPublisher ? 0 : Math.floor(s.messages * WARM_UP_SHARE));
      runtime.ingest?.setOnEnqueued(counter.onEnqueued);
      await broker.waitSubscribed(60_000);
      // The subscription is the module's last start step; give its edgeHub link a moment to settle.
      await new Promise((r) => setTimeout(r, 500));
      const state = runtime.supervisor?.states().bench;
      if (state?.kind !== 'running')
        throw new Error(`${s.name}: module is not running (${JSON.stringify(state)})`);
      const pid = state.pid;
      counter.watchedPid = pid;
      collectGarbage();
      const before = sampleProcess(pid);
      let peakRss = before?.rssBytes ?? 0;
      const startMs = Date.now();
      const runtimeCpuBefore = process.cpuUsage();
      publisher = this.startPublisher(broker.url, s.payloadBytes, s.messages, s.targetRate);
      let lastCount = -1;
      let lastProgressMs = Date.now();
      let after: ProcSample | undefined = before;
      let peakQueue = 0;
      for (;;) {
        await new Promise((r) => setTimeout(r, 250));
        peakQueue = Math.max(peakQueue, upstreamQueueLength(runtime));
        const sample = sampleProcess(pid);
        if (sample) {
          after = sample;
          peakRss = Math.max(peakRss, sample.peakRssBytes);
        }
        if (counter.messages !== lastCount) {
          lastCount = counter.messages;
          lastProgressMs = Date.now();
        }
        if (s.endWithPublisher && s.targetRate)
          this.opts.onCount?.((Date.now() - startMs) / 1000, s.messages / s.targetRate, 's');
        else if (!s.endWithPublisher) this.opts.onCount?.(counter.messages, s.messages, 'messages');
        if (s.endWithPublisher ? !publisher.alive : counter.messages >= s.messages) break;
        if (!sample) throw new Error(`${s.name}: module process exited`);
        if (!s.endWithPublisher && Date.now() - lastProgressMs > (this.opts.stallTimeoutInMs ?? 20_000)) {
          this.opts.progress(`  ${s.name}: stalled at ${counter.messages}/${s.messages}`);
          break;
        }
      }
      // Figures count from the window's opening when it opened, else from the first publish.
      const w = counter.window;
      const runtimeCpu = process.cpuUsage(w?.runtimeCpu ?? runtimeCpuBefore);
      const endMs = s.endWithPublisher ? Date.now() : counter.lastMs;
      const summary = publisher.lines.find((l) => typeof l.messagesSent === 'number');
      const pubStart = firstBurstStart(summary) ?? startMs;
      const durationMs = Math.max(1, endMs - (w?.ms ?? pubStart));
      const cpuMs = (after?.cpuMs ?? 0) - ((w ? w.sample : before)?.cpuMs ?? 0);
      const result = toResult({
        kind: s.resultKind,
        name: s.name,
        ...(s.transport ? { transport: s.transport } : {}),
        payloadBytes: s.payloadBytes,
        messages: counter.messages - (w?.messages ?? 0),
        warmUpMessages: w?.messages ?? 0,
        published: typeof summary?.messagesSent === 'number' ? summary.messagesSent : s.messages,
        durationMs,
        bodyBytes: counter.bodyBytes - (w?.bodyBytes ?? 0),
        cpuMs,
        peakRssBytes: Math.max(peakRss, after?.peakRssBytes ?? 0),
        latencies: w ? counter.latencies.slice(w.latencies) : counter.latencies,
        runtimeCpuMs: (runtimeCpu.user + runtimeCpu.system) / 1000 - (counter.ownMs - (w?.ownMs ?? 0)),
        peakUpstreamQueue: peakQueue,
      });
      this.opts.progress(
        `  ${result.msgPerSec} msg/s, ${result.cpuMsPer1000} CPU ms/1k, peak RSS ${result.peakRssMB} MB`,
      );
      return result;
    } catch (err) {
      throw new Error(
        `${err instanceof Error ? err.message : String(err)}; module log: ${logTail(join(stateDir, 'logs', 'bench.log'))}`,
      );
    } finally {
      await publisher?.stop();
      if (this.opts.cpuProfDir && runtime.supervisor?.kill('bench', 'SIGUSR2'))
        await new Promise((r) => setTimeout(r, 2000));
      // Measured: no need to wait for the module's graceful flush (minutes against a full store).
      runtime.supervisor?.kill('bench', 'SIGKILL');
      await runtime
        .stop()
        .catch((err: unknown) => this.opts.progress(`  runtime stop failed: ${String(err)}`));
      await broker.stop();
      rmSync(stateDir, { recursive: true, force: true });
    }
  }

  /** The ingest limit: publisher → broker → a subscriber that only counts. */
  async runIngestLimit(payloadBytes: number, messages: number): Promise<BenchResult> {
    this.opts.progress(`▶ ingest-limit ${payloadBytes} B × ${messages}`);
    const broker = await this.startBroker();
    const counter = startNode('counter', this.script('bench', 'children', 'count-subscriber.js'), [
      broker.url,
      SOURCE_TOPIC_FILTER,
      String(messages),
      String(Math.floor(messages * WARM_UP_SHARE)),
    ]);
    let publisher: Child | undefined;
    try {
      await counter.waitFor((l) => l.subscribed === true, 15_000);
      const before = sampleProcess(counter.pid);
      const startMs = Date.now();
      publisher = this.startPublisher(broker.url, payloadBytes, messages, 0);
      const done = await counter.waitFor((l) => typeof l.count === 'number', 10 * 60_000);
      const after = sampleProcess(counter.pid);
      await publisher.exited;
      const summary = publisher.lines.find((l) => typeof l.messagesSent === 'number');
      const pubStart = firstBurstStart(summary) ?? startMs;
      // The counter opens the measured window itself, as the module runs do (WARM_UP_SHARE).
      const mark = done.mark as { count: number; ms: number; cpuMs: number } | undefined;
      const result = toResult({
        kind: 'ingest-limit',
        name: 'ingest-limit (MQTT.js counter)',
        payloadBytes,
        messages: (done.count as number) - (mark?.count ?? 0),
        warmUpMessages: mark?.count ?? 0,
        published: typeof summary?.messagesSent === 'number' ? summary.messagesSent : messages,
        durationMs: Math.max(1, (done.lastMs as number) - (mark?.ms ?? pubStart)),
        bodyBytes: 0,
        cpuMs: mark ? mark.cpuMs : (after?.cpuMs ?? 0) - (before?.cpuMs ?? 0),
        peakRssBytes: after?.peakRssBytes ?? 0,
        latencies: undefined,
      });
      this.opts.progress(`  ${result.msgPerSec} msg/s`);
      return result;
    } finally {
      await publisher?.stop();
      await counter.stop();
      await broker.stop();
    }
  }

  /** The wire limit: a raw MQTT.js publisher of ~256 KiB payloads to edgeHub, bytes at IoT Hub ingest. */
  async runWireLimit(messages: number, inFlight = WIRE_IN_FLIGHT): Promise<BenchResult> {
    this.opts.progress(`▶ wire-limit ${WIRE_PAYLOAD_BYTES} B × ${messages}`);
    const deployment = this.manifest({ image: 'example.azurecr.io/wire:1', env: {} }, FAST_EDGEHUB_ENV);
    const { runtime, stateDir } = this.newRuntime(deployment, FAST_LINK);
    let pub: Child | undefined;
    try {
      const ready = await runtime.start();
      const counter = new IngestCounter(50, Math.floor(messages * WARM_UP_SHARE));
      runtime.ingest?.setOnEnqueued(counter.onEnqueued);
      pub = startNode(
        'wire publisher',
        this.script('bench', 'children', 'wire-publisher.js'),
        [String(messages), String(WIRE_PAYLOAD_BYTES), String(inFlight)],
        { EdgeHubConnectionString: ready.modules.bench ?? '', EdgeModuleCACertificateFile: ready.caFile },
      );
      const started = await pub.waitFor((l) => typeof l.startedMs === 'number', 30_000);
      counter.watchedPid = pub.pid;
      collectGarbage();
      const runtimeCpuBefore = process.cpuUsage();
      const before = sampleProcess(pub.pid);
      let after = before;
      let peakQueue = 0;
      const deadline = Date.now() + 10 * 60_000;
      while (counter.upstreamMessages < messages && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        peakQueue = Math.max(peakQueue, upstreamQueueLength(runtime));
        after = sampleProcess(pub.pid) ?? after;
        this.opts.onCount?.(counter.upstreamMessages, messages, 'messages');
        if (!pub.alive && counter.upstreamMessages < messages && Date.now() - counter.lastMs > 5000) break;
      }
      const w = counter.window;
      const runtimeCpu = process.cpuUsage(w?.runtimeCpu ?? runtimeCpuBefore);
      const result = toResult({
        kind: 'wire-limit',
        name: 'wire-limit (raw MQTT.js 256 KiB)',
        payloadBytes: WIRE_PAYLOAD_BYTES,
        messages: counter.upstreamMessages - (w?.messages ?? 0),
        warmUpMessages: w?.messages ?? 0,
        published: messages,
        durationMs: Math.max(1, counter.lastMs - (w?.ms ?? (started.startedMs as number))),
        bodyBytes: counter.bodyBytes - (w?.bodyBytes ?? 0),
        cpuMs: (after?.cpuMs ?? 0) - ((w ? w.sample : before)?.cpuMs ?? 0),
        peakRssBytes: after?.peakRssBytes ?? 0,
        latencies: undefined,
        runtimeCpuMs: (runtimeCpu.user + runtimeCpu.system) / 1000 - (counter.ownMs - (w?.ownMs ?? 0)),
        peakUpstreamQueue: peakQueue,
      });
      this.opts.progress(`  ${result.wireMBps} MB/s`);
      return result;
    } finally {
      await pub?.stop();
      await runtime.stop();
      rmSync(stateDir, { recursive: true, force: true });
    }
  }

  /** Throughput run of one module at full speed over the fast link. */
  throughput(
    kind: 'naive' | 'translator',
    payloadBytes: number,
    transport?: BenchTransport,
  ): Promise<BenchResult> {
    return this.runModule({
      kind,
      ...(transport ? { transport } : {}),
      payloadBytes,
      messages: this.messages,
      targetRate: 0,
      link: FAST_LINK,
      edgeHubEnv: FAST_EDGEHUB_ENV,
      resultKind: kind,
      name: kind === 'naive' ? 'naive (SDK MQTT, 1 msg/send)' : `translator/${transport}`,
    });
  }

  /**
   * Overload: the upstream link accepts `upstreamMBps`, the source publishes 10× that for
   * `secs`; edgeHub's in-memory store is capped so it refuses once full and the translator's
   * bounded buffer must hold while the broker keeps the backlog.
   */
  overload(
    transport: BenchTransport,
    payloadBytes: number,
    secs: number,
    upstreamMBps = 0.25,
  ): Promise<BenchResult> {
    const upstreamRate = (upstreamMBps * 1e6) / payloadBytes;
    const rate = Math.round(upstreamRate * 10);
    return this.runModule({
      kind: 'translator',
      transport,
      payloadBytes,
      messages: rate * secs,
      targetRate: rate,
      link: { rttMs: 14, bandwidthMbps: upstreamMBps * 8 },
      edgeHubEnv: { MaxUpstreamBatchSize: '10' },
      storeMaxBytes: 16 * 1024 * 1024,
      endWithPublisher: true,
      resultKind: 'overload',
      name: `overload translator/${transport} 10×`,
    });
  }
}

/**
 * edgeperf measuring itself: `edgeperf local` at `targetRate` for `messages`, as a user runs it;
 * its own CPU is `measurerCpuPercent` of the summary (the runtime and modules are other processes).
 */
export async function measureEdgeperf(
  distRoot: string,
  messages: number,
  targetRate: number,
  progress: (line: string) => void,
): Promise<BenchResult> {
  progress(`▶ edgeperf local ${messages} × 1 KB at ${targetRate} msg/s (edgeperf's own CPU)`);
  const child = startNode('edgeperf local', join(distRoot, 'perf-cli', 'main.js'), [
    'local',
    '--burst-length',
    String(messages),
    '--target-rate',
    String(targetRate),
    '--payload-length',
    '1024',
    '--json',
  ]);
  let peakRss = 0;
  const timer = setInterval(() => {
    const s = sampleProcess(child.pid);
    if (s) peakRss = Math.max(peakRss, s.peakRssBytes);
  }, 500);
  const code = await child.exited.finally(() => clearInterval(timer));
  const summary = child.lines.find((l) => typeof l.measurerCpuPercent === 'number') as
    | {
        measurerCpuPercent: number;
        upstream: { messages: number; ratePerSec: number; hubMessages: number };
        source: { sent?: number };
        bursts?: { durationMs?: number }[];
        latencyMs: { p50: number; p99: number };
        integrity: { sent: number; lost: number };
      }
    | undefined;
  if (code !== 0 || summary === undefined)
    throw new Error(`edgeperf local exited ${code} without a summary: ${child.stderrText.slice(-400)}`);
  const durationMs = summary.bursts?.[0]?.durationMs ?? (messages / targetRate) * 1000;
  const result: BenchResult = {
    ...toResult({
      kind: 'measurer',
      name: 'edgeperf local (its own process)',
      payloadBytes: 1024,
      messages: summary.upstream.messages,
      published: summary.integrity.sent,
      durationMs,
      bodyBytes: 0,
      cpuMs: (summary.measurerCpuPercent / 100) * durationMs,
      peakRssBytes: peakRss,
      latencies: undefined,
    }),
    latencyMs: { p50: summary.latencyMs.p50, p99: summary.latencyMs.p99, samples: summary.upstream.messages },
    cpuPercent: summary.measurerCpuPercent,
  };
  progress(`  edgeperf used ${summary.measurerCpuPercent}% of a core; peak RSS ${result.peakRssMB} MB`);
  return result;
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-600).replace(/\s+/g, ' ');
  } catch {
    return '(none)';
  }
}

function firstBurstStart(summary: JsonLine | undefined): number | undefined {
  const bursts = summary?.bursts;
  if (!Array.isArray(bursts) || bursts.length === 0) return undefined;
  const s = (bursts[0] as { startedAt?: unknown }).startedAt;
  return typeof s === 'number' ? s : undefined;
}

interface RawMeasurement {
  readonly kind: BenchKind;
  readonly name: string;
  readonly transport?: string;
  readonly payloadBytes: number;
  readonly messages: number;
  readonly published: number;
  readonly warmUpMessages?: number;
  readonly durationMs: number;
  readonly bodyBytes: number;
  readonly cpuMs: number;
  readonly peakRssBytes: number;
  readonly latencies: readonly number[] | undefined;
  /** CPU of the bench process (local runtime) over the run, ms. */
  readonly runtimeCpuMs?: number;
  /** Most messages edgeHub's upstream queue held at once during the run. */
  readonly peakUpstreamQueue?: number;
}

/** Turns raw counters into a result row (rates per second, MB = 10^6 bytes). */
export function toResult(m: RawMeasurement): BenchResult {
  const secs = m.durationMs / 1000;
  const logicalBytes = m.kind === 'wire-limit' ? m.bodyBytes : m.messages * m.payloadBytes;
  return {
    kind: m.kind,
    name: m.name,
    ...(m.transport ? { transport: m.transport } : {}),
    payloadBytes: m.payloadBytes,
    messages: m.messages,
    ...(m.warmUpMessages ? { warmUpMessages: m.warmUpMessages } : {}),
    published: m.published,
    durationMs: Math.round(m.durationMs),
    msgPerSec: round(m.messages / secs, 0),
    logicalMBps: round(logicalBytes / secs / 1e6, 2),
    wireMBps: round(m.bodyBytes / secs / 1e6, 2),
    cpuMsPer1000: m.messages > 0 ? round((m.cpuMs * 1000) / m.messages, 1) : 0,
    ...(m.runtimeCpuMs !== undefined && m.messages > 0
      ? { runtimeCpuMsPer1000: round((m.runtimeCpuMs * 1000) / m.messages, 1) }
      : {}),
    peakRssMB: round(m.peakRssBytes / 1e6, 0),
    ...(m.peakUpstreamQueue === undefined ? {} : { peakUpstreamQueue: m.peakUpstreamQueue }),
    latencyMs:
      m.latencies && m.latencies.length > 0
        ? {
            p50: round(percentile(m.latencies, 50), 0),
            p99: round(percentile(m.latencies, 99), 0),
            samples: m.latencies.length,
          }
        : null,
  };
}

/** Messages in edgeHub's upstream queues now (0 before the runtime started). */
function upstreamQueueLength(runtime: LocalEdgeRuntime): number {
  let n = 0;
  for (const q of runtime.storeAndForward?.store.queueLengths() ?? []) n += q.length;
  return n;
}

/** The compiled package root this file runs from (`dist/bench/runner.js` → `dist`). */
export function defaultDistRoot(): string {
  return dirname(dirname(fileURLToPath(import.meta.url)));
}
