import device, { type DeviceMethodRequest, type DeviceMethodResponse, type Twin } from 'azure-iot-device';
import { Mqtt } from 'azure-iot-device-mqtt';
import { ConfigError, EdgePerfError, type Logger, toError } from '../common/index.js';
import type { BurstEngine, BurstResult, SimulatorStats } from './burst.js';
import { parseBurstSettings } from './settings.js';

/** A direct-method answer: HTTP-like status and a JSON payload. */
export interface MethodReply {
  readonly status: number;
  readonly payload: unknown;
}

/** Direct methods the simulator module answers. */
export const SIMULATOR_METHODS = ['start', 'stop', 'getStats'] as const;

/** Bursts listed in `getStats` and reported properties: the latest ones (payload limits, edge-facts §9). */
const MAX_LISTED_BURSTS = 50;

/** Options of {@link SimulatorController}. */
export interface SimulatorControllerOptions {
  readonly engine: BurstEngine;
  readonly logger: Logger;
  /** Where reported-property patches go (the module twin); default: nowhere. */
  readonly report?: (patch: Record<string, unknown>) => void;
}

/**
 * The simulator's control surface, free of the SDK so it can be tested directly: direct methods,
 * the twin's desired `config` (with `autoStart`) and reported-property patches.
 *
 * - `start` {@link BurstSettings} → 200 `{started:true, sessionId}`; 400 `{error}` with a one-line
 *   message naming the invalid field(s); 409 `{error}` when a run is going.
 * - `stop` → 200 with the stats after stopping.
 * - `getStats` → 200 {@link SimulatorStats} (latest 50 bursts).
 *
 * Reported properties: `{ simulator: { state, sessionId, burst, messagesSent, messagesFailed,
 * violations, ratePerSec, lastBurst, error } }`, patched at start, after each burst and at the end.
 */
export class SimulatorController {
  private readonly options: SimulatorControllerOptions;
  private desiredConfig: Record<string, unknown> = {};

  constructor(options: SimulatorControllerOptions) {
    this.options = options;
  }

  /** Answers a direct method; never throws. */
  handleMethod(name: string, payload: unknown): Promise<MethodReply> | MethodReply {
    switch (name) {
      case 'start':
        return this.start(payload, 'start');
      case 'stop':
        return this.options.engine.stop().then(() => ({ status: 200, payload: this.statsPayload() }));
      case 'getStats':
        return { status: 200, payload: this.statsPayload() };
      default:
        return {
          status: 404,
          payload: { error: `unknown method "${name}"; use ${SIMULATOR_METHODS.join(', ')}` },
        };
    }
  }

