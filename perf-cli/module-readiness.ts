import { EdgePerfError, type Logger } from '../modules/common/index.js';
import { type ServiceRegistry, serviceClient } from './iothub-service.js';

/** Options of {@link waitForModules}. */
export interface ModuleReadinessOptions {
  /** IoT Hub service connection string. */
  readonly iothubConnectionString: string;
  /** PEM of the CA the service API chains to (the local runtime's); absent for Azure. */
  readonly caPem?: string;
  readonly deviceId: string;
  /** Modules that must answer `getStats`, in order. */
  readonly modules: readonly string[];
  /** Modules that must also report a connected source (translators); default none. */
  readonly readers?: ReadonlySet<string>;
  /** How long all of them may take, s; default 60. */
  readonly timeoutSecs?: number;
  readonly logger: Logger;
}

/**
 * Waits until each module answers `getStats` through the service API (they connect after
 * start-up), and each reader reports its source connected.
 * @throws EdgePerfError `E_MODULE` naming the first module that did not come up in time.
 */
export async function waitForModules(o: ModuleReadinessOptions): Promise<void> {
  const client = serviceClient(o.iothubConnectionString, o.caPem);
  const timeoutSecs = o.timeoutSecs ?? 60;
  const deadline = Date.now() + timeoutSecs * 1000;
  try {
    for (const m of o.modules) {
      for (;;) {
        try {
          const res = await client.invokeDeviceMethod(o.deviceId, m, {
            methodName: 'getStats',
            payload: {},
            responseTimeoutInSeconds: 5,
          });
          // A translator answers before its source is subscribed; messages published before that
          // would have no subscriber (found as 15 lost in a three-module run), so wait for it.
          const stats = (res.result as { payload?: { source?: { connected?: boolean }; state?: string } })
            .payload;
          const reading = stats?.source?.connected === true;
          if (!o.readers?.has(m) || reading) break;
          throw new Error(`${m} is not reading its source yet`);
        } catch (err) {
          if (Date.now() > deadline) {
            throw new EdgePerfError(
              'E_MODULE',
              `module ${m} did not come up within ${timeoutSecs} s: ${(err as Error).message}`,
            );
          }
          o.logger.debug({ module: m }, 'waiting for module');
          await new Promise((r) => setTimeout(r, 300));
        }
      }
    }
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** Options of {@link waitForDeployment}. */
export interface DeploymentWaitOptions {
  readonly registry: ServiceRegistry;
  readonly deviceId: string;
  /** Modules of the deployment that must be running (edgeHub always must). */
  readonly modules: readonly string[];
  /** How long edgeAgent may take (image pulls included), s. */
  readonly timeoutSecs: number;
  /** Between twin reads, ms; default 1000. */
  readonly pollIntervalInMs?: number;
  readonly logger: Logger;
  /** Aborting ends the wait with E_ABORTED. */
  readonly signal?: AbortSignal;
}

/** What the wait reads of the `$edgeAgent` twin (learn.microsoft.com/azure/iot-edge/module-edgeagent-edgehub). */
interface AgentTwin {
  properties: {
    desired: { $version?: number };
    reported: {
      lastDesiredVersion?: number;
      lastDesiredStatus?: { code?: number; description?: string };
      systemModules?: { edgeHub?: { runtimeStatus?: string } };
      modules?: Record<string, { runtimeStatus?: string } | undefined>;
    };
  };
}

/**
 * Waits until the device has applied the deployment last set on it, as edgeAgent tells IoT Hub in
 * the `$edgeAgent` twin: `lastDesiredVersion` has reached the desired `$version`,
 * `lastDesiredStatus.code` is 200, and edgeHub and every one of `modules` are `running`. Returns
 * the desired version applied.
 *
 * @throws EdgePerfError `E_DEPLOY` when edgeAgent reports a code other than 200 (with its
 *   description); `E_DEPLOY_TIMEOUT` after `timeoutSecs`, naming what was still missing (the
 *   version, or each module not running with its status); `E_ABORTED` on abort.
 */
export async function waitForDeployment(o: DeploymentWaitOptions): Promise<number> {
  const deadline = Date.now() + o.timeoutSecs * 1000;
  let missing = 'the $edgeAgent twin could not be read';
  for (;;) {
    if (o.signal?.aborted)
      throw new EdgePerfError('E_ABORTED', 'interrupted while waiting for the deployment');
    try {
      const twin = (await o.registry.getModuleTwin(o.deviceId, '$edgeAgent'))
        .responseBody as unknown as AgentTwin;
      const desiredVersion = twin.properties.desired.$version ?? 0;
      const reported = twin.properties.reported;
      const applied = reported.lastDesiredVersion ?? 0;
      if (applied < desiredVersion) {
        missing = `edgeAgent has applied desired version ${applied} of ${desiredVersion}`;
      } else {
        const status = reported.lastDesiredStatus ?? {};
        if (status.code !== 200) {
          throw new EdgePerfError(
            'E_DEPLOY',
            `edgeAgent on ${o.deviceId} did not apply desired version ${applied}: code ${status.code ?? 'none'}${status.description ? ` (${status.description})` : ''}`,
          );
        }
        const statusOf = (name: string) =>
          name === 'edgeHub'
            ? reported.systemModules?.edgeHub?.runtimeStatus
            : reported.modules?.[name]?.runtimeStatus;
        const notRunning = ['edgeHub', ...o.modules]
          .filter((m) => statusOf(m) !== 'running')
          .map((m) => `${m} (${statusOf(m) ?? 'not reported'})`);
        if (notRunning.length === 0) return desiredVersion;
        missing = `modules not running: ${notRunning.join(', ')}`;
      }
    } catch (err) {
      if (err instanceof EdgePerfError) throw err;
      missing = `the $edgeAgent twin could not be read (${(err as Error).message})`;
    }
    if (Date.now() > deadline) {
      throw new EdgePerfError(
        'E_DEPLOY_TIMEOUT',
        `deployment to ${o.deviceId} not applied within ${o.timeoutSecs} s: ${missing}`,
      );
    }
    o.logger.debug({ missing }, 'waiting for edgeAgent to apply the deployment');
    await new Promise((r) => setTimeout(r, o.pollIntervalInMs ?? 1000));
  }
}
