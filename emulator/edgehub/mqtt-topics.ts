import type { EdgeMessage, Identity, SystemProperties } from './message.js';

/**
 * The IoT Hub MQTT topic space as azure-iot-device-mqtt 1.16 speaks it (edge-facts §6).
 * Pure functions: parsing what modules publish, formatting what edgeHub publishes to them.
 */

/** System properties a module can set on a message (what the core does not stamp). */
export type SenderSystemProperties = Omit<
  SystemProperties,
  'connectionDeviceId' | 'connectionModuleId' | 'receivedAtMs'
>;

/** A telemetry topic's property bag split into system and application properties. */
export interface ParsedEventProperties {
  readonly system: SenderSystemProperties;
  readonly properties: Record<string, string>;
}

// `$.x` keys on the wire and the SystemProperties field each fills.
const SYSTEM_KEYS: Readonly<Record<string, keyof SenderSystemProperties>> = {
  '$.mid': 'messageId',
  '$.cid': 'correlationId',
  '$.ct': 'contentType',
  '$.ce': 'contentEncoding',
  '$.uid': 'userId',
  '$.to': 'to',
  '$.exp': 'expiryTimeUtc',
  '$.ctime': 'creationTimeUtc',
  '$.on': 'outputName',
};

/** `devices/{d}/modules/{m}` (or `devices/{d}`): the topic prefix of an identity. */
export function identityTopicPrefix(identity: Identity): string {
  return identity.moduleId === undefined
    ? `devices/${identity.deviceId}`
    : `devices/${identity.deviceId}/modules/${identity.moduleId}`;
}

/** Topic filter a module subscribes for its inputs. */
export function inputsFilter(identity: Identity): string {
  return `${identityTopicPrefix(identity)}/inputs/#`;
}

/** Decodes a url-encoded `k=v&k=v` property bag; a key without `=` gets an empty value. */
export function parsePropertyBag(bag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of bag.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawKey = eq < 0 ? pair : pair.slice(0, eq);
    const rawValue = eq < 0 ? '' : pair.slice(eq + 1);
    out.set(decode(rawKey), decode(rawValue));
  }
  return out;
}

/**
 * Parses `devices/{d}/modules/{m}/messages/events/{props}` for the given identity. Returns
 * undefined when the topic is not that identity's telemetry topic. The SDK appends a `/` after
 * the bag when it sends on an output, so trailing slashes are ignored.
 */
export function parseEventTopic(identity: Identity, topic: string): ParsedEventProperties | undefined {
  const prefix = `${identityTopicPrefix(identity)}/messages/events`;
  if (topic !== prefix && !topic.startsWith(`${prefix}/`)) return undefined;
  const bag = topic.slice(prefix.length).replace(/^\/+/, '').replace(/\/+$/, '');
  if (bag.includes('/')) return undefined;
  const system: Record<string, string> = {};
  const properties: Record<string, string> = {};
  for (const [key, value] of parsePropertyBag(bag)) {
    const field = SYSTEM_KEYS[key];
    if (field !== undefined) system[field] = value;
    else if (key === '$.sub') properties['dt-subject'] = value;
    else if (key.startsWith('$.'))
      continue; // other system keys (e.g. $.ifid) have no place here
    else properties[key] = value;
  }
  return { system: system as SenderSystemProperties, properties };
}

/**
 * `devices/{d}/modules/{m}/inputs/{input}/{props}` for an input message. The SDK's parser needs
 * the properties segment (edge-facts §6); like edgeHub, the bag carries the sender as
 * `$.cdid`/`$.cmid` besides the message's own system and application properties.
 */
export function formatInputTopic(identity: Identity, input: string, message: EdgeMessage): string {
  const pairs: string[] = [];
  const add = (k: string, v: string | undefined) => {
    if (v !== undefined && v !== '') pairs.push(`${encode(k)}=${encode(v)}`);
  };
  const s = message.system;
  add('$.mid', s.messageId);
  add('$.cid', s.correlationId);
  add('$.ct', s.contentType);
  add('$.ce', s.contentEncoding);
  add('$.uid', s.userId);
  add('$.exp', s.expiryTimeUtc);
  add('$.ctime', s.creationTimeUtc);
  add('$.cdid', s.connectionDeviceId);
  add('$.cmid', s.connectionModuleId);
  for (const [k, v] of Object.entries(message.properties)) add(k, v);
  return `${identityTopicPrefix(identity)}/inputs/${input}/${pairs.join('&')}`;
}

/** What a `$iothub/...` topic from a module asks for; undefined when it is not one we serve. */
export type IotHubRequest =
  | { readonly kind: 'method-response'; readonly status: number; readonly rid: string }
  | { readonly kind: 'twin-get'; readonly rid: string }
  | { readonly kind: 'twin-patch-reported'; readonly rid: string };

/**
 * Parses `$iothub/methods/res/{status}/?$rid={id}`, `$iothub/twin/GET/?$rid={id}` and
 * `$iothub/twin/PATCH/properties/reported/?$rid={id}`.
 */
export function parseIotHubTopic(topic: string): IotHubRequest | undefined {
  const q = topic.indexOf('?');
  const path = (q < 0 ? topic : topic.slice(0, q)).replace(/\/+$/, '');
  const query = parsePropertyBag(q < 0 ? '' : topic.slice(q + 1));
  const rid = query.get('$rid');
  if (rid === undefined || rid === '') return undefined;
  const methodRes = /^\$iothub\/methods\/res\/(\d{3})$/.exec(path);
  if (methodRes !== null) return { kind: 'method-response', status: Number(methodRes[1]), rid };
  if (path === '$iothub/twin/GET') return { kind: 'twin-get', rid };
  if (path === '$iothub/twin/PATCH/properties/reported') return { kind: 'twin-patch-reported', rid };
  return undefined;
}

/** `$iothub/methods/POST/{name}/?$rid={rid}`: a direct-method request to a module. */
export function formatMethodRequestTopic(name: string, rid: string): string {
  return `$iothub/methods/POST/${name}/?$rid=${encode(rid)}`;
}

/** `$iothub/twin/res/{status}/?$rid={rid}[&$version=N]`: a twin response. */
export function formatTwinResponseTopic(status: number, rid: string, version?: number): string {
  const v = version === undefined ? '' : `&$version=${version}`;
  return `$iothub/twin/res/${status}/?$rid=${encode(rid)}${v}`;
}

/** `$iothub/twin/PATCH/properties/desired/?$version=N`: a desired-properties push. */
export function formatDesiredPatchTopic(version: number): string {
  return `$iothub/twin/PATCH/properties/desired/?$version=${version}`;
}

/** Subscription filters a module may use, and what each enables. */
export type SubscriptionKind = 'inputs' | 'methods' | 'twin-responses' | 'twin-desired';

/** Which of the identity's own filters this is; undefined for anything else (refused). */
export function classifySubscription(identity: Identity, filter: string): SubscriptionKind | undefined {
  if (identity.moduleId !== undefined && filter === inputsFilter(identity)) return 'inputs';
  if (filter === '$iothub/methods/POST/#') return 'methods';
  if (filter === '$iothub/twin/res/#') return 'twin-responses';
  if (filter === '$iothub/twin/PATCH/properties/desired/#') return 'twin-desired';
  return undefined;
}

// Like encodeURIComponent, plus the characters IoT Hub escapes too.
function encode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, '%20'));
  } catch {
    return s;
  }
}
