import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { portsOf } from '../../perf-cli/commands/local.js';
import { freePort, freePorts } from '../../perf-cli/local-ports.js';

const ephemeralFloor = Number(
  readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
);

describe('freePort', () => {
  it('picks distinct, bindable ports below the range the OS hands out for listen(0)', async () => {
    const ports = await freePorts(20);
    expect(new Set(ports).size).toBe(20);
    for (const p of ports) {
      expect(p).toBeLessThan(ephemeralFloor);
      expect(p).toBeGreaterThanOrEqual(1024);
    }
    const server = createServer();
    await new Promise<void>((r) => server.listen(ports[0], '127.0.0.1', r));
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('never returns a port that is in use', async () => {
    const held = await freePorts(1);
    const server = createServer();
    await new Promise<void>((r) => server.listen(held[0], '127.0.0.1', r));
    try {
      for (let i = 0; i < 200; i++) expect(await freePort()).not.toBe(held[0]);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('portsOf', () => {
  const ready = {
    ready: true as const,
    gatewayHost: 'localhost',
    caFile: '/tmp/ca.pem',
    edgeDeviceId: 'edge-device',
    edgeHub: {
      mqtt: 'mqtts://localhost:31001',
      amqp: 'amqps://localhost:31002',
      metrics: 'http://127.0.0.1:31003/metrics',
    },
    modules: {},
    iothub: 'HostName=localhost:31004;SharedAccessKeyName=iothubowner;SharedAccessKey=x',
    eventHubs: {
      builtin: 'Endpoint=sb://localhost:31005/;SharedAccessKeyName=service;SharedAccessKey=x;EntityPath=h',
      asaOutput: 'Endpoint=sb://localhost:31005/;EntityPath=asa-output',
    },
  };

  it('reads the four server ports back from the ready line', () => {
    expect(portsOf(ready)).toEqual({ mqtt: 31001, amqp: 31002, metrics: 31003, eventhubs: 31005 });
  });

  it('names the field when a port is missing', () => {
    expect(() => portsOf({ ...ready, edgeHub: { ...ready.edgeHub, amqp: 'amqps://localhost' } })).toThrow(
      /edgeHub\.amqp/,
    );
  });
});
