import { constants } from 'node:os';
import { ConfigError, type Logger } from '../../modules/common/index.js';
import type { IdentityRegistry } from '../iothub/registry.js';
import { isPlainObject, type TwinProperties } from '../iothub/registry-twin.js';
import type { DeploymentSpec } from './manifest.js';
import type { ModuleState, ModuleSupervisor } from './supervisor.js';

/**
 * `runtimeStatus` values edgeAgent reports per module (learn.microsoft.com/azure/iot-edge/
 * module-edgeagent-edgehub). `unknown`: a module the local agent registers but does not run
 * (no local entry point, or `--no-modules`).
 */
export type ModuleRuntimeStatus = 'running' | 'backoff' | 'stopped' | 'failed' | 'unknown';

/** `lastDesiredStatus` of the `$edgeAgent` twin: 200 applied, 400 invalid, 500 failed to apply. */
export interface DesiredStatus {
  readonly code: number;
  readonly description: string;
}

/** Options for {@link EdgeAgentTwin}. */
export interface EdgeAgentTwinOptions {
  readonly registry: IdentityRegistry;
  readonly deviceId: string;
  readonly supervisor: ModuleSupervisor;
  readonly logger: Logger;
}

/** The system module identities IoT Hub lists for every IoT Edge device. */
const SYSTEM_MODULES = ['$edgeAgent', '$edgeHub'] as const;

interface Applied {
  readonly agentVersion: number;
  readonly hubVersion: number;
  readonly status: DesiredStatus;
}

/**
 * The `$edgeAgent` and `$edgeHub` module twins as a real IoT Edge device keeps them, so a client
 * can wait for a deployment the way it would against Azure: IoT Hub's half of
 * `applyConfigurationContentOnDevice` (both twins' desired properties replaced, `$version` bumped)
 * and edgeAgent's half (`lastDesiredVersion`, `lastDesiredStatus`, and per module `runtimeStatus`,
 * `exitCode`, start/exit times and `restartCount`, rewritten whenever a module starts or exits).
 *
 * The agent owns its reported document: each report replaces it whole (keys that went away are
 * deleted), so a removed module disappears from `modules`.
 */
export class EdgeAgentTwin {
  private deployment: DeploymentSpec | undefined;
  private applied: Applied | undefined;
  private startedAtMs = 0;
  private readonly starts = new Map<string, number>();
  private readonly exits = new Map<string, { atMs: number; exitCode: number }>();
  private pending: NodeJS.Immediate | undefined;
  private readonly onStarted = (name: string): void => {
    this.starts.set(name, Date.now());
    this.schedule();
  };
  private readonly onExited = (name: string, code: number | null, signal: NodeJS.Signals | null): void => {
    // Docker's convention, which edgeAgent passes on: a signal exit is 128 + the signal number.
    const exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
    this.exits.set(name, { atMs: Date.now(), exitCode });
    this.schedule();
  };

  constructor(private readonly options: EdgeAgentTwinOptions) {}

  /** Registers `$edgeAgent` and `$edgeHub` and starts following module starts and exits. */
  start(): void {
    this.startedAtMs = Date.now();
    for (const moduleId of SYSTEM_MODULES) this.options.registry.ensure(this.identity(moduleId));
    this.options.supervisor.on('started', this.onStarted);
    this.options.supervisor.on('exited', this.onExited);
  }

  /** Stops following the supervisor; reports nothing more. */
  stop(): void {
    this.options.supervisor.off('started', this.onStarted);
    this.options.supervisor.off('exited', this.onExited);
    if (this.pending) clearImmediate(this.pending);
    this.pending = undefined;
  }

  /**
   * IoT Hub's half of a deployment: replaces the desired properties of both system twins with the
   * deployment's (every call bumps `$version`, as applying a manifest does). Returns the versions
   * for {@link succeeded} or {@link failed}.
   */
  setDesired(deployment: DeploymentSpec): { agentVersion: number; hubVersion: number } {
    const { registry } = this.options;
    return {
      agentVersion: registry.replaceDesired(
        this.identity('$edgeAgent'),
        structuredClone(deployment.systemDesired.$edgeAgent),
      ).version,
      hubVersion: registry.replaceDesired(
        this.identity('$edgeHub'),
        structuredClone(deployment.systemDesired.$edgeHub),
      ).version,
    };
  }

  /** Reports `deployment` (desired versions from {@link setDesired}) as applied: code 200. */
  succeeded(versions: { agentVersion: number; hubVersion: number }, deployment: DeploymentSpec): void {
    this.deployment = deployment;
    this.applied = { ...versions, status: { code: 200, description: '' } };
    this.report();
  }

