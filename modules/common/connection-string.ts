import { EdgePerfError } from './errors.js';

/** Parses `Key=Value;Key=Value` (Azure connection strings); values may contain `=`. */
export function parseConnectionString(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw new EdgePerfError(
        'E_CONNECTION_STRING',
        `connection string part "${part.slice(0, 20)}" is not Key=Value`,
      );
    out[part.slice(0, eq).trim()] = part.slice(eq + 1);
  }
  return out;
}

/** Formats fields as a connection string, skipping undefined values, in the given order. */
export function formatConnectionString(fields: Record<string, string | undefined>): string {
  return Object.entries(fields)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join(';');
}

/** A module's (or device's) connection string, as edgeAgent hands it to modules. */
export interface ModuleConnectionInfo {
  readonly hostName: string;
  readonly deviceId: string;
  readonly moduleId?: string;
  readonly sharedAccessKey: string;
  readonly gatewayHostName?: string;
}

/**
 * Parses `HostName=…;DeviceId=…;ModuleId=…;SharedAccessKey=…;GatewayHostName=…`.
 * @throws EdgePerfError naming the missing field.
 */
export function parseModuleConnectionString(text: string): ModuleConnectionInfo {
  const f = parseConnectionString(text);
  for (const required of ['HostName', 'DeviceId', 'SharedAccessKey'] as const) {
    if (!f[required]) throw new EdgePerfError('E_CONNECTION_STRING', `connection string lacks ${required}`);
  }
  return {
    hostName: f.HostName as string,
    deviceId: f.DeviceId as string,
    sharedAccessKey: f.SharedAccessKey as string,
    ...(f.ModuleId ? { moduleId: f.ModuleId } : {}),
    ...(f.GatewayHostName ? { gatewayHostName: f.GatewayHostName } : {}),
  };
}
