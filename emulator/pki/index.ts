export type { RuntimeCertificates, RuntimeCertificatesOptions } from './runtime-certs.js';
export { ensureRuntimeCertificates } from './runtime-certs.js';
