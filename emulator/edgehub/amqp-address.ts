import type { Identity } from './message.js';

/**
 * What an AMQP link address names (edge-facts §7; azure-iot-common `endpoint.*Path`):
 * - `events`: `/devices/{d}[/modules/{m}]/messages/events`. A client sender link on it carries
 *   telemetry and outputs; a module's receiver link on the same address carries its inputs.
 * - `methods`: `/devices/{d}[/modules/{m}]/methods/devicebound`, one link each way.
 * - `twin`: `/devices/{d}[/modules/{m}]/twin`, one link each way.
 * - `devicebound`: `/devices/{d}/messages/devicebound` (C2D for leaf devices; not served here).
 */
export type LinkKind = 'events' | 'methods' | 'twin' | 'devicebound';

/** A parsed link address. */
export interface LinkAddress {
  readonly kind: LinkKind;
  readonly identity: Identity;
}

const ADDRESS =
  /^\/devices\/([^/]+)(?:\/modules\/([^/]+))?\/(messages\/events|methods\/devicebound|twin|messages\/devicebound|inputs)\/?$/;

/**
 * Parses an IoT Hub link address; returns undefined for anything else (`$cbs` included).
 * A query string (`?api-version=…`) is ignored; ids are URL-decoded.
 */
export function parseLinkAddress(address: string | undefined): LinkAddress | undefined {
  if (address === undefined) return undefined;
  const path = address.split('?')[0] ?? '';
  const m = ADDRESS.exec(path);
  if (m === null) return undefined;
  const deviceId = safeDecode(m[1] ?? '');
  const moduleId = m[2] === undefined ? undefined : safeDecode(m[2]);
  const tail = m[3];
  const kind: LinkKind =
    tail === 'methods/devicebound'
      ? 'methods'
      : tail === 'twin'
        ? 'twin'
        : tail === 'messages/devicebound'
          ? 'devicebound'
          : // `inputs` is the newer name of a module's input address (endpoint.moduleInputMessagePath).
            'events';
  if (kind === 'devicebound' && moduleId !== undefined) return undefined;
  return { kind, identity: moduleId === undefined ? { deviceId } : { deviceId, moduleId } };
}

/**
 * The identity a SAS resource URI names: `{host}/devices/{d}[/modules/{m}]`. Returns undefined
 * when the URI has another shape. The host is not checked here (the core's authenticate does).
 */
export function identityOfResource(resourceUri: string): Identity | undefined {
  const m = /^[^/]+\/devices\/([^/]+)(?:\/modules\/([^/]+))?\/?$/.exec(resourceUri);
  if (m === null) return undefined;
  const deviceId = safeDecode(m[1] ?? '');
  return m[2] === undefined ? { deviceId } : { deviceId, moduleId: safeDecode(m[2]) };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
