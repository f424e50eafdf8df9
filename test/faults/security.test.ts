import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { EventHubConsumerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { Message, ModuleClient } from 'azure-iot-device';
import { Amqp } from 'azure-iot-device-amqp';
import { Mqtt } from 'azure-iot-device-mqtt';
import { Registry } from 'azure-iothub';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalHubAgent, type RuntimeReadyInfo, useLocalHubAgent } from '../../emulator/index.js';
import { createSasToken, parseConnectionString } from '../../modules/common/index.js';
import { EDGEPERF, ROOT } from './faults-helpers.js';

// The Security section of issue 8, against the whole runtime as users start it (`edgeperf
// emulator` in a child process, so every log line it writes is captured): bad credentials, plain
// TCP on TLS ports and oversized frames are refused and logged as refusals, the runtime keeps
// working, no secret reaches a log line or a client's error, and nothing listens beyond loopback.
// EDGEPERF_SECURITY_CLI may point at another build of main.js (to test sources without dist/).

const CLI = process.env.EDGEPERF_SECURITY_CLI ?? EDGEPERF;
const DEVICE = 'edge-device';
const MB = 1024 * 1024;

function manifest() {
  const mod = (image: string) => ({
    type: 'docker',
    status: 'running',
    restartPolicy: 'always',
    settings: { image },
  });
  return {
    modulesContent: {
      $edgeAgent: {
        'properties.desired': {
          schemaVersion: '1.1',
          runtime: { type: 'docker', settings: {} },
          systemModules: {
            edgeAgent: { type: 'docker', settings: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5' } },
            edgeHub: { type: 'docker', settings: { image: 'mcr.microsoft.com/azureiotedge-hub:1.5' } },
          },
          modules: { sender: mod('example.azurecr.io/sender:1'), other: mod('example.azurecr.io/other:1') },
        },
      },
      $edgeHub: {
        'properties.desired': {
          schemaVersion: '1.1',
          routes: { up: 'FROM /messages/modules/sender/outputs/* INTO $upstream' },
          storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
        },
      },
    },
  };
}

interface Runtime {
  readonly child: ChildProcess;
  readonly ready: RuntimeReadyInfo;
  /** Everything the child wrote, stdout then stderr, so far. */
  output(): string;
  logLines(): string[];
}

let dir: string;
let stateDir: string;
let rt: Runtime;
/** Every error message a refused client got (scanned for secrets at the end). */
const clientErrors: string[] = [];
/** Forged keys and signatures this file sent: secrets too, they must not be echoed either. */
const sentSecrets: string[] = [];

async function startRuntime(): Promise<Runtime> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const manifestFile = join(dir, 'manifest.json');
  writeFileSync(manifestFile, JSON.stringify(manifest()));
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'debug' };
  delete env.DEBUG; // rhea/aedes wire tracing is an opt-in that dumps frames; not what users run
  delete env.RuntimeLogLevel;
  const child = spawn(
    process.execPath,
    [
      CLI,
      'emulator',
      '--json',
      '--no-modules',
      '--manifest',
      manifestFile,
      '--state-dir',
      stateDir,
      '--mqtt-port',
      '0',
      '--amqp-port',
      '0',
      '--metrics-port',
      '0',
      '--eventhubs-port',
      '0',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const ready = await new Promise<RuntimeReadyInfo>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`runtime not ready in 20 s:\n${stderr}`)), 20_000);
    const poll = setInterval(() => {
      const line = stdout.split('\n').find((l) => l.startsWith('{') && l.includes('"ready"'));
      if (line === undefined) return;
      clearInterval(poll);
      clearTimeout(timer);
      resolve(JSON.parse(line) as RuntimeReadyInfo);
    }, 25);
    child.once('exit', (code) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`runtime exited ${code} before ready:\n${stderr}`));
    });
  });
  return {
    child,
    ready,
    output: () => `${stdout}\n${stderr}`,
    logLines: () => stderr.split('\n').filter((l) => l.trim() !== ''),
  };
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

function keyOf(connectionString: string): string {
  const key = parseConnectionString(connectionString).SharedAccessKey;
  if (key === undefined) throw new Error('connection string without SharedAccessKey');
  return key;
}

