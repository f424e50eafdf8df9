import { describe, expect, it } from 'vitest';
import type { EdgeMessage, SystemProperties } from '../../emulator/edgehub/message.js';
import {
  DEFAULT_ROUTE_PRIORITY,
  parseRoute,
  parseRoutes,
  RouteError,
  routeMatches,
  routeMessage,
} from '../../emulator/edgehub/routes/index.js';
import { ConfigError } from '../../modules/common/index.js';

function msg(
  opts: {
    module?: string;
    output?: string;
    device?: string;
    props?: Record<string, string>;
    body?: string | Buffer;
    system?: Partial<SystemProperties>;
  } = {},
): EdgeMessage {
  const system: SystemProperties = {
    connectionDeviceId: opts.device ?? 'edge1',
    receivedAtMs: 0,
    ...(opts.module !== undefined ? { connectionModuleId: opts.module } : {}),
    ...(opts.output !== undefined ? { outputName: opts.output } : {}),
    ...opts.system,
  };
  const body = Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body ?? '{}');
  return { id: 'm1', body, properties: opts.props ?? {}, system };
}

function errorOf(fn: () => unknown): RouteError {
  try {
    fn();
  } catch (err) {
    if (err instanceof RouteError) return err;
    throw err;
  }
  throw new Error('expected a RouteError');
}

