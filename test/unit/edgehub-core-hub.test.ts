import { describe, expect, it } from 'vitest';
import type { MethodResult, ModuleLink } from '../../emulator/edgehub/contracts.js';
import { EdgeHubCore } from '../../emulator/edgehub/core.js';
import type { EdgeMessage, Identity } from '../../emulator/edgehub/message.js';
import { IdentityRegistry } from '../../emulator/iothub/registry.js';
import { createSasToken } from '../../modules/common/index.js';

const NOW = 1_800_000_000_000;
const T = { deviceId: 'edge', moduleId: 'translator' };

function setup() {
  const registry = new IdentityRegistry({ hubHostName: 'hub.local' });
  registry.open();
  const rec = registry.ensure(T);
  registry.ensure({ deviceId: 'edge', moduleId: 'other' });
  const accepted: EdgeMessage[] = [];
  const core = new EdgeHubCore({
    registry,
    intake: { accept: async (m) => void accepted.push(m) },
    gatewayHostName: 'localhost',
    edgeDeviceId: 'edge',
    now: () => NOW,
  });
  const token = (resource: string, key = rec.primaryKey, expiry = NOW / 1000 + 60) =>
    createSasToken(resource, key, expiry);
  return { registry, core, accepted, token, key: rec.primaryKey };
}

class FakeLink implements ModuleLink {
  readonly protocol = 'mqtt' as const;
  acceptsInputs = true;
  acceptsMethods = true;
  closed: string[] = [];
  delivered: string[] = [];
  patches: Record<string, unknown>[] = [];
  async deliverInput(input: string, message: EdgeMessage): Promise<void> {
    this.delivered.push(`${input}:${message.body.toString()}`);
  }
  async invokeMethod(name: string, payload: unknown): Promise<MethodResult> {
    return { status: 200, payload: { name, payload } };
  }
  sendDesiredPatch(patch: Record<string, unknown>): void {
    this.patches.push(patch);
  }
  close(reason: string): void {
    this.closed.push(reason);
  }
}

describe('EdgeHubCore.authenticate', () => {
  it('accepts the hub-host form the SDK signs and the gateway form', () => {
    const { core, token } = setup();
    expect(core.authenticate(T, token('hub.local/devices/edge/modules/translator'))).toEqual({ ok: true });
    expect(core.authenticate(T, token('localhost/devices/edge/modules/translator'))).toEqual({ ok: true });
  });

  it("refuses a wrong key, an expired token, another module's token and garbage, saying why", () => {
    const { core, token } = setup();
    const wrongKey = Buffer.alloc(32, 1).toString('base64');
    const verdict = (t: string) => core.authenticate(T, t);
    expect(verdict(token('hub.local/devices/edge/modules/translator', wrongKey))).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
    expect(verdict(token('hub.local/devices/edge/modules/translator', undefined, NOW / 1000 - 1))).toEqual({
      ok: false,
      reason: 'expired',
    });
    expect(verdict(token('hub.local/devices/edge/modules/other'))).toEqual({
      ok: false,
      reason: 'wrong-resource',
    });
    expect(verdict('garbage')).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses an unknown identity', () => {
    const { core, token } = setup();
    expect(
      core.authenticate(
        { deviceId: 'edge', moduleId: 'ghost' },
        token('hub.local/devices/edge/modules/ghost'),
      ),
    ).toEqual({
      ok: false,
      reason: 'unknown-identity',
    });
  });

  it('accepts the secondary key too', () => {
    const { core, registry } = setup();
    const secondary = registry.get(T)?.secondaryKey ?? '';
    const tok = createSasToken('hub.local/devices/edge/modules/translator', secondary, NOW / 1000 + 60);
    expect(core.authenticate(T, tok)).toEqual({ ok: true });
  });
});

