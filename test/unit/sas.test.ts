import { describe, expect, it } from 'vitest';
import { createSasToken, parseSasToken, redactSecrets, verifySasToken } from '../../modules/common/index.js';

const key = Buffer.from('0123456789abcdef0123456789abcdef').toString('base64');
const other = Buffer.from('fedcba9876543210fedcba9876543210').toString('base64');
const resource = 'hub.local/devices/dev1/modules/translator';

describe('SAS tokens', () => {
  it('verifies a token signed with the right key for the right resource', () => {
    const token = createSasToken(resource, key, 2_000_000_000);
    expect(parseSasToken(token)?.resourceUri).toBe(resource);
    expect(verifySasToken(token, key, resource, 1_000)).toBe('ok');
  });

  it('refuses a wrong key, an expired token, another resource and garbage', () => {
    const token = createSasToken(resource, key, 2_000);
    expect(verifySasToken(token, other, resource, 1_000)).toBe('bad-signature');
    expect(verifySasToken(token, key, resource, 3_000)).toBe('expired');
    expect(verifySasToken(token, key, 'hub.local/devices/dev1/modules/other', 1_000)).toBe('wrong-resource');
    expect(verifySasToken('Basic abc', key, resource, 1_000)).toBe('malformed');
  });

  it('redacts keys and signatures from log text', () => {
    const text = `HostName=h;DeviceId=d;SharedAccessKey=${key} ${createSasToken(resource, key, 5)}`;
    const out = redactSecrets(text);
    expect(out).not.toContain(key);
    expect(out).toContain('SharedAccessKey=[redacted]');
  });
});
