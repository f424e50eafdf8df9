import { EdgePerfError, type Logger } from '../../modules/common/index.js';
import type { RunSummary } from '../analysis/summary-types.js';
import type { ServiceRegistry } from '../iothub-service.js';
import { freePorts, relocatePorts } from '../local-ports.js';
import type { ManifestTarget } from '../manifest/index.js';
import { runMeasurement } from '../measure/measurement.js';
import { waitForDeployment, waitForModules } from '../module-readiness.js';
import { buildRunManifest, runConfigSummary, translatorModules } from '../run-manifest.js';
import type { HubConnection } from './hub-connection.js';
import type { LocalFlags } from './local.js';
import { burstOf } from './measure-flags.js';
import { progressBar } from './measure-output.js';

/** How `sweep --target azure` reaches the device and what it deploys. */
export interface AzureCellOptions {
  readonly connection: HubConnection;
  /** Registry client for the same hub (applies the manifest, reads the `$edgeAgent` twin). */
  readonly registry: ServiceRegistry;
  /** Image repository prefix and tag for `${MODULES.x}`. */
  readonly images: { readonly registry: string; readonly tag: string };
  /**
   * `device`: IoT Edge on Docker (modules find the broker by module name). `local`: the modules run
   * on this machine (`edgeperf emulator`), so their loopback ports are moved to free ones.
   */
  readonly manifestTarget: ManifestTarget;
  /** How long edgeAgent may take to apply a cell's manifest and its modules to answer, s. */
  readonly deployTimeoutSecs: number;
  /** One progress line (stderr). */
  readonly progress: (line: string) => void;
  readonly signal: AbortSignal;
  readonly logger: Logger;
}

/**
 * One `sweep --target azure` cell: deploys the cell's manifest to the device through IoT Hub
 * (`applyConfigurationContentOnDevice`), waits until edgeAgent reports it applied with every module
 * running and the simulator and translators answer, then measures exactly as `edgeperf run` does.
 *
 * @throws EdgePerfError `E_DEPLOY` when IoT Hub refuses the manifest or edgeAgent reports it
 *   failed, `E_DEPLOY_TIMEOUT`/`E_MODULE` when the device is not ready within the deploy timeout.
 */
export async function runAzureCell(cell: LocalFlags, o: AzureCellOptions): Promise<RunSummary> {
  const { connection: hub } = o;
  const manifest = buildRunManifest({ ...cell, target: o.manifestTarget, ...o.images });
  if (o.manifestTarget === 'local') {
    const ports = await freePorts(8);
    relocatePorts(manifest as unknown as Record<string, unknown>, () => ports.shift() ?? 0);
  }
  const translators = translatorModules(manifest, cell.translatorModule);
  const modules = Object.entries(manifest.modulesContent.$edgeAgent['properties.desired'].modules)
    .filter(([, m]) => m.status !== 'stopped')
    .map(([name]) => name);

  const t0 = Date.now();
  try {
    await o.registry.applyConfigurationContentOnDevice(hub.deviceId, {
      modulesContent: manifest.modulesContent as never,
    });
  } catch (err) {
    throw new EdgePerfError('E_DEPLOY', `deploying to ${hub.deviceId} failed: ${(err as Error).message}`);
  }
  const version = await waitForDeployment({
    registry: o.registry,
    deviceId: hub.deviceId,
    modules,
    timeoutSecs: o.deployTimeoutSecs,
    signal: o.signal,
    logger: o.logger,
  });
  await waitForModules({
    iothubConnectionString: hub.iothubConnectionString,
    ...(hub.caPem === undefined ? {} : { caPem: hub.caPem }),
    deviceId: hub.deviceId,
    modules: [cell.simulatorModule, ...translators],
    readers: new Set(translators),
    // What is left of the deploy timeout, but a minute at least: modules reconnect after edgeHub restarts.
    timeoutSecs: Math.max(60, o.deployTimeoutSecs - Math.floor((Date.now() - t0) / 1000)),
    logger: o.logger,
  });
  o.progress(
    `edgeAgent applied desired version ${version}, ${modules.length} modules ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  return runMeasurement({
    mode: 'run',
    ...hub,
    simulatorModule: cell.simulatorModule,
    translatorModule: cell.translatorModule,
    moreTranslatorModules: translators.slice(1),
    burst: burstOf(cell),
    timeoutSecs: cell.timeout,
    config: runConfigSummary(manifest, cell),
    onProgress: progressBar(!cell.json),
    signal: o.signal,
    logger: o.logger,
  });
}
