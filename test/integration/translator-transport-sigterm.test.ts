import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnvelopeBody, readPerfFields } from '../../modules/common/index.js';
import { freePort } from '../../perf-cli/local-ports.js';
import { DEVICE_ID, type Rig, startRig, until } from './edgehub-mqtt-helpers.js';

// main.ts as a container runs it (a child process with the module environment): SIGTERM must
// stop reading, flush what is buffered to edgeHub and exit 0 well before the linger expires.
const moduleId = 'translator';
let rig: Rig;
let child: ChildProcess | undefined;

beforeAll(async () => {
  rig = await startRig([moduleId]);
});
afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await rig?.close();
});

describe('translator main on SIGTERM', () => {
  it('flushes buffered records to edgeHub and exits 0', async () => {
    const brokerPort = await freePort();
    child = spawn(process.execPath, ['--import', 'tsx', 'modules/translator/main.ts'], {
      env: {
        ...process.env,
        EdgeHubConnectionString: rig.connectionString(moduleId),
        EdgeModuleCACertificateFile: rig.certs.caFile,
        EmbeddedBrokerEnabled: 'true',
        EmbeddedBrokerPort: String(brokerPort),
        MetricsPort: '0',
        UpstreamTransport: 'sdk-mqtt',
        // A long linger: only the SIGTERM flush can send these records in time.
        BatchMaxWaitTimeInMs: '30000',
        RuntimeLogLevel: process.env.TEST_LOG_LEVEL ?? 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = once(child, 'exit');
    await until(() => rig.core.isConnected({ deviceId: DEVICE_ID, moduleId }), 'module connected', 30_000);
    let field: mqtt.MqttClient | undefined;
    const deadline = Date.now() + 15_000;
    while (!field) {
      try {
        field = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, {
          reconnectPeriod: 0,
          connectTimeout: 1000,
        });
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // The source subscribes after the twin is read; wait until aedes shows a subscriber.
    await new Promise((r) => setTimeout(r, 500));
    for (let seq = 0; seq < 30; seq++) {
      await field.publishAsync(
        'field/a',
        JSON.stringify({ perf: { sid: 'k', burst: 1, seq, ts: Date.now() } }),
        {
          qos: 1,
        },
      );
    }
    await field.endAsync();
    await new Promise((r) => setTimeout(r, 300));
    const seqs = () =>
      new Set(
        rig.intake.messages.flatMap((m) =>
          decodeEnvelopeBody(m.body, m.system.contentEncoding).flatMap((r) => readPerfFields(r)?.seq ?? []),
        ),
      );
    expect(seqs().size).toBe(0);
    const started = Date.now();
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(seqs().size).toBe(30);
  });
});
