// Child process for store-durability.test.ts: enqueues messages into a persistent store as fast
// as it can and prints each sequence number once enqueue() resolved, until it is SIGKILLed.
import { MessageStore } from '../../emulator/edgehub/store/message-store.js';

const folder = process.argv[2];
if (folder === undefined) throw new Error('usage: store-kill-child <folder>');
const store = new MessageStore({ persistent: true, folder });
await store.start();
process.stdout.write('ready\n');
// Sixteen writers at once, as several modules would send: many enqueues share one commit.
const WORKERS = 16;
async function writer(worker: number): Promise<never> {
  for (let n = 0; ; n++) {
    const seq = n * WORKERS + worker;
    const message = {
      id: `k${seq}`,
      body: Buffer.alloc(1024, seq % 256),
      properties: { seq: String(seq), worker: String(worker) },
      system: { connectionDeviceId: 'edge1', connectionModuleId: 'a', receivedAtMs: Date.now() },
    };
    await Promise.all([
      store.enqueue([{ endpoint: 'iothub', priority: 0, message, expiresAtMs: Number.POSITIVE_INFINITY }]),
      store.enqueue([
        {
          endpoint: '/modules/b/inputs/in',
          priority: 2_000_000_000,
          message,
          expiresAtMs: Date.now() + 7_200_000,
        },
      ]),
    ]);
    process.stdout.write(`${seq}\n`);
  }
}
await Promise.all(Array.from({ length: WORKERS }, (_, w) => writer(w)));