describe('EdgeHubCore message flow', () => {
  it('stamps id, sender identity and receive time; never trusts the sender for them', async () => {
    const { core, accepted } = setup();
    await core.receive(T, { body: Buffer.from('a'), properties: { p: '1' }, system: { outputName: 'o1' } });
    await core.receive(T, { body: Buffer.from('b'), properties: {}, system: {} });
    expect(accepted[0]?.system).toEqual({
      outputName: 'o1',
      connectionDeviceId: 'edge',
      connectionModuleId: 'translator',
      receivedAtMs: NOW,
    });
    expect(accepted[0]?.id).not.toBe(accepted[1]?.id);
    expect((accepted[0]?.id ?? '') < (accepted[1]?.id ?? '')).toBe(true);
  });

  it('refuses messages over 256 KiB and passes intake rejections through', async () => {
    const { registry } = setup();
    const core = new EdgeHubCore({
      registry,
      intake: { accept: async () => Promise.reject(new Error('full')) },
    });
    await expect(
      core.receive(T, { body: Buffer.alloc(256 * 1024 + 1), properties: {}, system: {} }),
    ).rejects.toMatchObject({ code: 'E_MESSAGE_TOO_LARGE', status: 413 });
    await expect(core.receive(T, { body: Buffer.from('x'), properties: {}, system: {} })).rejects.toThrow(
      'full',
    );
  });

  it('a new link replaces the old one: closes it, emits events, old detach is harmless', async () => {
    const { core } = setup();
    const events: string[] = [];
    core.on('connected', (id: Identity) => events.push(`+${id.moduleId}`));
    core.on('disconnected', (id: Identity, _p, reason) => events.push(`-${id.moduleId}:${reason}`));
    const first = new FakeLink();
    const detachFirst = core.attach(T, first);
    const second = new FakeLink();
    const detachSecond = core.attach(T, second);
    expect(first.closed).toHaveLength(1);
    detachFirst();
    expect(core.isConnected(T)).toBe(true);
    await core.deliver('translator', 'in1', msg('x'));
    expect(second.delivered).toEqual(['in1:x']);
    expect(first.delivered).toEqual([]);
    detachSecond();
    expect(core.isConnected(T)).toBe(false);
    expect(events).toEqual(['+translator', '-translator:replaced', '+translator', '-translator:closed']);
  });

  it('deliver rejects when not connected or not listening; methods likewise', async () => {
    const { core } = setup();
    await expect(core.deliver('translator', 'in', msg('x'))).rejects.toMatchObject({
      code: 'E_MODULE_NOT_CONNECTED',
    });
    const link = new FakeLink();
    link.acceptsInputs = false;
    link.acceptsMethods = false;
    core.attach(T, link);
    await expect(core.deliver('translator', 'in', msg('x'))).rejects.toMatchObject({
      code: 'E_MODULE_NOT_LISTENING',
    });
    await expect(core.invokeMethod(T, 'm', {}, 100)).rejects.toMatchObject({ status: 404 });
    link.acceptsMethods = true;
    expect(await core.invokeMethod(T, 'm', { a: 1 }, 100)).toEqual({
      status: 200,
      payload: { name: 'm', payload: { a: 1 } },
    });
  });

  it('updateDesired persists, bumps the version and pushes the patch when connected', () => {
    const { core, registry } = setup();
    expect(core.updateDesired(T, { a: 1 })).toBe(2); // not connected: stored only
    const link = new FakeLink();
    core.attach(T, link);
    expect(core.updateDesired(T, { a: null, b: 2 })).toBe(3);
    expect(link.patches).toEqual([{ a: null, b: 2, $version: 3 }]);
    expect(registry.getTwin(T).desired).toEqual({ b: 2, $version: 3 });
    expect(core.patchReported(T, { r: true })).toBe(2);
    expect(core.getTwin(T).reported).toEqual({ r: true, $version: 2 });
  });
});

function msg(body: string): EdgeMessage {
  return {
    id: 'i',
    body: Buffer.from(body),
    properties: {},
    system: { connectionDeviceId: 'edge', receivedAtMs: 0 },
  };
}
