import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../modules/common/index.js';
import {
  BURST_DEFAULTS,
  connectionSettingsFromEnv,
  parseBurstSettings,
} from '../../modules/simulator/settings.js';

describe('parseBurstSettings', () => {
  it('applies the defaults and a random session id', () => {
    const s = parseBurstSettings({});
    expect(s).toMatchObject(BURST_DEFAULTS);
    expect(s.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(parseBurstSettings(undefined).burstLength).toBe(1000);
  });

  it('reports every invalid field at once, each named with the value given', () => {
    let err: unknown;
    try {
      parseBurstSettings({ burstLength: 0, targetRate: -5, format: 'xml', payloadLength: 1.5 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.issues.map((i) => i.field).sort()).toEqual([
      'start.burstLength',
      'start.format',
      'start.payloadLength',
      'start.targetRate',
    ]);
    expect(e.message).not.toContain('\n');
    expect(e.message).toMatch(/start\.targetRate: .*>=0.*\(got -5\)/);
    expect(e.exitCode).toBe(2);
  });

  it('refuses unknown keys (a typo must not silently use a default)', () => {
    expect(() => parseBurstSettings({ burstLenght: 10 }, 'twin.config')).toThrow(/twin\.config/);
  });

  it('refuses payloads above 256 KiB and session ids with spaces', () => {
    expect(() => parseBurstSettings({ payloadLength: 256 * 1024 + 1 })).toThrow(/start\.payloadLength/);
    expect(() => parseBurstSettings({ sessionId: 'a b' })).toThrow(/start\.sessionId/);
  });

  it('accepts unpaced mode (targetRate 0) and fractional rates', () => {
    expect(parseBurstSettings({ targetRate: 0 }).targetRate).toBe(0);
    expect(parseBurstSettings({ targetRate: 0.5 }).targetRate).toBe(0.5);
  });
});

describe('connectionSettingsFromEnv', () => {
  it('defaults to a broker on loopback', () => {
    expect(connectionSettingsFromEnv({})).toEqual({ brokerUrl: 'mqtt://127.0.0.1:1883', maxInFlight: 100 });
  });

  it('reads the variables and names the bad ones', () => {
    expect(
      connectionSettingsFromEnv({
        SourceBrokerUrl: 'mqtts://b:8883',
        SimulatorTopic: 'x/{device}',
        SimulatorMaxInFlight: '7',
      }),
    ).toEqual({ brokerUrl: 'mqtts://b:8883', topic: 'x/{device}', maxInFlight: 7 });
    expect(() =>
      connectionSettingsFromEnv({ SourceBrokerUrl: 'http://x', SimulatorMaxInFlight: '0' }),
    ).toThrow(/env\.SourceBrokerUrl.*env\.SimulatorMaxInFlight/);
  });
});
