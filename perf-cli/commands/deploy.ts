import { readFileSync } from 'node:fs';
// azure-iothub is CommonJS and Node's ESM loader cannot see its `Registry` export by name.
import iothub from 'azure-iothub';
import type { Command } from 'commander';
import {
  createLocalHubAgent,
  parseDeployment,
  resolvePlaceholders,
  useLocalHubAgent,
} from '../../emulator/index.js';
import { EdgePerfError, parseConnectionString } from '../../modules/common/index.js';
import { action } from '../cli-errors.js';

interface DeployFlags {
  manifest: string;
  iothubConnectionString?: string;
  deviceId?: string;
  caFile?: string;
  dryRun: boolean;
  registry?: string;
  tag?: string;
}

/** `edgeperf deploy`: applies a deployment manifest to one device (applyConfigurationContentOnDevice). */
export function registerDeployCommand(program: Command): void {
  program
    .command('deploy')
    .description(
      'apply a deployment manifest to an IoT Edge device through IoT Hub (Azure or the local runtime)',
    )
    .requiredOption(
      '--manifest <file>',
      'deployment manifest, or a template (its MODULES.name image placeholders are resolved)',
    )
    .option(
      '--iothub-connection-string <cs>',
      'IoT Hub service connection string (env EDGEPERF_IOTHUB_CONNECTION_STRING)',
    )
    .option('--device-id <id>', 'IoT Edge device id (env EDGEPERF_DEVICE_ID)')
    .option('--ca-file <pem>', 'CA the service API chains to, for a local runtime (env EDGEPERF_CA_FILE)')
    .option('--registry <r>', 'image repository prefix for template placeholders', 'edgeperf')
    .option('--tag <t>', 'image tag for template placeholders', 'local')
    .option('--dry-run', 'validate and print what would be applied, without contacting IoT Hub', false)
    .action(
      action(async (flags: DeployFlags) => {
        let text: string;
        try {
          text = readFileSync(flags.manifest, 'utf8');
        } catch (err) {
          throw new EdgePerfError('E_ARGS', `--manifest ${flags.manifest}: ${(err as Error).message}`, {
            exitCode: 2,
          });
        }
        let content: { modulesContent: Record<string, unknown> };
        try {
          content = JSON.parse(
            resolvePlaceholders(text, {
              ...(flags.registry ? { registry: flags.registry } : {}),
              ...(flags.tag ? { tag: flags.tag } : {}),
            }),
          );
        } catch (err) {
          throw new EdgePerfError(
            'E_MANIFEST',
            `--manifest ${flags.manifest}: not valid JSON (${(err as Error).message})`,
            { exitCode: 2 },
          );
        }
        // Refuse what the device would refuse, before it reaches IoT Hub.
        const spec = parseDeployment(content);
        const deviceId = flags.deviceId ?? process.env.EDGEPERF_DEVICE_ID;
        if (flags.dryRun) {
          process.stdout.write(
            `${JSON.stringify({ dryRun: true, deviceId: deviceId ?? null, modules: spec.modules.map((m) => ({ name: m.name, image: m.image, status: m.status })), content: { modulesContent: content.modulesContent ?? content } }, null, 2)}\n`,
          );
          return;
        }
        const cs = flags.iothubConnectionString ?? process.env.EDGEPERF_IOTHUB_CONNECTION_STRING;
        if (!cs)
          throw new EdgePerfError(
            'E_ARGS',
            'missing --iothub-connection-string (or env EDGEPERF_IOTHUB_CONNECTION_STRING)',
            { exitCode: 2 },
          );
        if (!deviceId)
          throw new EdgePerfError('E_ARGS', 'missing --device-id (or env EDGEPERF_DEVICE_ID)', {
            exitCode: 2,
          });
        const caFile = flags.caFile ?? process.env.EDGEPERF_CA_FILE;
        const host = parseConnectionString(cs).HostName ?? '';
        let registry = iothub.Registry.fromConnectionString(cs);
        if (host.includes(':') || caFile) {
          registry = useLocalHubAgent(
            registry,
            createLocalHubAgent(caFile ? { caPem: readFileSync(caFile, 'utf8') } : {}),
          );
        }
        try {
          await registry.applyConfigurationContentOnDevice(deviceId, {
            modulesContent: (content.modulesContent ?? content) as never,
          });
        } catch (err) {
          throw new EdgePerfError('E_DEPLOY', `deploying to ${deviceId} failed: ${(err as Error).message}`);
        }
        process.stdout.write(`applied ${flags.manifest} to ${deviceId} (${spec.modules.length} modules)\n`);
      }),
    );
}
