import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkServerIdentity } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRuntimeCertificates } from '../../emulator/pki/index.js';

describe('ensureRuntimeCertificates', () => {
  let stateDir: string;
  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'edgeperf-pki-'));
  });
  afterAll(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it("makes a CA and a server certificate that passes Node's hostname check for localhost", async () => {
    const certs = await ensureRuntimeCertificates({ stateDir, hostNames: ['edge.lan', '10.0.0.5'] });
    const ca = new X509Certificate(certs.caPem);
    const server = new X509Certificate(certs.certPem);
    expect(ca.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.subjectAltName).toBe(
      'DNS:edge.lan, DNS:localhost, IP Address:10.0.0.5, IP Address:127.0.0.1',
    );
    const peer = server.toLegacyObject();
    expect(checkServerIdentity('localhost', peer)).toBeUndefined();
    expect(checkServerIdentity('edge.lan', peer)).toBeUndefined();
    expect(checkServerIdentity('other.lan', peer)).toBeInstanceOf(Error);
    expect(await readFile(certs.caFile, 'utf8')).toBe(certs.caPem);
    expect((await stat(join(stateDir, 'certs', 'server-key.pem'))).mode & 0o077).toBe(0);
  });

  it('reuses the files on the next start', async () => {
    const a = await ensureRuntimeCertificates({ stateDir, hostNames: ['10.0.0.5', 'EDGE.lan'] });
    const b = await ensureRuntimeCertificates({ stateDir, hostNames: ['edge.lan', '10.0.0.5'] });
    expect(b).toEqual(a);
  });

  it('re-issues only the server certificate when the host names change', async () => {
    const before = await ensureRuntimeCertificates({ stateDir, hostNames: ['edge.lan', '10.0.0.5'] });
    const after = await ensureRuntimeCertificates({ stateDir, hostNames: ['gw.example'] });
    expect(after.caPem).toBe(before.caPem);
    expect(after.certPem).not.toBe(before.certPem);
    expect(new X509Certificate(after.certPem).subjectAltName).toBe(
      'DNS:gw.example, DNS:localhost, IP Address:127.0.0.1',
    );
  });
});
