import { createServer } from 'node:net';

/** Asks the OS for a free TCP port on 127.0.0.1 (bound, read, released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** `count` distinct free ports (see {@link freePort}), none of them in `exclude`. */
export async function freePorts(count: number, exclude: ReadonlySet<number> = new Set()): Promise<number[]> {
  const used = new Set(exclude);
  const out: number[] = [];
  while (out.length < count) {
    const p = await freePort();
    if (used.has(p)) continue;
    used.add(p);
    out.push(p);
  }
  return out;
}

type Json = Record<string, unknown>;

/**
 * Moves the manifest's fixed loopback ports (source broker 1883, module metrics 96xx) to the given
 * free ones, so `edgeperf local` never collides with another runtime or a test on this machine.
 * Returns the broker port modules use (the translator's embedded broker, which the simulator targets).
 */
export function relocatePorts(manifest: Json, pick: () => number): { brokerPort?: number } {
  const content = (manifest.modulesContent ?? manifest) as Json;
  const agent = (content.$edgeAgent as Json | undefined)?.['properties.desired'] as Json | undefined;
  const modules = (agent?.modules ?? {}) as Record<string, Json>;
  const brokerMap = new Map<string, number>();
  for (const m of Object.values(modules)) {
    const env = (m.env ?? {}) as Record<string, { value: unknown }>;
    const port = env.EmbeddedBrokerPort;
    if (port !== undefined) {
      const next = pick();
      brokerMap.set(String(port.value), next);
      port.value = String(next);
    }
    if (env.MetricsPort !== undefined) env.MetricsPort.value = String(pick());
  }
  for (const m of Object.values(modules)) {
    const env = (m.env ?? {}) as Record<string, { value: unknown }>;
    for (const key of ['SourceBrokerUrl', 'SourceUrl']) {
      const entry = env[key];
      if (entry === undefined) continue;
      entry.value = String(entry.value).replace(/:(\d+)(\/?)$/, (all, p: string, slash: string) => {
        const mapped = brokerMap.get(p);
        return mapped === undefined ? all : `:${mapped}${slash}`;
      });
    }
  }
  const first = brokerMap.values().next();
  return first.done ? {} : { brokerPort: first.value };
}