  /**
   * Applies a desired-properties document or patch. `config` patches merge (a null removes a key,
   * as twin patches do); when the merged config has `autoStart: true` and no run is going, a run
   * starts with it. Invalid config is logged and reported as `simulator.error`.
   */
  handleDesired(desired: Record<string, unknown>): void {
    const patch = desired.config;
    if (patch === undefined) return;
    if (patch === null || typeof patch !== 'object') {
      this.desiredConfig = {};
      return;
    }
    for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
      if (v === null) delete this.desiredConfig[k];
      else this.desiredConfig[k] = v;
    }
    const { autoStart, ...rest } = this.desiredConfig;
    if (autoStart !== true) return;
    if (this.options.engine.running) {
      this.options.logger.info(
        'desired config changed while a run is going; it applies to the next autoStart',
      );
      return;
    }
    // Twin metadata is not a setting.
    const settings = Object.fromEntries(Object.entries(rest).filter(([k]) => !k.startsWith('$')));
    const reply = this.start(settings, 'twin.config');
    if (reply.status !== 200) this.options.logger.warn({ reply: reply.payload }, 'autoStart refused');
  }

  /** Reports a finished burst (wire to `BurstEngineOptions.onBurstEnd`). */
  onBurstEnd(result: BurstResult): void {
    this.options.logger.info(
      {
        burst: result.burst,
        messages: result.acknowledged,
        ratePerSec: result.ratePerSec,
        violations: result.violations,
        failed: result.failed,
      },
      'burst done',
    );
    this.report();
  }

  private start(input: unknown, source: string): MethodReply {
    try {
      const settings = parseBurstSettings(input, source);
      const run = this.options.engine.start(settings);
      this.options.logger.info({ settings }, 'run started');
      this.report();
      void run.done.then(() => this.report());
      return { status: 200, payload: { started: true, sessionId: run.sessionId } };
    } catch (err) {
      const e = toError(err);
      const status =
        e instanceof ConfigError ? 400 : e instanceof EdgePerfError && e.code === 'E_BUSY' ? 409 : 500;
      this.report(e.message);
      return { status, payload: { error: e.message } };
    }
  }

  private statsPayload(): SimulatorStats {
    const s = this.options.engine.stats();
    return { ...s, bursts: s.bursts.slice(-MAX_LISTED_BURSTS) };
  }

  private report(error: string | null = null): void {
    if (this.options.report === undefined) return;
    const s = this.options.engine.stats();
    const last = s.bursts.at(-1);
    try {
      this.options.report({
        simulator: {
          state: s.state,
          sessionId: s.sessionId ?? null,
          burst: s.burst,
          messagesSent: s.messagesSent,
          messagesFailed: s.messagesFailed,
          violations: s.violations,
          ratePerSec: s.ratePerSec,
          lastBurst:
            last === undefined
              ? null
              : {
                  burst: last.burst,
                  messages: last.acknowledged,
                  ratePerSec: last.ratePerSec,
                  violations: last.violations,
                  durationMs: Math.round(last.durationMs),
                },
          error,
        },
      });
    } catch (err) {
      this.options.logger.warn({ err: toError(err).message }, 'reported properties not sent');
    }
  }
}

/** Options of {@link SimulatorModule}. */
export interface SimulatorModuleOptions {
  readonly controller: SimulatorController;
  readonly logger: Logger;
}

/**
 * The IoT Edge face: `ModuleClient.fromEnvironment(Mqtt)` (edge-facts §8), the direct methods of
 * {@link SimulatorController}, and the module twin (desired `config`, reported `simulator`).
 */
export class SimulatorModule {
  private readonly options: SimulatorModuleOptions;
  private client: device.ModuleClient | undefined;
  private twin: Twin | undefined;

  constructor(options: SimulatorModuleOptions) {
    this.options = options;
  }

  /**
   * Connects to edgeHub, registers the direct methods and reads the twin.
   * @throws Error when the environment lacks edgeHub settings or edgeHub refuses the connection.
   */
  async start(): Promise<void> {
    const log = this.options.logger;
    const client = await device.ModuleClient.fromEnvironment(Mqtt);
    this.client = client;
    client.on('error', (err: Error) => log.warn({ err: err.message }, 'edgeHub client error'));
    await client.open();
    for (const name of SIMULATOR_METHODS) {
      // The SDK types both arguments optional; it always passes them.
      client.onMethod(name, (request?: DeviceMethodRequest, response?: DeviceMethodResponse) => {
        if (request !== undefined && response !== undefined) void this.answer(name, request, response);
      });
    }
    const twin = await client.getTwin();
    this.twin = twin;
    // The first event carries the whole desired document, later ones the patches.
    twin.on('properties.desired', (desired: Record<string, unknown>) => {
      this.options.controller.handleDesired(desired);
    });
    log.info('simulator module connected to edgeHub');
  }

  /** Sends a reported-properties patch; failures are logged (wire to the controller's `report`). */
  report(patch: Record<string, unknown>): void {
    const twin = this.twin;
    if (twin === undefined) return;
    twin.properties.reported.update(patch, (err?: Error) => {
      if (err) this.options.logger.warn({ err: err.message }, 'reported properties update failed');
    });
  }

  /** Closes the edgeHub connection. */
  async stop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    this.twin = undefined;
    if (c !== undefined) await c.close();
  }

  private async answer(
    name: string,
    request: DeviceMethodRequest,
    response: DeviceMethodResponse,
  ): Promise<void> {
    try {
      const reply = await this.options.controller.handleMethod(name, request.payload);
      await response.send(reply.status, reply.payload);
    } catch (err) {
      this.options.logger.warn({ method: name, err: toError(err).message }, 'direct method response failed');
    }
  }
}
