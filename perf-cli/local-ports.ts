import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Lowest port the OS hands out for `listen(0)` and outgoing connections (Linux default 32768). */
function ephemeralFloor(): number {
  try {
    const [lo] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(lo);
    return Number.isInteger(n) && n > 2048 ? n : 32768;
  } catch {
    return 32768;
  }
}

/** How many ports below the ephemeral floor {@link freePort} draws from. */
const POOL_SIZE = 12_000;

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port free on 127.0.0.1 for a server that a child process will start later.
 *
 * Drawn at random from just below the OS's ephemeral range and checked bindable, not taken from
 * `listen(0)`: between this check and the child's bind, any socket on the machine (a parallel test's
 * `listen(0)`, an outgoing connection) could otherwise be given the same ephemeral port. CI saw this
 * (EADDRINUSE in a sweep). Ports outside the range are only ever taken by explicit choice.
 */
export async function freePort(): Promise<number> {
  const floor = ephemeralFloor();
  const base = Math.max(1024, floor - POOL_SIZE);
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = base + Math.floor(Math.random() * (floor - base));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port on 127.0.0.1 between ${base} and ${floor - 1} after 50 tries`);
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
