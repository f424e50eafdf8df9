import { writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { EdgePerfError } from '../../modules/common/index.js';
import { action, intInRange, numberInRange } from '../cli-errors.js';
import {
  generateManifestWithReport,
  type ManifestReport,
  type ManifestTarget,
} from '../manifest/generator.js';
import { PROFILE_NAMES, type ProfileName } from '../manifest/profiles.js';
import { parseSetAssignment } from '../manifest/set-path.js';
import { formatBytes, formatDuration } from '../manifest/sizing.js';

interface ManifestFlags {
  readonly profile: ProfileName;
  readonly rate: number;
  readonly payloadLength: number;
  readonly diskGb: number;
  readonly ttlSecs?: number;
  readonly registry: string;
  readonly tag: string;
  readonly target: ManifestTarget;
  readonly set: string[];
  readonly metricsCollector: boolean;
  readonly output?: string;
  readonly json: boolean;
}

function collectSet(value: string, previous: string[]): string[] {
  try {
    parseSetAssignment(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message.replace(/^--set [^:]*: /, ''));
  }
  return [...previous, value];
}

function imageRef(label: string): (value: string) => string {
  return (value: string) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._/:-]*$/.test(value)) {
      throw new InvalidArgumentError(`must be a ${label} (letters, digits, . _ / : -)`);
    }
    return value;
  };
}

/** One human line per decision the generator made. */
function describe(r: ManifestReport, file: string | undefined): string {
  const lines = [
    `profile ${r.profile}: ${r.ratePerSec} msg/s × ${r.payloadLength} B, disk ${r.diskGb} GB${file ? ` → ${file}` : ''}`,
    `  upstream messages ~${formatBytes(r.upstreamMessageBytes)} (${r.recordsPerMessage} record(s) each), MaxUpstreamBatchSize ${r.maxUpstreamBatchSize}`,
    `  TTL ${r.timeToLiveSecs} s (${formatDuration(r.timeToLiveSecs)}) over ${r.queues} queue(s): worst case ${formatBytes(r.sizing.diskBytes)} of ${formatBytes(r.sizing.usableDiskBytes ?? 0)} usable`,
  ];
  return `${lines.join('\n')}\n`;
}

/** `edgeperf manifest`: resolves deployment.template.json with a profile into a deployment manifest. */
export function manifestCommand(): Command {
  return new Command('manifest')
    .description(
      'Generate an IoT Edge deployment manifest from deployment/deployment.template.json and a profile, sized for a rate, message size and disk.',
    )
    .addOption(
      new Option('--profile <name>', 'profile from deployment/profiles')
        .choices(PROFILE_NAMES)
        .default('high-rate'),
    )
    .option(
      '--rate <msg/s>',
      'source messages per second to size for, 0.001–1000000',
      numberInRange(0.001, 1_000_000),
      2000,
    )
    .option('--payload-length <bytes>', 'bytes per source message, 1–262144', intInRange(1, 262_144), 1024)
    .option(
      '--disk-gb <GB>',
      "disk for edgeHub's store, GB = 10^9 bytes, 0.001–1000000",
      numberInRange(0.001, 1_000_000),
      32,
    )
    .option(
      '--ttl-secs <s>',
      "store-and-forward TTL in seconds, 1–4294967295 (default: the profile's, fixed or sized to 80% of the disk)",
      intInRange(1, 4_294_967_295),
    )
    .option(
      '--registry <prefix>',
      `image repository prefix for \${MODULES.x}`,
      imageRef('registry/repository prefix'),
      'edgeperf',
    )
    .option('--tag <tag>', `image tag for \${MODULES.x}`, imageRef('tag'), 'local')
    .addOption(
      new Option(
        '--target <where>',
        'local: servers on 127.0.0.1 for the local runtime; device: 0.0.0.0 and module names on the Docker network',
      )
        .choices(['local', 'device'])
        .default('local'),
    )
    .option(
      '--set <path=value>',
      'override a value, repeatable: $edgeHub.env.NAME=V, MODULE.env.NAME=V, MODULE.createOptions.A.B=JSON, MODULE.desired.A=JSON, $edgeHub.routes.NAME=ROUTE, translator*.env.NAME=V (an empty value removes the key)',
      collectSet,
      [],
    )
    .option(
      '--metrics-collector',
      'add the IoT Edge metrics collector (needs EDGEPERF_LOG_ANALYTICS_WORKSPACE_ID, _SHARED_KEY and EDGEPERF_IOTHUB_RESOURCE_ID)',
      false,
    )
    .option('-o, --output <file>', 'write the manifest to this file (default: print it on stdout)')
    .option(
      '--json',
      'print the decisions as one JSON object (with -o) or {report, manifest} (without)',
      false,
    )
    .action(
      action(async (flags: ManifestFlags) => {
        const { manifest, report } = generateManifestWithReport({
          profile: flags.profile,
          ratePerSec: flags.rate,
          payloadLength: flags.payloadLength,
          diskGb: flags.diskGb,
          ...(flags.ttlSecs !== undefined ? { ttlSecs: flags.ttlSecs } : {}),
          registry: flags.registry,
          tag: flags.tag,
          target: flags.target,
          set: flags.set,
          metricsCollector: flags.metricsCollector,
        });
        const text = `${JSON.stringify(manifest, null, 2)}\n`;
        if (flags.output !== undefined) {
          try {
            await writeFile(flags.output, text);
          } catch (err) {
            throw new EdgePerfError(
              'E_IO',
              `--output ${flags.output}: cannot write (${(err as Error).message})`,
            );
          }
          process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : describe(report, flags.output));
        } else {
          process.stdout.write(flags.json ? `${JSON.stringify({ report, manifest })}\n` : text);
          if (!flags.json) process.stderr.write(describe(report, undefined));
        }
      }),
    );
}
