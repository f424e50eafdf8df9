import deviceSdk from 'azure-iot-device';
import mqttSdk from 'azure-iot-device-mqtt';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../modules/translator/transports/control-channel.js';
import {
  moduleClientId,
  moduleOutputTopic,
  moduleResourceUri,
  moduleUsername,
  parseTopicQuery,
} from '../../modules/translator/transports/raw-mqtt-topic.js';

const id = { hubHostName: 'hub.local', deviceId: 'dev-1', moduleId: 'translator' };
const cs = `HostName=hub.local;DeviceId=dev-1;ModuleId=translator;SharedAccessKey=${Buffer.alloc(32, 1).toString('base64')}`;

// The SDK's own topic and username builders are private; reach into them so the raw transport is
// checked against the real thing rather than against our reading of it.
interface SdkMqttInternals {
  _configureEndpoints(credentials: { deviceId: string; moduleId: string }): void;
  _getEventTopicFromMessage(message: unknown, extra: Record<string, string>): string;
  _getBaseTransportConfig(credentials: Record<string, string>): { username: string; clientId: string };
  _userAgentString: string;
}

function sdkTopic(output: string, msg: InstanceType<typeof deviceSdk.Message>): string {
  const auth = deviceSdk.SharedAccessKeyAuthenticationProvider.fromConnectionString(cs);
  const transport = new mqttSdk.Mqtt(auth) as unknown as SdkMqttInternals;
  transport._configureEndpoints({ deviceId: id.deviceId, moduleId: id.moduleId });
  // sendOutputEvent appends '/' after the properties (azure-iot-device-mqtt dist/mqtt.js).
  return `${transport._getEventTopicFromMessage(msg, { '$.on': output })}/`;
}

describe('raw-mqtt topic encoding matches azure-iot-device-mqtt', () => {
  it('encodes output, system and application properties exactly like sendOutputEvent', () => {
    const props = { 'edgeperf-envelope': '1', 'edgeperf-count': '42', 'a b/c': 'x&y=z ü' };
    const msg = new deviceSdk.Message(Buffer.from('{}'));
    Object.assign(msg, { contentType: 'application/json', contentEncoding: 'gzip', messageId: 'm-1' });
    for (const [k, v] of Object.entries(props)) msg.properties.add(k, v);
    const ours = moduleOutputTopic(id, 'output1', {
      properties: props,
      contentType: 'application/json',
      contentEncoding: 'gzip',
      messageId: 'm-1',
    });
    expect(ours).toBe(sdkTopic('output1', msg));
    expect(ours).toBe(
      'devices/dev-1/modules/translator/messages/events/%24.on=output1&%24.mid=m-1&%24.ct=application%2Fjson&%24.ce=gzip&edgeperf-envelope=1&edgeperf-count=42&a%20b%2Fc=x%26y%3Dz%20%C3%BC/',
    );
  });

  it('omits absent system properties', () => {
    const msg = new deviceSdk.Message(Buffer.from('x'));
    const ours = moduleOutputTopic(id, 'deadletter', {
      properties: {},
      contentType: '',
      contentEncoding: '',
    });
    expect(ours).toBe(sdkTopic('deadletter', msg));
  });

  it('builds the username, client id and token resource like the SDK', () => {
    const auth = deviceSdk.SharedAccessKeyAuthenticationProvider.fromConnectionString(cs);
    const transport = new mqttSdk.Mqtt(auth) as unknown as SdkMqttInternals;
    transport._userAgentString = 'agent/1 (x; y)';
    const sdk = transport._getBaseTransportConfig({
      host: 'hub.local',
      deviceId: 'dev-1',
      moduleId: 'translator',
    });
    expect(moduleUsername(id, 'agent/1 (x; y)')).toBe(sdk.username);
    expect(moduleClientId(id)).toBe(sdk.clientId);
    expect(moduleResourceUri(id)).toBe('hub.local/devices/dev-1/modules/translator');
  });

  it('parses $rid and $version from $iothub topics', () => {
    expect(parseTopicQuery('$iothub/twin/res/200/?$rid=7&$version=3')).toEqual({ $rid: '7', $version: '3' });
    expect(parseTopicQuery('$iothub/methods/POST/flush/?$rid=a%2Fb')).toEqual({ $rid: 'a/b' });
    expect(parseTopicQuery('no-query')).toEqual({});
  });

  it('backs off exponentially with jitter up to the cap', () => {
    expect(backoffDelayMs(0, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffDelayMs(3, 1000, 60_000, () => 1)).toBe(8000);
    expect(backoffDelayMs(20, 1000, 60_000, () => 1)).toBe(60_000);
    expect(backoffDelayMs(2, 1000, 60_000, () => 0)).toBe(2000);
  });
});
