import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import forge from 'node-forge';
import { EdgePerfError } from '../../modules/common/index.js';

/** Options for {@link ensureRuntimeCertificates}. */
export interface RuntimeCertificatesOptions {
  /** Runtime state directory; certificates live in `<stateDir>/certs/`. */
  readonly stateDir: string;
  /**
   * Gateway host names the server certificate must name (besides `localhost` and 127.0.0.1, which
   * are always included). IP literals go into the SAN as IP addresses.
   */
  readonly hostNames?: readonly string[];
  /** Server certificate lifetime in days; default 365. Regenerated when less than a day is left. */
  readonly serverValidityDays?: number;
  /** CA lifetime in days; default 3650. */
  readonly caValidityDays?: number;
}

/** The runtime's trust anchor and TLS identity, as PEM text. */
export interface RuntimeCertificates {
  /** Path of the CA certificate PEM: what modules get as `EdgeModuleCACertificateFile`. */
  readonly caFile: string;
  readonly caPem: string;
  /** Server certificate (leaf only) signed by the CA. */
  readonly certPem: string;
  /** Server private key (PKCS#1 PEM). */
  readonly keyPem: string;
}

const DAY_MS = 86_400_000;

/**
 * Makes sure `<stateDir>/certs/` holds a runtime CA and a server certificate signed by it whose
 * SAN is DNS:localhost + the given host names + IP:127.0.0.1, and returns them. Files made on a
 * first start are reused afterwards so modules keep trusting the same CA; the server certificate
 * alone is re-issued when its SAN set changed or it (nearly) expired; the CA is re-made only when
 * it is missing, unreadable or expiring (then the server certificate is re-issued too).
 *
 * @throws EdgePerfError `E_PKI` when the directory cannot be written.
 */
export async function ensureRuntimeCertificates(
  options: RuntimeCertificatesOptions,
): Promise<RuntimeCertificates> {
  const dir = join(options.stateDir, 'certs');
  const paths = {
    ca: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key.pem'),
    cert: join(dir, 'server.pem'),
    key: join(dir, 'server-key.pem'),
  };
  const san = sanSet(options.hostNames ?? []);
  const now = Date.now();
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    let ca = await readPair(paths.ca, paths.caKey);
    let caFresh = false;
    if (ca === undefined || !stillValid(ca.certPem, now)) {
      ca = makeCa(options.caValidityDays ?? 3650);
      await writeAtomic(paths.caKey, ca.keyPem, 0o600);
      await writeAtomic(paths.ca, ca.certPem, 0o644);
      caFresh = true;
    }
    let server = await readPair(paths.cert, paths.key);
    if (
      caFresh ||
      server === undefined ||
      !stillValid(server.certPem, now) ||
      !sameSan(server.certPem, san) ||
      !new X509Certificate(server.certPem).checkIssued(new X509Certificate(ca.certPem))
    ) {
      server = makeServer(ca, san, options.serverValidityDays ?? 365);
      await writeAtomic(paths.key, server.keyPem, 0o600);
      await writeAtomic(paths.cert, server.certPem, 0o644);
    }
    return { caFile: paths.ca, caPem: ca.certPem, certPem: server.certPem, keyPem: server.keyPem };
  } catch (err) {
    throw new EdgePerfError(
      'E_PKI',
      `cannot prepare runtime certificates in ${dir}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

interface Pair {
  certPem: string;
  keyPem: string;
}

interface SanSet {
  dns: string[];
  ip: string[];
}

function sanSet(hostNames: readonly string[]): SanSet {
  const dns = new Set<string>(['localhost']);
  const ip = new Set<string>(['127.0.0.1']);
  for (const raw of hostNames) {
    const h = raw.trim().toLowerCase();
    if (h === '') continue;
    if (isIP(h) !== 0) ip.add(h);
    else dns.add(h);
  }
  return { dns: [...dns].sort(), ip: [...ip].sort() };
}

// Node prints SANs as "DNS:a, IP Address:1.2.3.4"; compare as sets.
function sameSan(certPem: string, want: SanSet): boolean {
  const text = new X509Certificate(certPem).subjectAltName ?? '';
  const dns: string[] = [];
  const ip: string[] = [];
  for (const entry of text.split(',').map((s) => s.trim())) {
    if (entry.startsWith('DNS:')) dns.push(entry.slice(4).toLowerCase());
    else if (entry.startsWith('IP Address:')) ip.push(entry.slice(11).toLowerCase());
  }
  return (
    JSON.stringify([...new Set(dns)].sort()) === JSON.stringify(want.dns) &&
    JSON.stringify([...new Set(ip)].sort()) === JSON.stringify(want.ip)
  );
}

function stillValid(certPem: string, nowMs: number): boolean {
  const cert = new X509Certificate(certPem);
  return Date.parse(cert.validTo) - nowMs > DAY_MS && Date.parse(cert.validFrom) <= nowMs + 60_000;
}

async function readPair(certPath: string, keyPath: string): Promise<Pair | undefined> {
  try {
    const [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    // Parse both so a truncated file counts as missing rather than failing TLS later.
    new X509Certificate(certPem);
    forge.pki.privateKeyFromPem(keyPem);
    return { certPem, keyPem };
  } catch {
    return undefined;
  }
}

async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

// node:crypto makes RSA keys far faster than forge's pure-JS generator; forge only signs.
function rsaKeys(): {
  privateKey: forge.pki.rsa.PrivateKey;
  publicKey: forge.pki.rsa.PublicKey;
  keyPem: string;
} {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const forgeKey = forge.pki.privateKeyFromPem(privateKey);
  return {
    privateKey: forgeKey,
    publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e),
    keyPem: privateKey,
  };
}

function baseCert(publicKey: forge.pki.rsa.PublicKey, validityDays: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // Positive serial: a leading 0x00..0x7f byte keeps the DER integer positive.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 5 * 60_000); // tolerate small clock skew
  cert.validity.notAfter = new Date(now + validityDays * DAY_MS);
  return cert;
}

function makeCa(validityDays: number): Pair {
  const keys = rsaKeys();
  const cert = baseCert(keys.publicKey, validityDays);
  const subject = [
    { name: 'commonName', value: 'edgeperf local runtime CA' },
    { name: 'organizationName', value: 'edgeperf' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

function makeServer(ca: Pair, san: SanSet, validityDays: number): Pair {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const keys = rsaKeys();
  const cert = baseCert(keys.publicKey, validityDays);
  cert.setSubject([
    { name: 'commonName', value: san.dns[0] === 'localhost' ? 'localhost' : (san.dns[0] ?? 'localhost') },
    { name: 'organizationName', value: 'edgeperf' },
  ]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...san.dns.map((value) => ({ type: 2, value })), ...san.ip.map((ip) => ({ type: 7, ip }))],
    },
    { name: 'subjectKeyIdentifier' },
    {
      name: 'authorityKeyIdentifier',
      keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes(),
    },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}
