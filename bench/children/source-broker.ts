import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { Aedes } from 'aedes';

// Bench child: the source broker (aedes, in-memory) in its own process, so neither the module
// under test nor the runtime pays for it. Prints JSON lines on stdout: {"port":N}, then
// {"subscribed":clientId,"topics":[…]} per subscription. Exits on SIGTERM.

const broker = await Aedes.createBroker();
const server = createServer(broker.handle);
broker.on('subscribe', (subs, client) => {
  process.stdout.write(
    `${JSON.stringify({ subscribed: client?.id ?? '', topics: subs.map((s) => s.topic) })}\n`,
  );
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
const stop = () => {
  broker.close(() => server.close(() => process.exit(0)));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
