import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IdentityRegistry } from '../../emulator/iothub/registry.js';
import { mergePatch } from '../../emulator/iothub/registry-twin.js';
import { parseModuleConnectionString } from '../../modules/common/index.js';

describe('IdentityRegistry', () => {
  let stateDir: string;
  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'edgeperf-reg-'));
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('creates module identities with 32-byte keys and the exact connection string form', () => {
    const reg = new IdentityRegistry({ stateDir });
    reg.open();
    expect(reg.hubHostName).toBe('edgeperf-local.azure-devices.net');
    const rec = reg.ensure({ deviceId: 'dev1', moduleId: 'translator' });
    expect(Buffer.from(rec.primaryKey, 'base64')).toHaveLength(32);
    expect(rec.primaryKey).not.toBe(rec.secondaryKey);
    expect(reg.get({ deviceId: 'dev1' })).toBeDefined(); // the device came with it
    const cs = reg.connectionString('dev1', 'translator', 'localhost');
    expect(cs).toBe(
      `HostName=edgeperf-local.azure-devices.net;DeviceId=dev1;ModuleId=translator;SharedAccessKey=${rec.primaryKey};GatewayHostName=localhost`,
    );
    expect(parseModuleConnectionString(cs).moduleId).toBe('translator');
    expect(reg.serviceConnectionString()).toMatch(
      /^HostName=edgeperf-local\.azure-devices\.net;SharedAccessKeyName=iothubowner;SharedAccessKey=[A-Za-z0-9+/]{43}=$/,
    );
  });

  it('keeps keys, twins and the service key across restarts', async () => {
    const a = new IdentityRegistry({ stateDir, hubHostName: 'hub.example' });
    a.open();
    const rec = a.ensure({ deviceId: 'd', moduleId: 'm' });
    a.patchReported({ deviceId: 'd', moduleId: 'm' }, { r: 1 });
    a.patchDesired({ deviceId: 'd', moduleId: 'm' }, { x: 1 });
    const b = new IdentityRegistry({ stateDir });
    b.open();
    expect(b.hubHostName).toBe('hub.example');
    expect(b.serviceKey).toBe(a.serviceKey);
    expect(b.ensure({ deviceId: 'd', moduleId: 'm' }).primaryKey).toBe(rec.primaryKey);
    expect(b.getTwin({ deviceId: 'd', moduleId: 'm' })).toEqual({
      desired: { x: 1, $version: 2 },
      reported: { r: 1, $version: 2 },
    });
    const text = await readFile(join(stateDir, 'registry.json'), 'utf8');
    expect(JSON.parse(text).version).toBe(1);
  });

  it('merge-patches twins: objects merge, null deletes, $-keys are ignored, versions bump', () => {
    const reg = new IdentityRegistry();
    reg.open();
    const id = { deviceId: 'd', moduleId: 'm' };
    reg.ensure(id);
    reg.patchDesired(id, { batch: { max: 10, wait: 5 }, keep: true });
    const update = reg.patchDesired(id, { batch: { wait: null }, keep: null, $version: 99 });
    expect(update).toEqual({ version: 3, patch: { batch: { wait: null }, keep: null, $version: 3 } });
    expect(reg.getTwin(id).desired).toEqual({ batch: { max: 10 }, $version: 3 });
    const replaced = reg.replaceDesired(id, { other: 1 });
    expect(replaced.patch).toEqual({ batch: null, other: 1, $version: 4 });
    expect(reg.getTwin(id).desired).toEqual({ other: 1, $version: 4 });
  });

  it('rejects bad ids, non-object patches and unknown identities with named errors', () => {
    const reg = new IdentityRegistry();
    reg.open();
    expect(() => reg.ensure({ deviceId: 'a b' })).toThrow(/deviceId "a b" is not allowed/);
    expect(() => reg.connectionString('nope', 'm')).toThrow(/not registered/);
    reg.ensure({ deviceId: 'd', moduleId: '$edgeHub' });
    expect(() => reg.patchReported({ deviceId: 'd', moduleId: '$edgeHub' }, [1])).toThrow(/JSON object/);
  });

  it('mergePatch does not change its inputs', () => {
    const target = { a: { b: 1 } };
    const out = mergePatch(target, { a: { c: 2 } });
    expect(out).toEqual({ a: { b: 1, c: 2 } });
    expect(target).toEqual({ a: { b: 1 } });
  });
});
