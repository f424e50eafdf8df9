import { ConfigError, createLogger, toError } from '../common/index.js';
import { NaiveModule, naiveSettingsFromEnv } from './naive.js';

// Entry point of the naive competitor module: `node dist/modules/naive/main.js` (image edgeperf/naive).

const log = createLogger('naive');
let mod: NaiveModule | undefined;

async function shutdown(): Promise<void> {
  try {
    await mod?.stop();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());

try {
  mod = new NaiveModule({ settings: naiveSettingsFromEnv(process.env), logger: log });
  await mod.start();
} catch (err) {
  if (err instanceof ConfigError) {
    log.fatal({ issues: err.issues }, err.message);
    process.exit(2);
  }
  log.fatal({ err: toError(err).message }, 'naive module failed to start');
  process.exit(1);
}
