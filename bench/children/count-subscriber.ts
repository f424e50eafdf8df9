import mqtt from 'mqtt';
import { quietMqttLog } from '../../modules/common/index.js';

// Bench child: the ingest limit. A bare MQTT.js subscriber (QoS 1, like the translator's source)
// that only counts. argv: brokerUrl topic expectedMessages [warmUpMessages]. Prints
// {"subscribed":true}, then once `expected` messages arrived {"count","bytes","firstMs","lastMs"}
// and, with a warm-up, "mark": {"count","ms","cpuMs"}: where the measured window opened and this
// process's CPU since then. Stays up until SIGTERM so the bench can read its /proc counters.

const [url = 'mqtt://127.0.0.1:1883', topic = '#', expectedText = '1000', warmUpText = '0'] =
  process.argv.slice(2);
const expected = Number(expectedText);
const warmUp = Number(warmUpText);
let count = 0;
let bytes = 0;
let firstMs = 0;
let lastMs = 0;
let mark: { count: number; ms: number; cpu: NodeJS.CpuUsage } | undefined;
// MQTT.js's debug logging off, as in the simulator and the translator: the limit is MQTT.js at its best.
const client = mqtt.connect(url, { clientId: 'edgeperf-bench-counter', clean: true, ...quietMqttLog() });
client.on('message', (_topic, payload) => {
  count++;
  bytes += payload.length;
  lastMs = Date.now();
  if (firstMs === 0) firstMs = lastMs;
  if (count === warmUp) mark = { count, ms: lastMs, cpu: process.cpuUsage() };
  if (count === expected) {
    const cpu = mark && process.cpuUsage(mark.cpu);
    const window = mark && cpu && { count: mark.count, ms: mark.ms, cpuMs: (cpu.user + cpu.system) / 1000 };
    process.stdout.write(
      `${JSON.stringify({ count, bytes, firstMs, lastMs, ...(window ? { mark: window } : {}) })}\n`,
    );
  }
});
client.on('connect', () => {
  client.subscribe(topic, { qos: 1 }, () =>
    process.stdout.write(`${JSON.stringify({ subscribed: true })}\n`),
  );
});
process.on('SIGTERM', () => {
  process.stdout.write(`${JSON.stringify({ count, bytes, firstMs, lastMs, final: true })}\n`);
  client.end(true, () => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
});
