import { spawnSync } from 'node:child_process';
import { type Command, CommanderError } from 'commander';
import fc from 'fast-check';
import mqtt from 'mqtt';
import sparkplugPayload from 'sparkplug-payload';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDeployment } from '../../emulator/agent/manifest.js';
import { parseRoute, RouteError } from '../../emulator/edgehub/routes/index.js';
import { ConfigError, EdgePerfError } from '../../modules/common/index.js';
import { TranslatorConfig } from '../../modules/translator/config/index.js';
import { createDecoder, DEAD_LETTER_REASONS } from '../../modules/translator/decoders/index.js';
import {
  DEAD_LETTER_REASON_PROPERTY,
  DEAD_LETTER_TOPIC_PROPERTY,
  Pipeline,
} from '../../modules/translator/pipeline.js';
import type { UpstreamMessage, UpstreamTransport } from '../../modules/translator/upstream-transport.js';
import { generateManifest, lintManifest } from '../../perf-cli/manifest/index.js';
import { buildProgram } from '../../perf-cli/program.js';
import { EDGEPERF, type Figures, figures, recordFigures } from './faults-helpers.js';

// Bad input, property-based. One fixed seed for the file (FAULTS_SEED overrides it); fast-check
// prints the seed and the counterexample path on failure, and every assertion message repeats it.
const SEED = Number(process.env.FAULTS_SEED ?? 20_261_122);
const RUNS = Number(process.env.FAULTS_RUNS ?? 1000);
const params = (salt: number) => ({ seed: SEED + salt, numRuns: RUNS, endOnFailure: true });
const rows: Figures[] = [];
afterAll(() => recordFigures('bad-input', rows));

const spOrNull = sparkplugPayload.get('spBv1.0');
if (spOrNull === null) throw new Error('sparkplug-payload has no spBv1.0 codec');
const sp = spOrNull;
const REASONS = new Set<string>(DEAD_LETTER_REASONS);

type Kind =
  | 'malformed-json'
  | 'truncated-json'
  | 'binary'
  | 'empty'
  | 'huge'
  | 'deep'
  | 'wrong-types'
  | 'sparkplug-garbage'
  | 'sparkplug-truncated';
interface BadCase {
  readonly kind: Kind;
  readonly sparkplug: boolean;
  readonly payload: Buffer;
}

const validSparkplug = fc
  .record({
    seq: fc.integer({ min: 0, max: 255 }),
    value: fc.double({ noNaN: true }),
    name: fc.string({ minLength: 1, maxLength: 20 }),
  })
  .map(({ seq, value, name }) =>
    Buffer.from(
      sp.encodePayload({ timestamp: 1_732_000_000_000, seq, metrics: [{ name, type: 'Double', value }] }),
    ),
  );

const notJson = (s: string) => {
  try {
    JSON.parse(s);
    return false;
  } catch {
    return true;
  }
};

/** Every kind of bad payload the issue names. */
const badCase: fc.Arbitrary<BadCase> = fc.oneof(
  fc
    .string({ maxLength: 200 })
    .filter(notJson)
    .map((s) => ({ kind: 'malformed-json' as const, sparkplug: false, payload: Buffer.from(s) })),
  fc
    .jsonValue()
    .map((v) => JSON.stringify({ v }))
    .chain((s) => fc.integer({ min: 0, max: Math.max(0, s.length - 1) }).map((n) => s.slice(0, n)))
    .filter(notJson)
    .map((s) => ({ kind: 'truncated-json' as const, sparkplug: false, payload: Buffer.from(s) })),
  fc
    .uint8Array({ minLength: 1, maxLength: 300 })
    .map((b) => ({ kind: 'binary' as const, sparkplug: false, payload: Buffer.from(b) })),
  fc.constant({ kind: 'empty' as const, sparkplug: false, payload: Buffer.alloc(0) }),
  fc
    .record({ size: fc.integer({ min: 262_144, max: 400_000 }), valid: fc.boolean() })
    .map(({ size, valid }) => ({
      kind: 'huge' as const,
      sparkplug: false,
      payload: Buffer.from(valid ? JSON.stringify({ v: 'x'.repeat(size) }) : `{"v":"${'x'.repeat(size)}`),
    })),
  fc.record({ depth: fc.integer({ min: 100, max: 120_000 }), obj: fc.boolean() }).map(({ depth, obj }) => ({
    kind: 'deep' as const,
    sparkplug: false,
    payload: Buffer.from(
      obj ? `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}` : `${'['.repeat(depth)}${']'.repeat(depth)}`,
    ),
  })),
  fc.oneof(fc.jsonValue(), fc.record({ perf: fc.jsonValue(), ts: fc.jsonValue() })).map((v) => ({
    kind: 'wrong-types' as const,
    sparkplug: false,
    payload: Buffer.from(JSON.stringify(v) ?? 'null'),
  })),
  fc
    .uint8Array({ minLength: 0, maxLength: 300 })
    .map((b) => ({ kind: 'sparkplug-garbage' as const, sparkplug: true, payload: Buffer.from(b) })),
  validSparkplug
    .chain((buf) => fc.integer({ min: 1, max: Math.max(1, buf.length - 1) }).map((n) => buf.subarray(0, n)))
    .map((b) => ({ kind: 'sparkplug-truncated' as const, sparkplug: true, payload: Buffer.from(b) })),
);