function withKey(connectionString: string, key: string): string {
  return connectionString.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${key}`);
}

function forgedKey(): string {
  const key = randomBytes(32).toString('base64');
  sentSecrets.push(key);
  return key;
}

function token(moduleId: string, key: string, expiry: number): string {
  const hub = parseConnectionString(rt.ready.modules.sender as string).HostName as string;
  const t = createSasToken(`${hub}/devices/${DEVICE}/modules/${moduleId}`, key, expiry);
  sentSecrets.push(decodeURIComponent(/sig=([^&]+)/.exec(t)?.[1] ?? ''));
  return t;
}

/** Counts the runtime's JSON log lines with this message. */
function logged(msg: string): number {
  return rt.logLines().filter((l) => {
    try {
      return (JSON.parse(l) as { msg?: string }).msg === msg;
    } catch {
      return false;
    }
  }).length;
}

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
}

async function moduleClient(connectionString: string, transport: typeof Mqtt | typeof Amqp) {
  const saved = { cs: process.env.EdgeHubConnectionString, ca: process.env.EdgeModuleCACertificateFile };
  process.env.EdgeHubConnectionString = connectionString;
  process.env.EdgeModuleCACertificateFile = rt.ready.caFile;
  try {
    return await ModuleClient.fromEnvironment(transport);
  } finally {
    for (const [k, v] of [
      ['EdgeHubConnectionString', saved.cs],
      ['EdgeModuleCACertificateFile', saved.ca],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Opens with the SDK, expecting a refusal; returns the error's message. */
async function refusedOpen(connectionString: string, transport: typeof Mqtt | typeof Amqp): Promise<string> {
  const client = await moduleClient(connectionString, transport);
  try {
    await client.open();
  } catch (err) {
    const text = `${(err as Error).name}: ${(err as Error).message} ${JSON.stringify(err)}`;
    clientErrors.push(text);
    return text;
  } finally {
    await client.close().catch(() => undefined);
  }
  throw new Error('open succeeded with bad credentials');
}

/** Raw MQTT CONNECT; resolves the CONNACK return code (0 = accepted). */
async function connackCode(clientModule: string, password: string): Promise<number> {
  const hub = parseConnectionString(rt.ready.modules.sender as string).HostName as string;
  const client = mqtt.connect({
    protocol: 'mqtts',
    host: '127.0.0.1',
    port: portOf(rt.ready.edgeHub.mqtt),
    servername: 'localhost',
    ca: readFileSync(rt.ready.caFile),
    protocolVersion: 4,
    clientId: `${DEVICE}/${clientModule}`,
    username: `${hub}/${DEVICE}/${clientModule}/?api-version=2021-04-12`,
    password,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      client.once('connect', () => resolve(0));
      client.once('error', (err) => {
        clientErrors.push(err.message);
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'number') resolve(code);
        else reject(err);
      });
    });
  } finally {
    await client.endAsync(true).catch(() => undefined);
  }
}

/** Writes `bytes` to a socket and waits for the server to close it; returns what came back. */
async function untilClosed(
  socket: Socket,
  write: () => void,
  timeoutMs: number,
): Promise<{ closed: boolean; received: Buffer; ms: number }> {
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('error', () => undefined);
  const started = Date.now();
  write();
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  socket.destroy();
  return { closed, received: Buffer.concat(chunks), ms: Date.now() - started };
}

function tlsSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: readFileSync(rt.ready.caFile),
    });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Writes `total` bytes in 64 KiB chunks, stopping quietly when the peer goes away. */
function stream(socket: Socket, total: number): void {
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  let sent = 0;
  const pump = () => {
    while (sent < total && !socket.destroyed) {
      sent += chunk.length;
      if (!socket.write(chunk)) {
        socket.once('drain', pump);
        return;
      }
    }
  };
  pump();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edgeperf-security-'));
  stateDir = join(dir, 'state');
  rt = await startRuntime();
}, 30_000);

afterAll(async () => {
  const child = rt?.child;
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
  }
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('security: the runtime refuses bad peers and leaks no secret', () => {
  it('refuses a module connection string with the wrong key (MQTT and AMQP)', async () => {
    const wrong = withKey(rt.ready.modules.sender as string, forgedKey());
    const mqttBefore = logged('MQTT connection refused');
    expect(await refusedOpen(wrong, Mqtt)).toMatch(/unauthori[sz]ed|not authori[sz]ed|bad user|refused/i);
    await until(() => logged('MQTT connection refused') > mqttBefore, 2_000);
    expect(logged('MQTT connection refused')).toBe(mqttBefore + 1);

    const amqpBefore = logged('put-token refused');
    // Module connection strings carry the MQTT port unless the module asked for AMQP; point at AMQP.
    const amqpPort = portOf(rt.ready.edgeHub.amqp);
    const amqpCs = (rt.ready.modules.sender as string).replace(
      /GatewayHostName=[^;]+/,
      `GatewayHostName=localhost:${amqpPort}`,
    );
    expect(await refusedOpen(withKey(amqpCs, forgedKey()), Amqp)).toMatch(/unauthori[sz]ed|401|refused/i);
    await until(() => logged('put-token refused') > amqpBefore, 2_000);
    expect(logged('put-token refused')).toBeGreaterThan(amqpBefore);
  });

  it('refuses an expired token (CONNACK 4) and a token for another module (CONNACK 5)', async () => {
    const senderKey = keyOf(rt.ready.modules.sender as string);
    const otherKey = keyOf(rt.ready.modules.other as string);
    const before = logged('MQTT connection refused');
    expect(await connackCode('sender', token('sender', senderKey, Math.floor(Date.now() / 1000) - 60))).toBe(
      4,
    );
    const future = Math.floor(Date.now() / 1000) + 3600;
    expect(await connackCode('sender', token('other', otherKey, future))).toBe(5);
    await until(() => logged('MQTT connection refused') >= before + 2, 2_000);
    expect(logged('MQTT connection refused')).toBe(before + 2);
    const reasons = rt
      .logLines()
      .filter((l) => l.includes('MQTT connection refused'))
      .map((l) => (JSON.parse(l) as { reason?: string }).reason);
    expect(reasons).toEqual(expect.arrayContaining(['expired', 'wrong-resource']));
  });

  it('refuses plain TCP on the MQTT and AMQP TLS ports', async () => {
    const before = logged('TLS handshake failed (TLS only on this port)') + logged('TLS handshake failed');
    for (const [port, hello] of [
      [
        portOf(rt.ready.edgeHub.mqtt),
        Buffer.from([0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 1, 0x78]),
      ],
      [portOf(rt.ready.edgeHub.amqp), Buffer.from('AMQP\x03\x01\x00\x00', 'latin1')],
    ] as const) {
      const socket = netConnect(port, '127.0.0.1');
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const r = await untilClosed(socket, () => socket.write(hello), 5_000);
      expect(r.closed).toBe(true);
      // Whatever came back is a TLS alert (content type 21), never an MQTT CONNACK or AMQP header.
      if (r.received.length > 0) expect(r.received[0]).toBe(21);
    }
    await until(
      () =>
        logged('TLS handshake failed (TLS only on this port)') + logged('TLS handshake failed') >= before + 2,
      2_000,
    );
    expect(logged('TLS handshake failed (TLS only on this port)') + logged('TLS handshake failed')).toBe(
      before + 2,
    );
  });

  it('drops an MQTT CONNECT announcing 8 MB long before it is buffered', async () => {
    const socket = await tlsSocket(portOf(rt.ready.edgeHub.mqtt));
    // CONNECT, remaining length 8 MiB as a variable byte integer (0x80 0x80 0x80 0x04).
    const header = Buffer.from([0x10, 0x80, 0x80, 0x80, 0x04, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60]);
    const r = await untilClosed(
      socket,
      () => {
        socket.write(header);
        stream(socket, 4 * MB);
      },
      5_000,
    );
    // Without a size limit aedes buffers the whole announced packet and waits 30 s for it.
    expect(r.closed).toBe(true);
    expect(r.received.length).toBe(0); // no CONNACK
    await until(() => logged('MQTT packet too large; connection dropped') >= 1, 2_000);
    expect(logged('MQTT packet too large; connection dropped')).toBe(1);
  });

  it('drops an AMQP frame larger than the advertised max-frame-size', async () => {
    const socket = await tlsSocket(portOf(rt.ready.edgeHub.amqp));
    // SASL protocol header, then a frame header announcing 64 MiB (type 1 = SASL frame).
    const frame = Buffer.alloc(8);
    frame.writeUInt32BE(64 * MB, 0);
    frame[4] = 2;
    frame[5] = 1;
    const r = await untilClosed(
      socket,
      () => {
        socket.write(Buffer.concat([Buffer.from('AMQP\x03\x01\x00\x00', 'latin1'), frame]));
        stream(socket, 4 * MB);
      },
      5_000,
    );
    expect(r.closed).toBe(true);
    await until(() => logged('AMQP frame larger than max-frame-size; connection dropped') >= 1, 2_000);
    expect(logged('AMQP frame larger than max-frame-size; connection dropped')).toBe(1);
  });

  it('refuses a wrong-key Event Hubs client and a wrong-key service API call', async () => {
    const consumer = new EventHubConsumerClient(
      '$Default',
      withKey(rt.ready.eventHubs.builtin, forgedKey()),
      {
        retryOptions: { maxRetries: 0, timeoutInMs: 5_000 },
      },
    );
    try {
      await consumer.getPartitionIds();
      throw new Error('Event Hubs accepted a wrong key');
    } catch (err) {
      const text = `${(err as Error).name}: ${(err as Error).message} ${JSON.stringify(err)}`;
      clientErrors.push(text);
      expect(text).toMatch(/unauthori[sz]ed|401|denied|signature/i);
    } finally {
      await consumer.close();
    }

    const agent = createLocalHubAgent({ caPem: readFileSync(rt.ready.caFile) });
    const registry = useLocalHubAgent(
      Registry.fromConnectionString(withKey(rt.ready.iothub, forgedKey())),
      agent,
    );
    try {
      await registry.get(DEVICE);
      throw new Error('the service API accepted a wrong key');
    } catch (err) {
      const e = err as Error & { response?: { statusCode?: number }; responseBody?: unknown };
      clientErrors.push(`${e.name}: ${e.message} ${JSON.stringify(e.responseBody ?? '')}`);
      expect(e.response?.statusCode ?? e.name).toSatisfy((v) => v === 401 || v === 'UnauthorizedError');
    } finally {
      agent.destroy();
    }
  });

  it('still serves a good module: its message reaches the built-in endpoint', async () => {
    const client = await moduleClient(rt.ready.modules.sender as string, Mqtt);
    const consumer = new EventHubConsumerClient('$Default', rt.ready.eventHubs.builtin);
    try {
      await client.open();
      const marker = `after-attacks-${Date.now()}`;
      await client.sendOutputEvent('up', new Message(JSON.stringify({ marker })));
      const events: ReceivedEventData[] = [];
      const sub = consumer.subscribe(
        { processEvents: async (batch) => void events.push(...batch), processError: async () => undefined },
        { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
      );
      await until(() => events.length > 0, 10_000);
      await sub.close();
      expect(events.map((e) => JSON.stringify(e.body))).toContain(JSON.stringify({ marker }));
    } finally {
      await client.close().catch(() => undefined);
      await consumer.close();
    }
    expect(rt.child.exitCode).toBeNull();
  });

  it('writes no key, signature or connection string into any log line or client error', () => {
    const secrets = [
      ...Object.values(rt.ready.modules).map(keyOf),
      keyOf(rt.ready.iothub),
      keyOf(rt.ready.eventHubs.builtin),
      keyOf(rt.ready.eventHubs.asaOutput),
      ...sentSecrets,
    ].filter((s) => s.length > 0);
    expect(secrets.length).toBeGreaterThanOrEqual(7);
    const texts: [string, string][] = [
      // The ready line on stdout is the one place connection strings belong; the logs are not.
      ['runtime stderr', rt.logLines().join('\n')],
      ...moduleLogs(stateDir).map((f): [string, string] => [f, readFileSync(f, 'utf8')]),
      ...clientErrors.map((e, i): [string, string] => [`client error ${i}`, e]),
    ];
    expect(rt.logLines().length).toBeGreaterThan(10); // debug logging was really on
    expect(clientErrors.length).toBeGreaterThanOrEqual(6);
    for (const [where, text] of texts) {
      for (const secret of secrets) {
        for (const form of [secret, encodeURIComponent(secret)])
          expect(text.includes(form), `${where} contains a secret`).toBe(false);
      }
      for (const m of text.matchAll(/sig=([^&;"'\s]+)/gi))
        expect(m[1], `${where}: sig= not redacted`).toBe('[redacted]');
      for (const m of text.matchAll(/SharedAccessKey=([^;"'\s]+)/gi))
        expect(m[1], `${where}: SharedAccessKey= not redacted`).toBe('[redacted]');
    }
  });

  it('listens on 127.0.0.1 only', async () => {
    const ports = [
      portOf(rt.ready.edgeHub.mqtt),
      portOf(rt.ready.edgeHub.amqp),
      portOf(rt.ready.edgeHub.metrics),
      Number(/HostName=[^:;]+:(\d+)/.exec(rt.ready.iothub)?.[1]),
      Number(/Endpoint=sb:\/\/[^:/]+:(\d+)/.exec(rt.ready.eventHubs.builtin)?.[1]),
    ];
    expect(ports.every((p) => Number.isInteger(p) && p > 0)).toBe(true);
    const listening = listeningAddresses(rt.child.pid as number);
    if (listening === undefined) {
      console.log('security: /proc not available; socket table check skipped');
    } else {
      for (const p of ports) expect(listening.map((l) => l.port)).toContain(p);
      expect(listening.filter((l) => l.address !== '127.0.0.1')).toEqual([]);
    }
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
    if (external === undefined) {
      console.log('security: no non-loopback IPv4 address on this machine; reachability check skipped');
      return;
    }
    for (const port of ports) {
      const outcome = await new Promise<string>((resolve) => {
        const s = netConnect(port, external);
        s.setTimeout(2_000, () => {
          s.destroy();
          resolve('timeout');
        });
        s.once('connect', () => {
          s.destroy();
          resolve('connected');
        });
        s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      });
      expect(outcome, `${external}:${port}`).not.toBe('connected');
    }
  });
});

function moduleLogs(state: string): string[] {
  const root = join(state, 'logs');
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(root);
  return out;
}

/**
 * TCP sockets in LISTEN state owned by `pid` or its descendants, from /proc (Linux);
 * undefined where there is no /proc.
 */
function listeningAddresses(pid: number): { address: string; port: number }[] | undefined {
  if (!existsSync('/proc/net/tcp')) return undefined;
  const pids = [pid, ...descendants(pid)];
  const inodes = new Set<string>();
  for (const p of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${p}/fd/${fd}`));
        if (m !== null) inodes.add(m[1] as string);
      } catch {
        // fd closed meanwhile
      }
    }
  }
  const out: { address: string; port: number }[] = [];
  for (const [file, v6] of [
    ['/proc/net/tcp', false],
    ['/proc/net/tcp6', true],
  ] as const) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== '0A' || !inodes.has(cols[9] as string)) continue;
      const [hexAddr, hexPort] = (cols[1] as string).split(':') as [string, string];
      out.push({ address: v6 ? decodeV6(hexAddr) : decodeV4(hexAddr), port: Number.parseInt(hexPort, 16) });
    }
  }
  return out;
}

function decodeV4(hex: string): string {
  // /proc prints the address as a little-endian 32-bit word
  return [3, 2, 1, 0].map((i) => Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join('.');
}

function decodeV6(hex: string): string {
  // Four little-endian words; only the IPv4-mapped loopback is reported in dotted form.
  const words = [0, 1, 2, 3].map((i) => hex.slice(i * 8, i * 8 + 8));
  if (words[0] === '00000000' && words[1] === '00000000' && words[2] === 'FFFF0000')
    return decodeV4(words[3] as string);
  return `v6:${hex}`;
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return out;
  }
  const parent = new Map<number, number>();
  for (const e of entries) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(e), ppid);
    } catch {
      // exited meanwhile
    }
  }
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    for (const [c, pp] of parent) {
      if (pp !== p) continue;
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}
