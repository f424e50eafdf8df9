import type { UpstreamMessage } from '../upstream-transport.js';

/** IoT Hub API version the Node SDK 1.18 puts in the MQTT username (azure-iot-common endpoint.apiVersion). */
export const IOTHUB_API_VERSION = '2021-04-12';

/** Identity and host parts of a module's MQTT session to edgeHub. */
export interface ModuleMqttIdentity {
  /** IoT Hub host name the SAS token is signed for (`HostName` of the connection string). */
  readonly hubHostName: string;
  readonly deviceId: string;
  readonly moduleId: string;
}

/** MQTT client id a module uses: `{device}/{module}` (edge-facts §6). */
export function moduleClientId(id: ModuleMqttIdentity): string {
  return `${id.deviceId}/${id.moduleId}`;
}

/**
 * MQTT username a module uses:
 * `{hubHost}/{device}/{module}/?api-version=2021-04-12&DeviceClientType={url-encoded client type}`.
 */
export function moduleUsername(id: ModuleMqttIdentity, deviceClientType: string): string {
  return `${id.hubHostName}/${moduleClientId(id)}/?api-version=${IOTHUB_API_VERSION}&DeviceClientType=${encodeURIComponent(deviceClientType)}`;
}

/** Resource URI a module's SAS token signs: `{hubHost}/devices/{device}/modules/{module}` (unencoded). */
export function moduleResourceUri(id: ModuleMqttIdentity): string {
  return `${id.hubHostName}/devices/${id.deviceId}/modules/${id.moduleId}`;
}

/**
 * The topic azure-iot-device-mqtt publishes a module output event to, byte for byte:
 * `devices/{d}/modules/{m}/messages/events/` then the system properties in the SDK's order
 * (`$.on`, `$.mid`, `$.ct`, `$.ce`), then the url-encoded application properties, then `/`.
 * Keys and values are encoded with `encodeURIComponent`, so `$` is `%24` on the wire.
 */
export function moduleOutputTopic(
  id: Pick<ModuleMqttIdentity, 'deviceId' | 'moduleId'>,
  output: string,
  message: Pick<UpstreamMessage, 'properties' | 'contentType' | 'contentEncoding' | 'messageId'>,
): string {
  const pairs: [string, string][] = [['$.on', output]];
  if (message.messageId) pairs.push(['$.mid', message.messageId]);
  if (message.contentType) pairs.push(['$.ct', message.contentType]);
  if (message.contentEncoding) pairs.push(['$.ce', message.contentEncoding]);
  for (const [key, value] of Object.entries(message.properties)) pairs.push([key, value]);
  const props = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `devices/${id.deviceId}/modules/${id.moduleId}/messages/events/${props}/`;
}

/** Parses `?$rid=7&$version=3` style query strings of `$iothub/…` topics. */
export function parseTopicQuery(topic: string): Record<string, string> {
  const q = topic.indexOf('?');
  const out: Record<string, string> = {};
  if (q < 0) return out;
  for (const part of topic.slice(q + 1).split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    out[decodeURIComponent(part.slice(0, eq))] = decodeURIComponent(part.slice(eq + 1));
  }
  return out;
}
