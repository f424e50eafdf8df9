import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { authorizeServiceRequest } from '../../emulator/iothub/rest-auth.js';
import { IotHubRestError } from '../../emulator/iothub/rest-backend.js';
import { splitHostPort } from '../../emulator/iothub/rest-client-agent.js';
import { createSasToken } from '../../modules/common/index.js';

const KEY = Buffer.alloc(32, 3).toString('base64');
const NOW = 1_800_000_000;
const keys = (name: string) => (name === 'iothubowner' ? KEY : undefined);
const accepted = ['localhost', 'localhost:8443'];

// What azure-iot-common SharedAccessSignature.create emits: sr left as given, signed as given.
function sdkStyleToken(sr: string, key: string, se: number): string {
  const sig = createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=iothubowner`;
}

function refusal(fn: () => unknown): IotHubRestError {
  try {
    fn();
  } catch (err) {
    if (err instanceof IotHubRestError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('authorizeServiceRequest', () => {
  it('accepts tokens signed over the encoded sr (createSasToken) and the raw sr (azure-iothub)', () => {
    expect(
      authorizeServiceRequest(
        createSasToken('localhost:8443', KEY, NOW + 60, 'iothubowner'),
        accepted,
        keys,
        NOW,
      ),
    ).toBe('iothubowner');
    expect(authorizeServiceRequest(sdkStyleToken('localhost:8443', KEY, NOW + 60), accepted, keys, NOW)).toBe(
      'iothubowner',
    );
    expect(authorizeServiceRequest(sdkStyleToken('LOCALHOST', KEY, NOW + 60), accepted, keys, NOW)).toBe(
      'iothubowner',
    );
  });

  it('refuses with 401 IotHubUnauthorizedAccess and a reason, never echoing the signature', () => {
    const cases: [string | undefined, RegExp][] = [
      [undefined, /header is missing/],
      ['Bearer abc', /not a SharedAccessSignature/],
      [createSasToken('localhost', KEY, NOW + 60), /no skn/],
      [
        createSasToken('localhost', KEY, NOW + 60, 'registryRead'),
        /unknown shared access policy "registryRead"/,
      ],
      [createSasToken('localhost', KEY, NOW - 1, 'iothubowner'), /expired/],
      [createSasToken('elsewhere', KEY, NOW + 60, 'iothubowner'), /is for "elsewhere"/],
      [
        sdkStyleToken('localhost:8443', Buffer.alloc(32, 4).toString('base64'), NOW + 60),
        /signature does not match/,
      ],
    ];
    for (const [header, reason] of cases) {
      const err = refusal(() => authorizeServiceRequest(header, accepted, keys, NOW));
      expect(err.status).toBe(401);
      expect(err.errorCode).toBe('IotHubUnauthorizedAccess');
      expect(err.message).toMatch(reason);
      expect(err.message).not.toMatch(/sig=/);
    }
  });
});

describe('splitHostPort', () => {
  it('splits name:port and leaves bare names and IPv6 literals alone', () => {
    expect(splitHostPort('localhost:8443')).toEqual({ host: 'localhost', port: 8443 });
    expect(splitHostPort('127.0.0.1:1')).toEqual({ host: '127.0.0.1', port: 1 });
    expect(splitHostPort('localhost')).toBeUndefined();
    expect(splitHostPort('::1')).toBeUndefined();
    expect(splitHostPort('localhost:0')).toBeUndefined();
    expect(splitHostPort('localhost:70000')).toBeUndefined();
    expect(splitHostPort(undefined)).toBeUndefined();
  });
});
