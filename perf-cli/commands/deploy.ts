import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseDeployment, resolvePlaceholders } from '../../emulator/index.js';
import { EdgePerfError } from '../../modules/common/index.js';
import { action } from '../cli-errors.js';
import { serviceRegistry } from '../iothub-service.js';
import { readPemFlag, requireValues } from './hub-connection.js';

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
        const [cs = '', device = ''] = requireValues([
          {
            value: flags.iothubConnectionString ?? process.env.EDGEPERF_IOTHUB_CONNECTION_STRING,
            flag: '--iothub-connection-string',
            env: 'EDGEPERF_IOTHUB_CONNECTION_STRING',
          },
          { value: deviceId, flag: '--device-id', env: 'EDGEPERF_DEVICE_ID' },
        ]);
        const caFile = flags.caFile ?? process.env.EDGEPERF_CA_FILE;
        const registry = serviceRegistry(cs, caFile ? readPemFlag('--ca-file', caFile) : undefined);
        try {
          await registry.applyConfigurationContentOnDevice(device, {
            modulesContent: (content.modulesContent ?? content) as never,
          });
        } catch (err) {
          throw new EdgePerfError('E_DEPLOY', `deploying to ${device} failed: ${(err as Error).message}`);
        }
        process.stdout.write(`applied ${flags.manifest} to ${device} (${spec.modules.length} modules)\n`);
      }),
    );
}
