import { describe, expect, it } from 'vitest';
import { quietMqttLog } from '../../modules/common/index.js';

describe('quietMqttLog', () => {
  it('replaces MQTT.js debug logging with a no-op when DEBUG is unset or empty', () => {
    for (const env of [{}, { DEBUG: '' }]) {
      const option = quietMqttLog(env);
      expect(typeof option.log).toBe('function');
      expect(option.log?.()).toBeUndefined();
    }
  });

  it("keeps MQTT.js's own debug logger when DEBUG is set", () => {
    expect(quietMqttLog({ DEBUG: 'mqttjs*' })).toEqual({});
    expect(quietMqttLog({ DEBUG: '*' })).toEqual({});
  });
});
