// azure-iothub is CommonJS and Node's ESM loader cannot see its exports by name.
import iothub from 'azure-iothub';
import { createLocalHubAgent, useLocalHubAgent } from '../emulator/index.js';
import { parseConnectionString } from '../modules/common/index.js';

/** An azure-iothub service client. */
export type ServiceClient = InstanceType<typeof iothub.Client>;
/** An azure-iothub identity registry client. */
export type ServiceRegistry = InstanceType<typeof iothub.Registry>;

/**
 * True when the hub needs the local-hub agent: a `HostName` with a port (the local runtime's
 * REST port) or a private CA; the SDK alone can do neither (emulator/iothub/rest-client-agent.ts).
 */
function needsLocalAgent(connectionString: string, caPem: string | undefined): boolean {
  const host = parseConnectionString(connectionString).HostName ?? '';
  return host.includes(':') || caPem !== undefined;
}

/**
 * A service `Client` (direct methods) for IoT Hub, or for the local runtime when the connection
 * string's host carries a port or `caPem` is given. Close it with `client.close()`.
 */
export function serviceClient(connectionString: string, caPem?: string): ServiceClient {
  const client = iothub.Client.fromConnectionString(connectionString);
  if (!needsLocalAgent(connectionString, caPem)) return client;
  return useLocalHubAgent(client, createLocalHubAgent(caPem === undefined ? {} : { caPem }));
}

/**
 * A `Registry` (twins, deployments) for IoT Hub, or for the local runtime as {@link serviceClient}.
 * Its calls are plain HTTPS requests: nothing to close.
 */
export function serviceRegistry(connectionString: string, caPem?: string): ServiceRegistry {
  const registry = iothub.Registry.fromConnectionString(connectionString);
  if (!needsLocalAgent(connectionString, caPem)) return registry;
  return useLocalHubAgent(registry, createLocalHubAgent(caPem === undefined ? {} : { caPem }));
}
