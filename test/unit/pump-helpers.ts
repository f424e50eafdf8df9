import type { UpstreamSink } from '../../emulator/edgehub/contracts.js';
import type { EdgeMessage } from '../../emulator/edgehub/message.js';
import { parseRoutes, type RouteSpec } from '../../emulator/edgehub/routes/index.js';
import type { EdgeHubDesiredSettings, EdgeHubEnvSettings } from '../../emulator/edgehub/settings.js';

let counter = 0;

/** A message from `module` on device `edge1` (or a leaf device when module is undefined). */
export function makeMessage(
  module: string | undefined,
  opts: { output?: string; bodyBytes?: number; props?: Record<string, string>; seq?: number } = {},
): EdgeMessage {
  counter++;
  const body = Buffer.alloc(opts.bodyBytes ?? 16, 0x61);
  if (opts.seq !== undefined) body.write(String(opts.seq).padStart(8, '0'));
  return {
    id: `m${counter}`,
    body,
    properties: { seq: String(opts.seq ?? counter), ...opts.props },
    system: {
      connectionDeviceId: 'edge1',
      receivedAtMs: Date.now(),
      ...(module !== undefined ? { connectionModuleId: module } : {}),
      ...(opts.output !== undefined ? { outputName: opts.output } : {}),
    },
  };
}

/** Env settings with edgeHub defaults, overridable. */
export function envSettings(overrides: Partial<EdgeHubEnvSettings> = {}): EdgeHubEnvSettings {
  return {
    maxUpstreamBatchSize: 10,
    upstreamFanOutFactor: 10,
    usePersistentStorage: false,
    storageFolder: '/tmp/edgeperf-test-none/edgeHub',
    enableNonPersistentStorageBackup: false,
    messageCleanupIntervalSecs: 1800,
    checkEntireQueueOnCleanup: false,
    messageAckTimeoutSecs: 30,
    metricsListenerPort: 0,
    upstreamProtocol: 'Amqp',
    ...overrides,
  };
}

/** Desired settings with the given routes. */
export function desiredSettings(
  routes: Record<string, RouteSpec>,
  extra: { timeToLiveSecs?: number; maxSizeBytes?: number } = {},
): EdgeHubDesiredSettings {
  return { schemaVersion: '1.1', routes: parseRoutes(routes), ...extra };
}

/** A sink that records every batch and acknowledges after an optional gate. */
export class RecordingSink implements UpstreamSink {
  readonly batches: { messages: EdgeMessage[]; startedAt: number }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  failNext = 0;
  private gate: Promise<void> = Promise.resolve();
  private release: (() => void) | undefined;

  /** Holds every send until `open()`. */
  hold(): void {
    if (this.release !== undefined) return;
    this.gate = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  open(): void {
    this.release?.();
    this.release = undefined;
    this.gate = Promise.resolve();
  }

  get messages(): EdgeMessage[] {
    return this.batches.flatMap((b) => b.messages);
  }

  async sendBatch(messages: readonly EdgeMessage[]): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await this.gate;
      if (this.failNext > 0) {
        this.failNext--;
        throw new Error('simulated upstream failure');
      }
      this.batches.push({ messages: [...messages], startedAt: Date.now() });
    } finally {
      this.inFlight--;
    }
  }
}

/** Resolves when `predicate` holds, polling on real or fake timers' microtasks. */
export async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  // performance.now: Date may be faked by the test.
  const start = performance.now();
  while (!predicate()) {
    if (performance.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}
