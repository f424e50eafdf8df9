import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { createSasToken, parseModuleConnectionString, quietMqttLog } from '../../modules/common/index.js';

// Bench child: the wire limit. A raw MQTT.js publisher of large payloads to edgeHub as a module
// (TLS, SAS password, QoS 1 telemetry to an output), `window` publishes awaiting PUBACK at once.
// env: EdgeHubConnectionString, EdgeModuleCACertificateFile. argv: messages payloadBytes window.
// Prints {"startedMs"} after connect and {"acked","bytes","startedMs","endMs"} at the end.

const [messagesText = '100', sizeText = '260096', windowText = '8'] = process.argv.slice(2);
const total = Number(messagesText);
const size = Number(sizeText);
const window = Number(windowText);
const cs = parseModuleConnectionString(process.env.EdgeHubConnectionString ?? '');
const [gateway = 'localhost', portText = '8883'] = (cs.gatewayHostName ?? cs.hostName).split(':');
const moduleId = cs.moduleId ?? '';
const resource = `${cs.hostName}/devices/${cs.deviceId}/modules/${moduleId}`;
const client = mqtt.connect({
  protocol: 'mqtts',
  host: gateway,
  port: Number(portText),
  servername: gateway,
  protocolVersion: 4,
  clientId: `${cs.deviceId}/${moduleId}`,
  username: `${cs.hostName}/${cs.deviceId}/${moduleId}/?api-version=2021-04-12`,
  password: createSasToken(resource, cs.sharedAccessKey, Math.floor(Date.now() / 1000) + 3600),
  ca: readFileSync(process.env.EdgeModuleCACertificateFile ?? ''),
  clean: false,
  reconnectPeriod: 0,
  ...quietMqttLog(),
});
const topic = `devices/${cs.deviceId}/modules/${moduleId}/messages/events/%24.on=output1/`;
const body = Buffer.alloc(size, 0x61);
// Stay up after the last ack until SIGTERM, so the bench can read this process's /proc counters.
process.on('SIGTERM', () => client.end(false, () => process.exit(0)));
client.on('error', (err) => {
  process.stderr.write(`wire publisher: ${err.message}\n`);
  process.exit(1);
});
client.on('connect', () => {
  const startedMs = Date.now();
  process.stdout.write(`${JSON.stringify({ startedMs })}\n`);
  let sent = 0;
  let acked = 0;
  const next = () => {
    if (sent >= total) return;
    sent++;
    client.publish(topic, body, { qos: 1 }, (err) => {
      if (err) process.stderr.write(`publish failed: ${err.message}\n`);
      acked++;
      if (acked === total) {
        process.stdout.write(
          `${JSON.stringify({ acked, bytes: acked * size, startedMs, endMs: Date.now() })}\n`,
        );
      } else next();
    });
  };
  for (let i = 0; i < window; i++) next();
});
