import { ConfigError, createLogger, toError } from '../common/index.js';
import { TranslatorModule } from './module.js';

// Entry point of the translator container: `node dist/modules/translator/main.js`.
// Configuration comes from env vars and the module twin (see config/env.ts, config/twin.ts).

const log = createLogger('translator');
const mod = new TranslatorModule({ logger: log });
let stopping = false;

async function shutdown(signal: string): Promise<void> {
  if (stopping) {
    log.warn({ signal }, 'second signal: exiting now');
    process.exit(1);
  }
  stopping = true;
  const deadlineMs = (mod.settings?.shutdownTimeoutInMs ?? 10_000) + 2000;
  log.info({ signal, deadlineMs }, 'stopping: no more reads, flushing');
  // The module's own deadline bounds the flush; this one bounds everything else (closes).
  const timer = setTimeout(() => {
    log.error('shutdown deadline passed; exiting');
    process.exit(1);
  }, deadlineMs);
  timer.unref();
  try {
    await mod.stop();
    process.exit(0);
  } catch (err) {
    log.error({ err: toError(err).message }, 'shutdown failed');
    process.exit(1);
  }
}

process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('unhandledRejection', (reason) => {
  // Background failures must not kill the data path; log them loudly instead.
  log.error({ err: toError(reason).message }, 'unhandled rejection');
});

mod.start().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    log.fatal({ issues: err.issues }, err.message);
    process.exit(2);
  }
  log.fatal({ err: toError(err).message }, 'translator failed to start');
  process.exit(1);
});