  /**
   * Reports that applying the desired versions failed: 400 for an invalid configuration, 500 for
   * anything else, with the error's message. The modules reported stay those of the last good deployment.
   */
  failed(versions: { agentVersion: number; hubVersion: number }, err: unknown): void {
    const description = err instanceof Error ? err.message : String(err);
    this.applied = { ...versions, status: { code: err instanceof ConfigError ? 400 : 500, description } };
    this.report();
  }

  /** Writes both system twins' reported properties now. */
  report(): void {
    if (this.pending) clearImmediate(this.pending);
    this.pending = undefined;
    if (this.applied === undefined) return;
    try {
      this.replaceReported('$edgeAgent', this.agentReported(this.applied));
      this.replaceReported('$edgeHub', {
        lastDesiredVersion: this.applied.hubVersion,
        lastDesiredStatus: { ...this.applied.status },
      });
    } catch (err) {
      // A report lost here is rewritten on the next start or exit; it must not stop the agent.
      this.options.logger.warn({ err }, 'could not write the $edgeAgent reported properties');
    }
  }

  private schedule(): void {
    // After the supervisor's own bookkeeping for this event (its backoff timer), on the same turn.
    this.pending ??= setImmediate(() => this.report());
  }

  private agentReported(applied: Applied): TwinProperties {
    const agentDesired = (this.deployment?.systemDesired.$edgeAgent ?? {}) as {
      schemaVersion?: string;
      runtime?: { type?: string };
      systemModules?: Record<string, { settings?: { image?: string } }>;
    };
    const since = new Date(this.startedAtMs).toISOString();
    const system = (name: string) => ({
      type: 'docker',
      runtimeStatus: 'running',
      lastStartTimeUtc: since,
      restartCount: 0,
      ...(name === 'edgeHub' ? { status: 'running' } : {}),
      settings: { image: agentDesired.systemModules?.[name]?.settings?.image ?? '' },
    });
    const states = this.options.supervisor.states();
    const modules: TwinProperties = {};
    for (const spec of this.deployment?.modules ?? []) {
      const state = states[spec.name];
      const exit = this.exits.get(spec.name);
      const started = this.starts.get(spec.name) ?? (state?.kind === 'running' ? state.since : undefined);
      modules[spec.name] = {
        type: 'docker',
        runtimeStatus: runtimeStatus(spec.status, state, exit?.exitCode),
        ...(exit ? { exitCode: exit.exitCode, lastExitTimeUtc: new Date(exit.atMs).toISOString() } : {}),
        ...(started === undefined ? {} : { lastStartTimeUtc: new Date(started).toISOString() }),
        restartCount: state?.restarts ?? 0,
        status: spec.status,
        restartPolicy: spec.restartPolicy,
        settings: { image: spec.image },
      };
    }
    return {
      schemaVersion: agentDesired.schemaVersion ?? '1.1',
      lastDesiredVersion: applied.agentVersion,
      lastDesiredStatus: { ...applied.status },
      runtime: {
        type: agentDesired.runtime?.type ?? 'docker',
        platform: { os: process.platform, architecture: process.arch },
      },
      systemModules: { edgeAgent: system('edgeAgent'), edgeHub: system('edgeHub') },
      modules,
    };
  }

  private replaceReported(moduleId: string, next: TwinProperties): void {
    const identity = this.identity(moduleId);
    const { $version: _v, ...current } = this.options.registry.getTwin(identity).reported;
    this.options.registry.patchReported(identity, replacementPatch(current, next));
  }

  private identity(moduleId: string) {
    return { deviceId: this.options.deviceId, moduleId };
  }
}

function runtimeStatus(
  wanted: 'running' | 'stopped',
  state: ModuleState | undefined,
  lastExitCode: number | undefined,
): ModuleRuntimeStatus {
  if (state === undefined) return 'unknown';
  if (state.kind === 'running') return 'running';
  if (state.kind === 'backoff') return 'backoff';
  // Not running and not coming back: failed when its last exit was a failure it was not asked for.
  return wanted === 'running' && lastExitCode !== undefined && lastExitCode !== 0 ? 'failed' : 'stopped';
}

/** The JSON merge patch that turns `current` into `next` (keys missing from `next` become null). */
function replacementPatch(current: TwinProperties, next: TwinProperties): TwinProperties {
  const patch: TwinProperties = {};
  for (const key of Object.keys(current)) if (!(key in next)) patch[key] = null;
  for (const [key, value] of Object.entries(next)) {
    const before = current[key];
    patch[key] =
      isPlainObject(before) && isPlainObject(value)
        ? replacementPatch(before as TwinProperties, value as TwinProperties)
        : value;
  }
  return patch;
}
