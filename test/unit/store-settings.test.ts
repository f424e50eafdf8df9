import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEdgeHubDesired, parseEdgeHubEnv } from '../../emulator/edgehub/settings.js';
import { ConfigError } from '../../modules/common/index.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('edgeHub env settings', () => {
  it('applies edgeHub defaults and appends edgeHub to StorageFolder', () => {
    expect(parseEdgeHubEnv({})).toEqual({
      maxUpstreamBatchSize: 10,
      upstreamFanOutFactor: 10,
      usePersistentStorage: true,
      storageFolder: join(tmpdir(), 'edgeHub'),
      enableNonPersistentStorageBackup: false,
      messageCleanupIntervalSecs: 1800,
      checkEntireQueueOnCleanup: false,
      messageAckTimeoutSecs: 30,
      metricsListenerPort: 9600,
      upstreamProtocol: 'Amqp',
    });
  });

  it('reads every variable', () => {
    const s = parseEdgeHubEnv({
      MaxUpstreamBatchSize: '50',
      UpstreamFanOutFactor: '4',
      UsePersistentStorage: 'False',
      StorageFolder: '/iotedge/storage',
      EnableNonPersistentStorageBackup: 'true',
      MessageCleanupIntervalSecs: '60',
      CheckEntireQueueOnCleanup: 'TRUE',
      MessageAckTimeoutSecs: '5',
      Metrics__Listener__Port: '0',
      UpstreamProtocol: 'amqpws',
      Unrelated: 'x',
    });
    expect(s).toMatchObject({
      maxUpstreamBatchSize: 50,
      upstreamFanOutFactor: 4,
      usePersistentStorage: false,
      storageFolder: '/iotedge/storage/edgeHub',
      enableNonPersistentStorageBackup: true,
      messageCleanupIntervalSecs: 60,
      checkEntireQueueOnCleanup: true,
      messageAckTimeoutSecs: 5,
      metricsListenerPort: 0,
      upstreamProtocol: 'AmqpWs',
    });
  });

  it('reports every invalid variable at once', () => {
    const err = configError(() =>
      parseEdgeHubEnv({
        MaxUpstreamBatchSize: '0',
        UsePersistentStorage: 'yes',
        Metrics__Listener__Port: '70000',
        UpstreamProtocol: 'Http',
      }),
    );
    expect(err.issues.map((i) => i.field).sort()).toEqual([
      'env.MaxUpstreamBatchSize',
      'env.Metrics__Listener__Port',
      'env.UpstreamProtocol',
      'env.UsePersistentStorage',
    ]);
    expect(err.message).toContain('(got "yes")');
  });
});

describe('$edgeHub desired settings', () => {
  it('reads routes in both forms, TTL and store limit', () => {
    const s = parseEdgeHubDesired({
      $version: 3,
      schemaVersion: '1.1',
      routes: {
        up: 'FROM /messages/* INTO $upstream',
        alarms: {
          route: "FROM /messages/* WHERE kind = 'alarm' INTO $upstream",
          priority: 0,
          timeToLiveSecs: 86400,
        },
      },
      storeAndForwardConfiguration: { timeToLiveSecs: 7200, storeLimits: { maxSizeBytes: 1_000_000 } },
    });
    expect(s.schemaVersion).toBe('1.1');
    expect(s.timeToLiveSecs).toBe(7200);
    expect(s.maxSizeBytes).toBe(1_000_000);
    expect(s.routes.map((r) => [r.name, r.priority, r.timeToLiveSecs])).toEqual([
      ['up', 2_000_000_000, undefined],
      ['alarms', 0, 86400],
    ]);
  });

  it('TTL 0 or absent means never expire', () => {
    const s = parseEdgeHubDesired({
      schemaVersion: '1.0',
      routes: {},
      storeAndForwardConfiguration: { timeToLiveSecs: 0 },
    });
    expect(s.timeToLiveSecs).toBeUndefined();
  });

  it('reports every problem at once, invalid routes with their position', () => {
    const err = configError(() =>
      parseEdgeHubDesired({
        schemaVersion: '1.0',
        routes: {
          bad: 'FROM /messages/* INTO $nowhere',
          obj: { route: 'FROM /messages/* INTO $upstream', priority: 1 },
        },
        storeAndForwardConfiguration: { timeToLiveSecs: -1 },
      }),
    );
    const fields = err.issues.map((i) => i.field);
    expect(fields).toContain('$edgeHub.routes.bad');
    expect(fields).toContain('$edgeHub.routes.obj');
    expect(fields).toContain('$edgeHub.storeAndForwardConfiguration.timeToLiveSecs');
    expect(err.issues.find((i) => i.field === '$edgeHub.routes.bad')?.message).toMatch(
      /"bad" at position 23/,
    );
    expect(err.issues.find((i) => i.field === '$edgeHub.routes.obj')?.message).toMatch(/schemaVersion 1.1/);
  });

  it('rejects priorities outside 0-9 and unknown schema versions', () => {
    const err = configError(() =>
      parseEdgeHubDesired({
        schemaVersion: '2.0',
        routes: { r: { route: 'FROM /messages/* INTO $upstream', priority: 10 } },
      }),
    );
    expect(err.issues.map((i) => i.field).sort()).toEqual([
      '$edgeHub.routes.r.priority',
      '$edgeHub.schemaVersion',
    ]);
  });
});