describe('route parsing', () => {
  it('parses the minimal form and the SELECT * form', () => {
    const a = parseRoute('r', 'FROM /messages/* INTO $upstream');
    expect(a.sourcePrefix).toBe('/messages/');
    expect(a.sink).toEqual({ kind: 'upstream', endpointId: 'iothub' });
    expect(a.priority).toBe(DEFAULT_ROUTE_PRIORITY);
    const b = parseRoute('r', 'select * from /messages/modules/translator/outputs/output1 into $UPSTREAM');
    expect(b.sourcePrefix).toBe('/messages/modules/translator/outputs/output1/');
  });

  it('parses a BrokeredEndpoint sink', () => {
    const r = parseRoute(
      'r',
      'FROM /messages/modules/a/outputs/* INTO BrokeredEndpoint("/modules/b/inputs/in1")',
    );
    expect(r.sink).toEqual({
      kind: 'module',
      endpointId: '/modules/b/inputs/in1',
      moduleId: 'b',
      input: 'in1',
    });
  });

  it('takes priority and TTL from the object form; TTL 0 means the global TTL', () => {
    const r = parseRoute('r', { route: 'FROM /messages/* INTO $upstream', priority: 0, timeToLiveSecs: 60 });
    expect(r.priority).toBe(0);
    expect(r.timeToLiveSecs).toBe(60);
    expect(
      parseRoute('r', { route: 'FROM /messages/* INTO $upstream', timeToLiveSecs: 0 }).timeToLiveSecs,
    ).toBeUndefined();
  });

  it.each([
    ['FROM /messages/* INTO', 'r1', 22, /sink/],
    ['FROM /messages/* $upstream', 'r2', 18, /WHERE' or 'INTO/],
    ['FROM /messages/* INTO $downstream', 'r3', 23, /unknown sink/],
    ['FROM /messages/* WHERE a = INTO $upstream', 'r4', 28, /expected a value/],
    ['FROM /messages/* WHERE (a = 1 INTO $upstream', 'r5', 31, /expected '\)'/],
    ["FROM /messages/* WHERE a = 'x INTO $upstream", 'r6', 28, /unterminated/],
    ['FROM /messages/* WHERE $bogus = 1 INTO $upstream', 'r7', 24, /unknown system property/],
    ['FROM /messages/* WHERE FOO(a) INTO $upstream', 'r8', 24, /unknown function/],
    ['FROM /devices/x INTO $upstream', 'r9', 6, /unsupported source/],
    ['SELECT a FROM /messages INTO $upstream', 'r10', 8, /SELECT \*/],
    ['/messages/* INTO $upstream', 'r11', 1, /FROM/],
    ['FROM /messages/* INTO BrokeredEndpoint("/modules/b/outputs/x")', 'r12', 41, /inputs/],
    ['FROM /messages/* WHERE a = 1 b = 2 INTO $upstream', 'r13', 30, /unexpected/],
    ['FROM /messages/* WHERE a # 1 INTO $upstream', 'r14', 26, /unexpected character/],
    ['FROM /messages/* WHERE INTO $upstream', 'r15', 24, /needs a condition/],
    ['FROM /messages/* WHERE IS_DEFINED(a, b) INTO $upstream', 'r16', 24, /takes 1 argument/],
  ])('rejects %s at the right position', (text, name, position, pattern) => {
    const err = errorOf(() => parseRoute(name, text));
    expect(err.routeName).toBe(name);
    expect(err.position).toBe(position);
    expect(err.message).toMatch(pattern);
    expect(err.message).toContain(`"${name}" at position ${position}`);
    expect(err.exitCode).toBe(2);
  });

  it('parseRoutes: one bad route → RouteError; several → ConfigError listing each', () => {
    expect(() =>
      parseRoutes({ ok: 'FROM /messages/* INTO $upstream', bad: 'FROM /x INTO $upstream' }),
    ).toThrow(RouteError);
    try {
      parseRoutes({ a: 'FROM /x INTO $upstream', b: 'FROM /messages INTO nowhere' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues.map((i) => i.field)).toEqual(['routes.a', 'routes.b']);
    }
  });
});

describe('FROM matching', () => {
  const cases: [string, EdgeMessage, boolean][] = [
    ['/messages/*', msg({ module: 'a', output: 'o' }), true],
    ['/messages', msg({ module: 'a' }), true],
    ['/messages', msg(), true],
    ['/*', msg({ module: 'a', output: 'o' }), true],
    ['/messages/modules/*', msg(), false],
    ['/messages/modules/*', msg({ module: 'a' }), true],
    ['/messages/modules/a', msg({ module: 'a', output: 'o' }), true],
    ['/messages/modules/a', msg({ module: 'ab', output: 'o' }), false],
    ['/messages/modules/A/outputs/O1', msg({ module: 'a', output: 'o1' }), true],
    ['/messages/modules/a/outputs/o1', msg({ module: 'a', output: 'o10' }), false],
    ['/messages/modules/a/outputs/*', msg({ module: 'a', output: 'x' }), true],
    ['/messages/modules/a/outputs/*', msg({ module: 'a' }), false],
    ['/messages/modules/a/outputs/o1/', msg({ module: 'a', output: 'o1' }), true],
  ];
  it.each(cases)('FROM %s', (from, message, expected) => {
    expect(routeMatches(parseRoute('r', `FROM ${from} INTO $upstream`), message)).toBe(expected);
  });
});

describe('WHERE evaluation', () => {
  const json = (body: unknown, encoding = 'utf-8') =>
    msg({
      module: 'a',
      body: JSON.stringify(body),
      system: { contentType: 'application/json', contentEncoding: encoding },
    });
  const cases: [string, EdgeMessage, boolean][] = [
    ["kind = 'alarm'", msg({ props: { kind: 'alarm' } }), true],
    ["kind = 'alarm'", msg({ props: { kind: 'info' } }), false],
    ["kind != 'alarm'", msg({ props: { kind: 'info' } }), true],
    ["kind <> 'alarm'", msg({ props: { kind: 'alarm' } }), false],
    ["kind != 'alarm'", msg(), false],
    ["NOT (kind = 'alarm')", msg(), false],
    ["NOT (kind = 'alarm')", msg({ props: { kind: 'info' } }), true],
    ["kind = 'a' OR kind = 'b'", msg({ props: { kind: 'b' } }), true],
    ["kind = 'a' AND level = 'x'", msg({ props: { kind: 'a', level: 'x' } }), true],
    ["kind = 'a' AND level = 'x'", msg({ props: { kind: 'a' } }), false],
    ["missing = 'x' OR kind = 'a'", msg({ props: { kind: 'a' } }), true],
    ["kind = 'a' && NOT level = 'y' || x = 'z'", msg({ props: { kind: 'a', level: 'q' } }), true],
    ['IS_DEFINED(kind)', msg({ props: { kind: '' } }), true],
    ['IS_DEFINED(kind)', msg(), false],
    ['NOT IS_DEFINED($connectionModuleId)', msg(), true],
    ['NOT IS_DEFINED($connectionModuleId)', msg({ module: 'a' }), false],
    ["$connectionModuleId = 'translator'", msg({ module: 'translator' }), true],
    ["$connectionDeviceId = 'edge1'", msg({ module: 'x' }), true],
    ["$outputName = 'o1'", msg({ module: 'x', output: 'o1' }), true],
    ["$contentType = 'application/json'", msg({ system: { contentType: 'application/json' } }), true],
    ["$messageId = 'abc'", msg({ system: { messageId: 'abc' } }), true],
    ["CONTAINS(kind, 'larm')", msg({ props: { kind: 'alarm' } }), true],
    ["STARTS_WITH(kind, 'al')", msg({ props: { kind: 'alarm' } }), true],
    ["STARTS_WITH(kind, 'zz')", msg({ props: { kind: 'alarm' } }), false],
    ["UPPER(kind) = 'ALARM'", msg({ props: { kind: 'alarm' } }), true],
    ["kind < 'b'", msg({ props: { kind: 'a' } }), true],
    ["kind >= 'b'", msg({ props: { kind: 'a' } }), false],
    // Application properties are strings: no implicit number conversion.
    ['level > 5', msg({ props: { level: '7' } }), false],
    ["level = '7'", msg({ props: { level: '7' } }), true],
    ['$body.temperature > 30', json({ temperature: 31 }), true],
    ['$body.temperature > 30', json({ temperature: 29.5 }), false],
    ['$body.temperature <= 30', json({ temperature: 30 }), true],
    ['$body.machine.on = true', json({ machine: { on: true } }), true],
    ["$body.machine.name = 'press'", json({ machine: { name: 'press' } }), true],
    ['$body.x = -2', json({ x: -2 }), true],
    ['$body.x = 1.5e3', json({ x: 1500 }), true],
    ['$body.missing = 1', json({ x: 1 }), false],
    ['IS_DEFINED($body.x)', json({ x: null }), true],
    ['IS_NULL($body.x)', json({ x: null }), true],
    // $body needs application/json and a known encoding.
    ['$body.temperature > 30', msg({ body: '{"temperature":31}' }), false],
    [
      '$body.temperature > 30',
      msg({ body: '{"temperature":31}', system: { contentType: 'application/json' } }),
      false,
    ],
    [
      '$body.t = 1',
      msg({
        body: Buffer.from('{"t":1}', 'utf16le'),
        system: { contentType: 'application/json', contentEncoding: 'utf-16' },
      }),
      true,
    ],
    ['$body.t = 1', json('not an object'), false],
    ['kind = "alarm"', msg({ props: { kind: 'alarm' } }), true],
    ["kind = 'it''s'", msg({ props: { kind: "it's" } }), true],
    ['true', msg(), true],
    ['false OR true', msg(), true],
  ];
  it.each(cases)('WHERE %s', (where, message, expected) => {
    const route = parseRoute('r', `FROM /messages/* WHERE ${where} INTO $upstream`);
    expect(routeMatches(route, message)).toBe(expected);
  });

  it('does not choke on a body that is not JSON', () => {
    const route = parseRoute('r', 'FROM /messages/* WHERE $body.a = 1 INTO $upstream');
    const m = msg({
      body: 'not json{',
      system: { contentType: 'application/json', contentEncoding: 'utf-8' },
    });
    expect(routeMatches(route, m)).toBe(false);
  });
});

describe('routeMessage', () => {
  it('returns one target per endpoint; the highest priority route wins', () => {
    const routes = parseRoutes({
      low: 'FROM /messages/* INTO $upstream',
      high: "FROM /messages/* WHERE kind = 'alarm' INTO $upstream",
      toB: 'FROM /messages/modules/a/* INTO BrokeredEndpoint("/modules/b/inputs/in")',
    }).map((r) => (r.name === 'high' ? { ...r, priority: 0, timeToLiveSecs: 5 } : r));
    const targets = routeMessage(routes, msg({ module: 'a', output: 'o', props: { kind: 'alarm' } }));
    expect(targets).toHaveLength(2);
    const up = targets.find((t) => t.sink.kind === 'upstream');
    expect(up?.priority).toBe(0);
    expect(up?.timeToLiveSecs).toBe(5);
    expect(up?.routeNames).toEqual(['low', 'high']);
    expect(routeMessage(routes, msg({ module: 'z', props: { kind: 'info' } }))).toHaveLength(1);
    expect(routeMessage(parseRoutes({ r: 'FROM /messages/modules/q/* INTO $upstream' }), msg())).toEqual([]);
  });
});
