import { ConfigError, type ConfigIssue } from '../../modules/common/index.js';
import type { DeploymentManifest } from './manifest-types.js';

/** The IoT Edge metrics collector image (Azure Monitor integration). */
export const METRICS_COLLECTOR_IMAGE = 'mcr.microsoft.com/azureiotedge-metrics-collector:1.1';

/** Env vars the collector's workspace settings come from (printed by scripts/provision-azure.sh). */
export const COLLECTOR_ENV = {
  workspaceId: 'EDGEPERF_LOG_ANALYTICS_WORKSPACE_ID',
  sharedKey: 'EDGEPERF_LOG_ANALYTICS_SHARED_KEY',
  resourceId: 'EDGEPERF_IOTHUB_RESOURCE_ID',
} as const;

/**
 * Adds the metrics collector module, scraping edgeHub's and every translator's `/metrics` and
 * uploading to Log Analytics (the workbook in dashboards/ reads what it sends).
 *
 * @param env - where the workspace settings come from (process.env by default).
 * @throws ConfigError naming each missing env var.
 */
export function addMetricsCollector(
  manifest: DeploymentManifest,
  target: 'local' | 'device',
  env: Readonly<Record<string, string | undefined>> = process.env,
): void {
  const issues: ConfigIssue[] = [];
  const need = (name: string): string => {
    const v = env[name];
    if (!v)
      issues.push({
        field: `env.${name}`,
        message: 'required by --metrics-collector (see scripts/README.md)',
      });
    return v ?? '';
  };
  const workspaceId = need(COLLECTOR_ENV.workspaceId);
  const sharedKey = need(COLLECTOR_ENV.sharedKey);
  const resourceId = need(COLLECTOR_ENV.resourceId);
  if (issues.length > 0) throw new ConfigError('metrics collector settings', issues);
  const agent = manifest.modulesContent.$edgeAgent['properties.desired'] as unknown as {
    systemModules: { edgeHub: { env?: Record<string, { value: unknown }> } };
    modules: Record<string, unknown>;
  };
  const host = (module: string) => (target === 'device' ? module : '127.0.0.1');
  const hubPort = String(agent.systemModules.edgeHub.env?.Metrics__Listener__Port?.value ?? 9600);
  const endpoints = [`http://${host('edgeHub')}:${hubPort}/metrics`];
  for (const [name, m] of Object.entries(
    agent.modules as Record<string, { env?: Record<string, { value: unknown }> }>,
  )) {
    const port = m.env?.MetricsPort?.value;
    if (port !== undefined) endpoints.push(`http://${host(name)}:${String(port)}/metrics`);
  }
  const value = (v: string) => ({ value: v });
  agent.modules.metricscollector = {
    version: '1.0',
    type: 'docker',
    status: 'running',
    restartPolicy: 'always',
    settings: { image: METRICS_COLLECTOR_IMAGE, createOptions: '{}' },
    env: {
      ResourceId: value(resourceId),
      UploadTarget: value('AzureMonitor'),
      LogAnalyticsWorkspaceId: value(workspaceId),
      LogAnalyticsSharedKey: value(sharedKey),
      MetricsEndpointsCSV: value(endpoints.join(',')),
      ScrapeFrequencyInSecs: value('30'),
    },
  };
}
