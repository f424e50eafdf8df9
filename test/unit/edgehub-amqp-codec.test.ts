import rhea from 'rhea';
import { describe, expect, it } from 'vitest';
import { identityOfResource, parseLinkAddress } from '../../emulator/edgehub/amqp-address.js';
import {
  bodyBytes,
  idText,
  toIncomingMessage,
  toInputAmqpMessage,
} from '../../emulator/edgehub/amqp-message.js';

describe('AMQP link addresses', () => {
  it('names the identity and the kind of link', () => {
    expect(parseLinkAddress('/devices/d1/modules/m1/messages/events')).toEqual({
      kind: 'events',
      identity: { deviceId: 'd1', moduleId: 'm1' },
    });
    expect(parseLinkAddress('/devices/d1/modules/m1/methods/devicebound')?.kind).toBe('methods');
    expect(parseLinkAddress('/devices/d1/modules/m1/twin')?.kind).toBe('twin');
    expect(parseLinkAddress('/devices/d1/modules/m1/inputs')?.kind).toBe('events');
    expect(parseLinkAddress('/devices/d1/messages/events?api-version=2021-04-12')).toEqual({
      kind: 'events',
      identity: { deviceId: 'd1' },
    });
    expect(parseLinkAddress('/devices/d%2Fx/twin')?.identity).toEqual({ deviceId: 'd/x' });
  });

  it('rejects anything else', () => {
    for (const a of [undefined, '$cbs', '/devices/d1', '/devices/d1/modules/m1/other', 'devices/d1/twin']) {
      expect(parseLinkAddress(a)).toBeUndefined();
    }
    expect(parseLinkAddress('/devices/d1/modules/m1/messages/devicebound')).toBeUndefined();
  });

  it('reads the identity a SAS resource names', () => {
    expect(identityOfResource('hub.local/devices/d1/modules/m1')).toEqual({ deviceId: 'd1', moduleId: 'm1' });
    expect(identityOfResource('hub.local/devices/d1/')).toEqual({ deviceId: 'd1' });
    expect(identityOfResource('hub.local/other/d1')).toBeUndefined();
  });
});

describe('AMQP message conversion', () => {
  it('reads data sections, several data sections and amqp-values as bytes', () => {
    expect(bodyBytes(rhea.message.data_section(Buffer.from('ab'))).toString()).toBe('ab');
    expect(bodyBytes({ typecode: 0x75, content: [Buffer.from('a'), Buffer.from('b')] }).toString()).toBe(
      'ab',
    );
    expect(bodyBytes('text').toString()).toBe('text');
    expect(bodyBytes(undefined)).toHaveLength(0);
    expect(bodyBytes({ x: 1 }).toString()).toBe('{"x":1}');
  });

  it('turns uuids back into their text', () => {
    const id = '8c7a3f0e-5b1d-4c2a-9e6f-1a2b3c4d5e6f';
    expect(idText(rhea.string_to_uuid(id))).toBe(id);
    expect(idText(42)).toBe('42');
    expect(idText(undefined)).toBeUndefined();
  });

  it('moves the output name out of the application properties', () => {
    const m = toIncomingMessage({
      body: rhea.message.data_section(Buffer.from('x')),
      application_properties: { 'iothub-outputname': 'out1', n: 3, keep: 'v' },
      absolute_expiry_time: new Date(0),
    });
    expect(m.system.outputName).toBe('out1');
    expect(m.properties).toEqual({ n: '3', keep: 'v' });
    expect(m.system.expiryTimeUtc).toBe('1970-01-01T00:00:00.000Z');
  });

  it('puts the input name and the original sender in annotations', () => {
    const out = toInputAmqpMessage('in1', {
      id: '1',
      body: Buffer.from('b'),
      properties: { a: '1' },
      system: { connectionDeviceId: 'd', connectionModuleId: 'm', receivedAtMs: 0, messageId: 'mid' },
    });
    expect(out.message_annotations).toMatchObject({
      'x-opt-input-name': 'in1',
      'iothub-connection-device-id': 'd',
      'iothub-connection-module-id': 'm',
    });
    expect(out.application_properties).toEqual({ a: '1' });
    expect(out.message_id).toBe('mid');
  });
});