/** An upstream transport that acks at once and keeps what it got. */
class KeepingTransport implements UpstreamTransport {
  readonly name = 'raw-mqtt' as const;
  readonly sent: { output: string; message: UpstreamMessage }[] = [];
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  async send(output: string, message: UpstreamMessage): Promise<void> {
    // A copy, as the wire takes one: the batcher reuses an acknowledged body.
    this.sent.push({ output, message: { ...message, body: Buffer.from(message.body) } });
  }
}

async function until(pred: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (seed ${SEED})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('translator payloads', () => {
  it(`decoders never throw; a rejection names a dead-letter reason (${RUNS} cases per decoder, seed ${SEED})`, () => {
    const json = createDecoder({ format: 'json' });
    const spark = createDecoder({ format: 'sparkplug' });
    const byKind = new Map<string, number>();
    fc.assert(
      fc.property(badCase, (c) => {
        const decode = c.sparkplug ? spark : json;
        const r = decode(c.sparkplug ? 'spBv1.0/g/DDATA/n/d' : 'field/a', c.payload, 1);
        const outcome = r.ok ? 'accepted' : r.reason;
        byKind.set(`${c.kind}:${outcome}`, (byKind.get(`${c.kind}:${outcome}`) ?? 0) + 1);
        if (!r.ok) {
          expect(REASONS.has(r.reason)).toBe(true);
          expect(r.detail.length).toBeGreaterThan(0);
        } else {
          // Only well-formed input may be accepted: valid JSON of any type, or a decodable Sparkplug payload.
          expect(['wrong-types', 'huge', 'deep', 'sparkplug-truncated', 'sparkplug-garbage']).toContain(
            c.kind,
          );
        }
      }),
      params(1),
    );
    rows.push(
      figures('payloads: decoder (json+sparkplug)', {
        cases: RUNS,
        note: [...byKind.entries()].map(([k, n]) => `${k}=${n}`).join(' '),
      }),
    );
  });

  it(`through the pipeline and its embedded broker: each bad message goes to deadletter with a reason, the stream continues (seed ${SEED})`, async () => {
    const cases = fc.sample(badCase, { seed: SEED + 2, numRuns: RUNS });
    const transport = new KeepingTransport();
    const common = { batch: { maxMessages: 50, maxWaitTimeInMs: 5 }, logger: undefined };
    const jsonPipe = new Pipeline(
      { ...common, source: { topics: ['field/#'], clientId: 'faults-json' }, embeddedBroker: { port: 0 } },
      transport,
    );
    const sparkPipe = new Pipeline(
      {
        ...common,
        source: { topics: ['spBv1.0/#'], clientId: 'faults-spark' },
        embeddedBroker: { port: 0 },
        decoder: { format: 'sparkplug' },
      },
      transport,
    );
    await jsonPipe.start();
    await sparkPipe.start();
    const jsonPub = await mqtt.connectAsync(jsonPipe.embeddedBrokerUrl as string, {
      clientId: 'faults-pub-j',
    });
    const sparkPub = await mqtt.connectAsync(sparkPipe.embeddedBrokerUrl as string, {
      clientId: 'faults-pub-s',
    });
    try {
      for (let i = 0; i < cases.length; i++) {
        const c = cases[i] as BadCase;
        if (c.sparkplug) await sparkPub.publishAsync(`spBv1.0/g/DDATA/n/case${i}`, c.payload, { qos: 1 });
        else await jsonPub.publishAsync(`field/case/${i}`, c.payload, { qos: 1 });
        // A good message after every tenth bad one: it must still get through.
        if (i % 10 === 9)
          await jsonPub.publishAsync(
            `field/good/${i}`,
            JSON.stringify({ perf: { sid: 'good', burst: 1, seq: i, ts: Date.now() } }),
            { qos: 1 },
          );
      }
      const goods = Math.floor(cases.length / 10);
      await until(
        () => jsonPipe.stats().received + sparkPipe.stats().received === cases.length + goods,
        'every message read',
        60_000,
      );
      await jsonPipe.flush();
      await sparkPipe.flush();
      await until(
        () => jsonPipe.stats().source.unacked + sparkPipe.stats().source.unacked === 0,
        'every message settled',
        30_000,
      );

      // Account for each case by its topic: a dead letter (with a known reason), records upstream, or ignored.
      const dead = new Map<string, string>();
      const upstreamTopics = new Set<string>();
      for (const s of transport.sent) {
        if (s.output === 'deadletter') {
          dead.set(
            String(s.message.properties[DEAD_LETTER_TOPIC_PROPERTY]),
            String(s.message.properties[DEAD_LETTER_REASON_PROPERTY]),
          );
        } else {
          const text = s.message.body.toString('utf8');
          for (const m of text.matchAll(/"topic":"([^"]+)"/g)) upstreamTopics.add(m[1] as string);
        }
      }
      let deadLettered = 0;
      let accepted = 0;
      for (let i = 0; i < cases.length; i++) {
        const c = cases[i] as BadCase;
        const topic = c.sparkplug ? `spBv1.0/g/DDATA/n/case${i}` : `field/case/${i}`;
        const reason = dead.get(topic);
        if (reason !== undefined) {
          expect(REASONS.has(reason), `case ${i} (${c.kind}) reason ${reason}; seed ${SEED}`).toBe(true);
          deadLettered++;
        } else if (upstreamTopics.has(topic)) {
          accepted++;
        } else {
          // Decoded to no records (an empty JSON array): acknowledged and counted as ignored.
          expect(c.kind, `case ${i} (${c.kind}) vanished; seed ${SEED}`).toMatch(/wrong-types|sparkplug/);
        }
        if (c.kind === 'malformed-json' || c.kind === 'truncated-json' || c.kind === 'empty') {
          expect(reason, `case ${i} (${c.kind}); seed ${SEED}`).toBe('malformed-json');
        }
        if (c.kind === 'huge')
          expect(reason, `case ${i} (huge); seed ${SEED}`).toMatch(/malformed-json|record-too-large/);
      }
      for (let i = 9; i < cases.length; i += 10)
        expect(upstreamTopics.has(`field/good/${i}`), `good message ${i}; seed ${SEED}`).toBe(true);
      expect(jsonPipe.state.kind).toBe('running');
      expect(sparkPipe.state.kind).toBe('running');
      rows.push(
        figures('payloads: pipeline end to end', {
          cases: cases.length,
          sent: cases.length + goods,
          delivered: accepted + goods,
          note: `${deadLettered} to deadletter with a reason, ${accepted} bad-but-well-formed accepted as records, ${goods} good messages interleaved all delivered`,
        }),
      );
    } finally {
      await jsonPub.endAsync(true);
      await sparkPub.endAsync(true);
      await jsonPipe.stop({ flush: false, deadlineMs: 500 });
      await sparkPipe.stop({ flush: false, deadlineMs: 500 });
    }
  });
});

describe('configuration', () => {
  it(`route expressions: parseRoute throws nothing but RouteError with a position (seed ${SEED})`, () => {
    const fragments = [
      'FROM',
      'SELECT',
      '*',
      'WHERE',
      'INTO',
      '$upstream',
      'BrokeredEndpoint(',
      '"/modules/m/inputs/i"',
      ')',
      '/messages/modules/t/outputs/o',
      'AND',
      'OR',
      'NOT',
      '(',
      '=',
      '<>',
      "'x'",
      '3',
      'IS_DEFINED(',
      '$body.a',
      ',',
      ' ',
    ];
    const valid = [
      'FROM /messages/modules/translator/outputs/output1 INTO $upstream',
      'SELECT * FROM /messages/* WHERE $connectionModuleId = \'t\' AND NOT IS_DEFINED(a) INTO BrokeredEndpoint("/modules/m/inputs/i")',
      "FROM /messages/modules/t/* WHERE $body.temp > 30 OR level <> 'debug' INTO $upstream",
    ];
    // Valid routes with characters deleted, inserted or replaced: the errors a person makes.
    const mutated = fc
      .tuple(
        fc.constantFrom(...valid),
        fc.array(
          fc.tuple(fc.nat(), fc.constantFrom('del', 'ins', 'rep'), fc.string({ minLength: 1, maxLength: 2 })),
          { minLength: 0, maxLength: 3 },
        ),
      )
      .map(([text, edits]) =>
        edits.reduce((t, [at, op, ch]) => {
          const i = t.length === 0 ? 0 : at % t.length;
          return op === 'del'
            ? t.slice(0, i) + t.slice(i + 1)
            : op === 'ins'
              ? t.slice(0, i) + ch + t.slice(i)
              : t.slice(0, i) + ch + t.slice(i + 1);
        }, text),
      );
    const routeText = fc.oneof(
      mutated,
      mutated,
      fc.string({ maxLength: 120 }),
      fc.array(fc.constantFrom(...fragments), { maxLength: 16 }).map((a) => a.join(' ')),
      fc.array(fc.constantFrom(...fragments), { maxLength: 16 }).map((a) => a.join('')),
    );
    let ok = 0;
    let refused = 0;
    fc.assert(
      fc.property(routeText, (text) => {
        try {
          parseRoute('r1', text);
          ok++;
        } catch (err) {
          expect(err, `route ${JSON.stringify(text)}; seed ${SEED}`).toBeInstanceOf(RouteError);
          const e = err as RouteError;
          expect(e.routeName).toBe('r1');
          expect(e.position).toBeGreaterThanOrEqual(1);
          expect(e.position).toBeLessThanOrEqual(text.length + 1);
          expect(e.message).toMatch(/^invalid route "r1" at position \d+: /);
          refused++;
        }
      }),
      params(3),
    );
    rows.push(
      figures('routes', {
        cases: RUNS,
        note: `${refused} refused with RouteError and a position, ${ok} parsed`,
      }),
    );
  });

  it(`manifests: parseDeployment refuses with an error naming the field; lintManifest never throws (seed ${SEED})`, () => {
    const base = generateManifest({
      profile: 'high-rate',
      ratePerSec: 2000,
      payloadLength: 1024,
      target: 'local',
    });
    const paths: string[][] = [];
    const walk = (v: unknown, p: string[]) => {
      if (p.length > 0) paths.push(p);
      if (v !== null && typeof v === 'object' && p.length < 8)
        for (const [k, c] of Object.entries(v)) walk(c, [...p, k]);
    };
    walk(base, []);
    const mutation = fc.record({
      path: fc.constantFrom(...paths),
      value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)),
    });
    let refused = 0;
    let accepted = 0;
    fc.assert(
      fc.property(mutation, ({ path, value }) => {
        const m = structuredClone(base) as unknown as Record<string, unknown>;
        let o = m;
        for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
        const last = path.at(-1) as string;
        if (value === undefined) delete o[last];
        else o[last] = value;
        const lint = lintManifest(m);
        expect(Array.isArray(lint.findings)).toBe(true);
        try {
          parseDeployment(m);
          accepted++;
        } catch (err) {
          const where = `mutation ${path.join('.')}=${JSON.stringify(value)}; seed ${SEED}`;
          expect(err, where).toBeInstanceOf(EdgePerfError);
          const e = err as EdgePerfError;
          expect(e.exitCode, where).toBe(2);
          if (e instanceof ConfigError) {
            for (const i of e.issues) expect(i.field.length, where).toBeGreaterThan(0);
          }
          expect(e.message.split('\n').length, where).toBe(1);
          refused++;
        }
      }),
      params(4),
    );
    rows.push(
      figures('manifests', {
        cases: RUNS,
        note: `${refused} refused naming the field (exit 2), ${accepted} still valid; lint never threw`,
      }),
    );
  });

  it(`twin desired properties: rejected with a field name, the last good configuration kept (seed ${SEED})`, () => {
    const config = TranslatorConfig.fromEnv({});
    const good = config.applyDesiredPatch({ batch: { maxMessages: 123 } });
    expect(good.ok).toBe(true);
    const keys = [
      'source',
      'embeddedBroker',
      'decoder',
      'topicTemplate',
      'batch',
      'maxBufferedBytes',
      'overflow',
      'transport',
      'outputName',
      'metrics',
      'logLevel',
      'shutdownTimeoutInMs',
      'typo',
    ];
    const sub = [
      'url',
      'topics',
      'qos',
      'enabled',
      'port',
      'maxMessages',
      'maxBytes',
      'maxWaitTimeInMs',
      'encoding',
      'maxInFlightBatches',
      'nope',
    ];
    const patch = fc.dictionary(
      fc.constantFrom(...keys),
      fc.oneof(
        fc.jsonValue({ maxDepth: 1 }),
        fc.dictionary(fc.constantFrom(...sub), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
      ),
      { minKeys: 1, maxKeys: 3 },
    );
    let refused = 0;
    let applied = 0;
    fc.assert(
      fc.property(patch, (p) => {
        const before = JSON.stringify(config.settings);
        const r = config.applyDesiredPatch(p as Record<string, unknown>);
        if (r.ok) {
          applied++;
          // Go back to the known-good baseline so the next case starts from it.
          config.applyDesiredDocument({ batch: { maxMessages: 123 } });
          return;
        }
        refused++;
        const where = `patch ${JSON.stringify(p)}; seed ${SEED}`;
        expect(r.error, where).toBeInstanceOf(ConfigError);
        expect(r.error.issues.length, where).toBeGreaterThan(0);
        for (const i of r.error.issues) expect(i.field, where).toMatch(/^twin/);
        expect(JSON.stringify(config.settings), where).toBe(before);
        expect((config.reported().config as { status: string }).status).toBe('rejected');
      }),
      params(5),
    );
    rows.push(
      figures('twin desired', {
        cases: RUNS,
        note: `${refused} rejected naming the field with the last good config kept, ${applied} valid`,
      }),
    );
  });

  it(`CLI flags: one line naming the flag, exit 2 (seed ${SEED})`, async () => {
    const flags: { cmd: string; flag: string; valid: (v: string) => boolean }[] = [
      {
        cmd: 'local',
        flag: '--burst-length',
        valid: (v) => /^\d+$/.test(v.trim()) && Number(v) >= 1 && Number(v) <= 100_000_000,
      },
      {
        cmd: 'local',
        flag: '--payload-length',
        valid: (v) =>
          Number.isInteger(Number(v)) && v.trim() !== '' && Number(v) >= 100 && Number(v) <= 262_144,
      },
      {
        cmd: 'local',
        flag: '--target-rate',
        valid: (v) =>
          v.trim() !== '' && Number.isFinite(Number(v)) && Number(v) >= 0 && Number(v) <= 1_000_000,
      },
      { cmd: 'local', flag: '--hub-tier', valid: (v) => ['S1', 'S2', 'S3'].includes(v) },
      {
        cmd: 'local',
        flag: '--fault',
        valid: (v) => /^(kill-translator|kill-runtime):\d+(\.\d+)?$|^outage:\d+(\.\d+)?:\d+(\.\d+)?$/.test(v),
      },
      {
        cmd: 'manifest',
        flag: '--rate',
        valid: (v) =>
          v.trim() !== '' && Number.isFinite(Number(v)) && Number(v) >= 0.001 && Number(v) <= 1_000_000,
      },
      {
        cmd: 'manifest',
        flag: '--profile',
        valid: (v) => ['baseline', 'high-rate', 'offline-tolerant', 'multi-module'].includes(v),
      },
    ];
    const value = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.double().map(String),
      fc.integer().map(String),
      fc.constantFrom('', '-1', '0', '1e99', 'NaN', 'S4', 'outage:1', 'kill-runtime:x'),
    );
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...flags), value, async (f, v) => {
        fc.pre(!f.valid(v) && !v.startsWith('-'));
        cases++;
        let err = '';
        const program: Command = buildProgram();
        const apply = (c: Command): void => {
          c.exitOverride().configureOutput({ writeErr: (s) => (err += s), writeOut: () => undefined });
          for (const s of c.commands) apply(s);
        };
        apply(program);
        // A trailing invalid flag makes sure no action runs even if the oracle above were wrong.
        const tail = f.cmd === 'local' ? ['--burst-length', '0'] : ['--rate', '0'];
        const where = `${f.cmd} ${f.flag} ${JSON.stringify(v)}; seed ${SEED}`;
        await expect(
          program.parseAsync(['node', 'edgeperf', f.cmd, f.flag, v, ...tail]),
          where,
        ).rejects.toBeInstanceOf(CommanderError);
        const first = err.split('\n')[0] ?? '';
        expect(first, where).toContain(f.flag);
        expect(first, where).toMatch(/^error: /);
      }),
      { ...params(6), numRuns: RUNS },
    );
    // The real binary: exit 2 and the flag on the first line of stderr.
    for (const [cmd, flag, v] of [
      ['local', '--burst-length', 'lots'],
      ['local', '--fault', 'unplug:3'],
      ['manifest', '--rate', '-5'],
    ] as const) {
      const r = spawnSync(process.execPath, [EDGEPERF, cmd, flag, v], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status, `${cmd} ${flag} ${v}: ${r.stderr}`).toBe(2);
      expect(r.stderr.split('\n')[0]).toContain(flag);
      expect(r.stdout).toBe('');
      cases++;
    }
    rows.push(
      figures('CLI flags', {
        cases,
        note: 'each refused with the flag named on the first line; the real binary exits 2 (3 spawned cases)',
      }),
    );
  });
});
