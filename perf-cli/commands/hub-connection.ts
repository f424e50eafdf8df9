import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { EdgePerfError } from '../../modules/common/index.js';

/** The flags that reach a device through IoT Hub, as commander parses them (`run`, `sweep --target azure`). */
export interface HubConnectionFlags {
  iothubConnectionString?: string;
  eventhubConnectionString?: string;
  eventhubName?: string;
  consumerGroup?: string;
  deviceId?: string;
  caFile?: string;
  metricsUrl?: string;
}

/** Each connection flag's long name, keyed as commander stores it. */
export const HUB_CONNECTION_FLAG_NAMES: Readonly<Record<keyof HubConnectionFlags, string>> = {
  iothubConnectionString: '--iothub-connection-string',
  eventhubConnectionString: '--eventhub-connection-string',
  eventhubName: '--eventhub-name',
  consumerGroup: '--consumer-group',
  deviceId: '--device-id',
  caFile: '--ca-file',
  metricsUrl: '--metrics-url',
};

/** Where a device is reached, every flag resolved against its env fallback. */
export interface HubConnection {
  /** IoT Hub service connection string (a policy with ServiceConnect and RegistryWrite for deploys). */
  readonly iothubConnectionString: string;
  /** Built-in endpoint; absent only when the caller did not ask for it. */
  readonly eventHubConnectionString?: string;
  readonly eventHubName?: string;
  /** Default `$Default`. */
  readonly consumerGroup: string;
  readonly deviceId: string;
  /** PEM of the CA the service API chains to (the local runtime's), read from `--ca-file`. */
  readonly caPem?: string;
  readonly metricsUrl?: string;
}

/**
 * Adds the connection flags; `note` prefixes each description (e.g. `azure only: `). None has a
 * commander default, so a value always means the user (or the env) gave it; defaults are applied
 * in {@link resolveHubConnection}.
 */
export function addHubConnectionFlags(cmd: Command, note = ''): Command {
  return cmd
    .option(
      '--iothub-connection-string <cs>',
      `${note}IoT Hub service connection string (env EDGEPERF_IOTHUB_CONNECTION_STRING)`,
    )
    .option(
      '--eventhub-connection-string <cs>',
      `${note}IoT Hub's built-in Event Hub-compatible endpoint connection string (env EDGEPERF_EVENTHUB_CONNECTION_STRING)`,
    )
    .option(
      '--eventhub-name <name>',
      `${note}Event Hub-compatible name when the connection string has no EntityPath (env EDGEPERF_EVENTHUB_NAME)`,
    )
    .option(
      '--consumer-group <name>',
      `${note}consumer group on the built-in endpoint (env EDGEPERF_CONSUMER_GROUP; default $Default)`,
    )
    .option('--device-id <id>', `${note}IoT Edge device id (env EDGEPERF_DEVICE_ID)`)
    .option(
      '--ca-file <pem>',
      `${note}CA the IoT Hub service API chains to, for a local runtime (env EDGEPERF_CA_FILE)`,
    )
    .option(
      '--metrics-url <url>',
      `${note}edgeHub's /metrics URL when reachable, for the queue series (env EDGEPERF_METRICS_URL)`,
    );
}

/** A required value, from its flag or env variable. */
export interface RequiredValue {
  readonly value: string | undefined;
  readonly flag: string;
  readonly env: string;
}

/**
 * Returns the values in order, or throws one line naming the first missing flag with its env
 * variable (the message `run` has always given).
 * @throws EdgePerfError `E_ARGS` (exit 2).
 */
export function requireValues(values: readonly RequiredValue[]): string[] {
  const missing = values.find((v) => !v.value);
  if (missing)
    throw new EdgePerfError('E_ARGS', `missing ${missing.flag} (or env ${missing.env})`, { exitCode: 2 });
  return values.map((v) => v.value as string);
}

/**
 * Reads a PEM file named by a flag.
 * @throws EdgePerfError `E_ARGS` (exit 2) naming the flag and file when it cannot be read.
 */
export function readPemFlag(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new EdgePerfError('E_ARGS', `${flag} ${file}: ${(err as Error).message}`, { exitCode: 2 });
  }
}

/**
 * Resolves the connection flags against their env fallbacks (`EDGEPERF_*`). The built-in endpoint
 * is required only with `eventHub: true` (`run --results asa` does not read it).
 * @throws EdgePerfError `E_ARGS` (exit 2) naming the first missing flag, or an unreadable `--ca-file`.
 */
export function resolveHubConnection(
  flags: HubConnectionFlags,
  options: { readonly eventHub: boolean },
  env: NodeJS.ProcessEnv = process.env,
): HubConnection {
  const iothub = {
    value: flags.iothubConnectionString ?? env.EDGEPERF_IOTHUB_CONNECTION_STRING,
    flag: '--iothub-connection-string',
    env: 'EDGEPERF_IOTHUB_CONNECTION_STRING',
  };
  const eventHub = {
    value: flags.eventhubConnectionString ?? env.EDGEPERF_EVENTHUB_CONNECTION_STRING,
    flag: '--eventhub-connection-string',
    env: 'EDGEPERF_EVENTHUB_CONNECTION_STRING',
  };
  const device = {
    value: flags.deviceId ?? env.EDGEPERF_DEVICE_ID,
    flag: '--device-id',
    env: 'EDGEPERF_DEVICE_ID',
  };
  requireValues(options.eventHub ? [iothub, eventHub, device] : [iothub, device]);
  const iothubCs = iothub.value as string;
  const deviceId = device.value as string;
  const caFile = flags.caFile ?? env.EDGEPERF_CA_FILE;
  const eventHubName = flags.eventhubName ?? env.EDGEPERF_EVENTHUB_NAME;
  const metricsUrl = flags.metricsUrl ?? env.EDGEPERF_METRICS_URL;
  return {
    iothubConnectionString: iothubCs,
    ...(options.eventHub && eventHub.value ? { eventHubConnectionString: eventHub.value } : {}),
    ...(eventHubName ? { eventHubName } : {}),
    consumerGroup: flags.consumerGroup ?? env.EDGEPERF_CONSUMER_GROUP ?? '$Default',
    deviceId,
    ...(caFile ? { caPem: readPemFlag('--ca-file', caFile) } : {}),
    ...(metricsUrl ? { metricsUrl } : {}),
  };
}
