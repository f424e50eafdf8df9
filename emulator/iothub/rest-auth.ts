import { createHmac, timingSafeEqual } from 'node:crypto';
import { parseSasToken, verifySasToken } from '../../modules/common/index.js';
import { IotHubRestError } from './rest-backend.js';

/**
 * Verifies the `Authorization` header of a service REST call: a service SAS token
 * (`SharedAccessSignature sr={hub}&sig=…&se=…&skn={policy}`) signed with the named policy's key.
 *
 * azure-iothub signs `sr` = the connection string's `HostName` verbatim, so with
 * `HostName=localhost:8443` the token says `sr=localhost%3A8443`; every entry of
 * `acceptedResources` is accepted (case-insensitive, trailing slash ignored).
 *
 * Every known policy has every permission (registry read/write, service connect): the local hub
 * does not model policy rights.
 *
 * @param policyKey - returns the base64 key of a policy, undefined when the policy is unknown.
 * @param nowSecs - current unix seconds (injectable for tests).
 * @returns the policy name that signed the token.
 * @throws IotHubRestError 401 `IotHubUnauthorizedAccess` with a message saying why (never the signature).
 */
export function authorizeServiceRequest(
  authorization: string | undefined,
  acceptedResources: readonly string[],
  policyKey: (name: string) => string | undefined,
  nowSecs: number = Math.floor(Date.now() / 1000),
): string {
  if (authorization === undefined || authorization.trim() === '') {
    throw unauthorized('the Authorization header is missing: send a service SAS token');
  }
  const token = parseSasToken(authorization);
  if (token === undefined) {
    throw unauthorized('the Authorization header is not a SharedAccessSignature token with sr, sig and se');
  }
  if (token.keyName === undefined || token.keyName === '') {
    throw unauthorized('the SAS token has no skn: service calls need a shared access policy name');
  }
  const key = policyKey(token.keyName);
  if (key === undefined) throw unauthorized(`unknown shared access policy "${token.keyName}"`);
  let verdict = verifySasToken(authorization, key, acceptedResources[0] ?? '', nowSecs);
  for (const resource of acceptedResources.slice(1)) {
    if (verdict !== 'wrong-resource') break;
    verdict = verifySasToken(authorization, key, resource, nowSecs);
  }
  if (verdict === 'bad-signature' && signedOverRawSr(authorization, key, token.signature, token.expiry)) {
    verdict = 'ok';
  }
  switch (verdict) {
    case 'ok':
      return token.keyName;
    case 'expired':
      throw unauthorized(`the SAS token expired at ${new Date(token.expiry * 1000).toISOString()}`);
    case 'wrong-resource':
      throw unauthorized(
        `the SAS token is for "${token.resourceUri}" but this hub accepts ${acceptedResources.map((r) => `"${r}"`).join(' or ')}`,
      );
    case 'bad-signature':
      throw unauthorized(`the SAS signature does not match the key of policy "${token.keyName}"`);
    default:
      throw unauthorized('the SAS token is malformed');
  }
}

// azure-iothub's SharedAccessSignature.create puts sr in the token unencoded and signs it as is
// (`localhost:8443\n{se}`), while verifySasToken signs the re-encoded form (`localhost%3A8443`):
// the two differ as soon as HostName has a port. IoT Hub signs the sr text exactly as sent, so
// accept that form too.
function signedOverRawSr(authorization: string, key: string, signature: string, expiry: number): boolean {
  const sr = authorization
    .trim()
    .replace(/^SharedAccessSignature\s+/, '')
    .split('&')
    .find((part) => part.startsWith('sr='))
    ?.slice(3);
  if (sr === undefined) return false;
  const expected = createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${expiry}`).digest();
  const given = Buffer.from(signature, 'base64');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function unauthorized(message: string): IotHubRestError {
  return new IotHubRestError(401, 'IotHubUnauthorizedAccess', `Unauthorized: ${message}`);
}
