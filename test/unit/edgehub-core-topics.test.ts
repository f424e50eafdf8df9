import { describe, expect, it } from 'vitest';
import {
  classifySubscription,
  formatInputTopic,
  parseEventTopic,
  parseIotHubTopic,
} from '../../emulator/edgehub/mqtt-topics.js';
import { encodePublish } from '../../emulator/edgehub/mqtt-wire.js';

const ID = { deviceId: 'd1', moduleId: 'm1' };

describe('MQTT topics as azure-iot-device-mqtt 1.16 writes them', () => {
  it('parses an output event with system and application properties', () => {
    // What the SDK sends for sendOutputEvent: querystring of $-props, then encoded user props, then "/".
    const topic =
      'devices/d1/modules/m1/messages/events/%24.on=output1&%24.mid=abc&%24.cid=c1&%24.ct=application%2Fjson&%24.ce=utf-8&%24.exp=2030-01-01T00%3A00%3A00.000Z&batch=true&odd%20key=a%26b%3Dc/';
    expect(parseEventTopic(ID, topic)).toEqual({
      system: {
        outputName: 'output1',
        messageId: 'abc',
        correlationId: 'c1',
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        expiryTimeUtc: '2030-01-01T00:00:00.000Z',
      },
      properties: { batch: 'true', 'odd key': 'a&b=c' },
    });
  });

  it('accepts sendEvent without properties and refuses other identities and deeper paths', () => {
    expect(parseEventTopic(ID, 'devices/d1/modules/m1/messages/events/')).toEqual({
      system: {},
      properties: {},
    });
    expect(parseEventTopic(ID, 'devices/d1/modules/m2/messages/events/')).toBeUndefined();
    expect(parseEventTopic(ID, 'devices/d1/modules/m1/messages/events/a=1/b=2')).toBeUndefined();
    expect(parseEventTopic(ID, 'devices/d1/modules/m1/messages/eventsX')).toBeUndefined();
  });

  it('formats inputs so the SDK parser (split on /, & and =) recovers every property', () => {
    const topic = formatInputTopic(ID, 'input1', {
      id: 'x',
      body: Buffer.alloc(0),
      properties: { 'a/b': 'c=d&e', 'p!': "q'()*" },
      system: { connectionDeviceId: 'd1', connectionModuleId: 'sim', receivedAtMs: 0, messageId: 'm/1' },
    });
    const parts = topic.split('/');
    expect(parts.slice(0, 6)).toEqual(['devices', 'd1', 'modules', 'm1', 'inputs', 'input1']);
    expect(parts).toHaveLength(7);
    const props = Object.fromEntries(
      (parts[6] ?? '').split('&').map((kv) => kv.split('=').map(decodeURIComponent) as [string, string]),
    );
    expect(props).toEqual({ '$.mid': 'm/1', '$.cdid': 'd1', '$.cmid': 'sim', 'a/b': 'c=d&e', 'p!': "q'()*" });
  });

  it('parses method responses and twin requests', () => {
    expect(parseIotHubTopic('$iothub/methods/res/200/?$rid=1f')).toEqual({
      kind: 'method-response',
      status: 200,
      rid: '1f',
    });
    expect(parseIotHubTopic('$iothub/twin/GET/?$rid=u-1')).toEqual({ kind: 'twin-get', rid: 'u-1' });
    expect(parseIotHubTopic('$iothub/twin/PATCH/properties/reported/?$rid=9')).toEqual({
      kind: 'twin-patch-reported',
      rid: '9',
    });
    expect(parseIotHubTopic('$iothub/twin/GET/')).toBeUndefined();
    expect(parseIotHubTopic('$iothub/methods/POST/x/?$rid=1')).toBeUndefined();
  });

  it("grants only the module's own subscription filters", () => {
    expect(classifySubscription(ID, 'devices/d1/modules/m1/inputs/#')).toBe('inputs');
    expect(classifySubscription(ID, '$iothub/methods/POST/#')).toBe('methods');
    expect(classifySubscription(ID, '$iothub/twin/res/#')).toBe('twin-responses');
    expect(classifySubscription(ID, '$iothub/twin/PATCH/properties/desired/#')).toBe('twin-desired');
    expect(classifySubscription(ID, 'devices/d1/modules/m2/inputs/#')).toBeUndefined();
    expect(classifySubscription(ID, '#')).toBeUndefined();
  });
});

describe('encodePublish', () => {
  it('writes a QoS 1 PUBLISH with a multi-byte remaining length', () => {
    const payload = Buffer.alloc(200, 1);
    const packet = encodePublish('a/b', payload, 1, 0x1234);
    // 2 + 3 topic + 2 id + 200 = 207 = 0xCF 0x01 as a varint
    expect([...packet.subarray(0, 10)]).toEqual([0x32, 0xcf, 0x01, 0, 3, 0x61, 0x2f, 0x62, 0x12, 0x34]);
    expect(packet.length).toBe(3 + 207);
  });

  it('writes a QoS 0 PUBLISH without a packet id and validates input', () => {
    expect([...encodePublish('t', Buffer.from('x'), 0)]).toEqual([0x30, 4, 0, 1, 0x74, 0x78]);
    expect(() => encodePublish('t', Buffer.alloc(0), 1)).toThrow(RangeError);
  });
});
