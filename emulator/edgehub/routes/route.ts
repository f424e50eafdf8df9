import { ConfigError } from '../../../modules/common/index.js';
import type { EdgeMessage } from '../message.js';
import { type ConditionNode, evaluateCondition, parseCondition } from './condition.js';
import { RouteError, RouteSyntaxError } from './errors.js';

/**
 * edgeHub's lowest route priority: what a route without `priority` gets (edgeHub
 * `RouteFactory.DefaultPriority`), and the `priority` label its queue metrics carry.
 */
export const DEFAULT_ROUTE_PRIORITY = 2_000_000_000;

/** Endpoint id of IoT Hub (`$upstream`), as edgeHub's metrics name it. */
export const UPSTREAM_ENDPOINT_ID = 'iothub';

/** Where a route sends matching messages. */
export type RouteSink =
  | { readonly kind: 'upstream'; readonly endpointId: typeof UPSTREAM_ENDPOINT_ID }
  | {
      readonly kind: 'module';
      /** `/modules/{module}/inputs/{input}` — also the endpoint id. */
      readonly endpointId: string;
      readonly moduleId: string;
      readonly input: string;
    };

/** One parsed route. */
export interface Route {
  readonly name: string;
  /** Route text as written. */
  readonly text: string;
  /** Normalised FROM prefix: lower case, ends with `/` (`/messages/modules/m/outputs/o/`). */
  readonly sourcePrefix: string;
  readonly condition?: ConditionNode;
  readonly sink: RouteSink;
  /** 0 (highest) to 9, or {@link DEFAULT_ROUTE_PRIORITY}. */
  readonly priority: number;
  /** Route's own TTL in seconds; undefined (or 0 in a manifest) = `storeAndForwardConfiguration`. */
  readonly timeToLiveSecs?: number;
}

/** A route as the `$edgeHub` twin gives it: a string, or (schema 1.1+) an object. */
export type RouteSpec = string | { route: string; priority?: number; timeToLiveSecs?: number };

/** Normalises a FROM path the way edgeHub matches it: trailing `*` and `/` trimmed, `/` appended. */
export function normaliseSourcePath(path: string): string {
  return `${path.replace(/[*/]+$/, '').toLowerCase()}/`;
}

/** The source path of a message, normalised for prefix matching (edge-facts §4). */
export function messageSourcePath(message: EdgeMessage): string {
  const { connectionModuleId: m, outputName: o } = message.system;
  if (m === undefined) return '/messages/';
  return normaliseSourcePath(
    o === undefined ? `/messages/modules/${m}` : `/messages/modules/${m}/outputs/${o}`,
  );
}

/**
 * Parses one route. Grammar: `[SELECT *] FROM <path> [WHERE <condition>] INTO <sink>`, keywords
 * case-insensitive; sinks `$upstream` and `BrokeredEndpoint("/modules/{m}/inputs/{i}")`.
 * @throws RouteError naming the route and the 1-based character position of the problem.
 */
export function parseRoute(name: string, spec: RouteSpec): Route {
  const text = typeof spec === 'string' ? spec : spec.route;
  try {
    return parseRouteText(name, text, spec);
  } catch (err) {
    if (err instanceof RouteSyntaxError) throw new RouteError(name, err.offset + 1, err.message);
    throw err;
  }
}

function parseRouteText(name: string, text: string, spec: RouteSpec): Route {
  let i = 0;
  const skipWs = (): void => {
    while (i < text.length && /\s/.test(text.charAt(i))) i++;
  };
  const keyword = (kw: string): boolean => {
    skipWs();
    const word = text.slice(i, i + kw.length);
    const after = text.charAt(i + kw.length);
    if (word.toUpperCase() === kw && (after === '' || /\s/.test(after))) {
      i += kw.length;
      return true;
    }
    return false;
  };

  if (keyword('SELECT')) {
    skipWs();
    if (text.charAt(i) !== '*') throw new RouteSyntaxError(i, "only 'SELECT *' is supported");
    i++;
  }
  if (!keyword('FROM')) throw new RouteSyntaxError(i, "expected 'FROM'");
  skipWs();
  const pathStart = i;
  while (i < text.length && !/\s/.test(text.charAt(i))) i++;
  const path = text.slice(pathStart, i);
  if (path === '') throw new RouteSyntaxError(pathStart, 'expected a source path after FROM');
  if (!path.startsWith('/'))
    throw new RouteSyntaxError(pathStart, `source path must start with '/' (got '${path}')`);
  validateSourcePath(path, pathStart);

  let condition: ConditionNode | undefined;
  if (keyword('WHERE')) {
    const parsed = parseCondition(text, i, text.length, true);
    condition = parsed.node;
    i = parsed.stopOffset;
  }
  if (!keyword('INTO')) {
    skipWs();
    throw new RouteSyntaxError(
      i,
      i >= text.length ? "expected 'INTO' but the route ended" : "expected 'WHERE' or 'INTO'",
    );
  }
  skipWs();
  const sinkStart = i;
  const sinkText = text.slice(i).trimEnd();
  const sink = parseSink(sinkText, sinkStart);

  const route: { -readonly [K in keyof Route]: Route[K] } = {
    name,
    text,
    sourcePrefix: normaliseSourcePath(path),
    sink,
    priority: DEFAULT_ROUTE_PRIORITY,
  };
  if (condition !== undefined) route.condition = condition;
  if (typeof spec === 'object') {
    if (spec.priority !== undefined) route.priority = spec.priority;
    if (spec.timeToLiveSecs !== undefined && spec.timeToLiveSecs > 0)
      route.timeToLiveSecs = spec.timeToLiveSecs;
  }
  return route;
}

function validateSourcePath(path: string, at: number): void {
  const lower = path.replace(/[*/]+$/, '').toLowerCase();
  const ok =
    lower === '' ||
    lower === '/messages' ||
    lower === '/messages/modules' ||
    /^\/messages\/modules\/[^/]+$/.test(lower) ||
    /^\/messages\/modules\/[^/]+\/outputs$/.test(lower) ||
    /^\/messages\/modules\/[^/]+\/outputs\/[^/]+$/.test(lower) ||
    // edgeHub also accepts twin change notifications; they never carry telemetry here.
    lower === '/twinchangenotifications';
  if (!ok) {
    throw new RouteSyntaxError(
      at,
      `unsupported source '${path}' (allowed: /*, /messages, /messages/*, /messages/modules/{m}, /messages/modules/{m}/outputs/{o})`,
    );
  }
}

function parseSink(sinkText: string, at: number): RouteSink {
  if (sinkText.toLowerCase() === '$upstream') return { kind: 'upstream', endpointId: UPSTREAM_ENDPOINT_ID };
  const m = /^BrokeredEndpoint\s*\(\s*(["'])(.*)\1\s*\)$/i.exec(sinkText);
  if (!m) {
    throw new RouteSyntaxError(
      at,
      sinkText === ''
        ? 'expected a sink after INTO'
        : `unknown sink '${sinkText}' (allowed: $upstream, BrokeredEndpoint("/modules/{module}/inputs/{input}"))`,
    );
  }
  const target = m[2] ?? '';
  const t = /^\/modules\/([^/\s]+)\/inputs\/([^/\s]+)$/.exec(target);
  if (!t) {
    throw new RouteSyntaxError(
      at + sinkText.indexOf(target),
      `BrokeredEndpoint target must be "/modules/{module}/inputs/{input}" (got "${target}")`,
    );
  }
  const moduleId = t[1] ?? '';
  const input = t[2] ?? '';
  return { kind: 'module', endpointId: `/modules/${moduleId}/inputs/${input}`, moduleId, input };
}

/** True when the route's FROM matches the message's source (case-insensitive prefix). */
export function sourceMatches(route: Route, message: EdgeMessage): boolean {
  return messageSourcePath(message).startsWith(route.sourcePrefix);
}

/** True when the route selects the message (source and condition). */
export function routeMatches(route: Route, message: EdgeMessage): boolean {
  return (
    sourceMatches(route, message) &&
    (route.condition === undefined || evaluateCondition(route.condition, message))
  );
}

/** One endpoint a message goes to, with the priority and TTL of the best route that chose it. */
export interface RouteTarget {
  readonly sink: RouteSink;
  readonly priority: number;
  /** Undefined: use `storeAndForwardConfiguration.timeToLiveSecs`. */
  readonly timeToLiveSecs?: number;
  /** Names of the routes that matched into this endpoint. */
  readonly routeNames: readonly string[];
}

/**
 * The endpoints a message goes to. Several routes into the same endpoint and priority deliver
 * once (edgeHub dedupes per endpoint); into the same endpoint at different priorities, the
 * highest priority (lowest number) wins. Empty when nothing matched (edgeHub drops it: `no_route`).
 */
export function routeMessage(routes: readonly Route[], message: EdgeMessage): RouteTarget[] {
  const byEndpoint = new Map<string, { sink: RouteSink; priority: number; ttl?: number; names: string[] }>();
  for (const route of routes) {
    if (!routeMatches(route, message)) continue;
    const cur = byEndpoint.get(route.sink.endpointId);
    if (cur === undefined) {
      const entry: { sink: RouteSink; priority: number; ttl?: number; names: string[] } = {
        sink: route.sink,
        priority: route.priority,
        names: [route.name],
      };
      if (route.timeToLiveSecs !== undefined) entry.ttl = route.timeToLiveSecs;
      byEndpoint.set(route.sink.endpointId, entry);
      continue;
    }
    cur.names.push(route.name);
    if (route.priority < cur.priority) {
      cur.priority = route.priority;
      if (route.timeToLiveSecs !== undefined) cur.ttl = route.timeToLiveSecs;
      else delete cur.ttl;
    }
  }
  return [...byEndpoint.values()].map((e) =>
    e.ttl === undefined
      ? { sink: e.sink, priority: e.priority, routeNames: e.names }
      : { sink: e.sink, priority: e.priority, timeToLiveSecs: e.ttl, routeNames: e.names },
  );
}

/** Every route of a `routes` object parsed, and the errors of those that did not parse. */
export interface ParsedRoutes {
  readonly routes: Route[];
  readonly errors: RouteError[];
}

/** Parses a whole `routes` object without throwing, so a caller can report every error at once. */
export function tryParseRoutes(specs: Readonly<Record<string, RouteSpec>>): ParsedRoutes {
  const routes: Route[] = [];
  const errors: RouteError[] = [];
  for (const [name, spec] of Object.entries(specs)) {
    try {
      routes.push(parseRoute(name, spec));
    } catch (err) {
      if (err instanceof RouteError) errors.push(err);
      else throw err;
    }
  }
  return { routes, errors };
}

/**
 * Parses a whole `routes` object.
 * @throws RouteError when one route is invalid; ConfigError (source `routes`) listing each when several are.
 */
export function parseRoutes(specs: Readonly<Record<string, RouteSpec>>): Route[] {
  const { routes, errors } = tryParseRoutes(specs);
  const [first] = errors;
  if (first !== undefined && errors.length === 1) throw first;
  if (errors.length > 1) {
    throw new ConfigError(
      'routes',
      errors.map((e) => ({ field: `routes.${e.routeName}`, message: e.message })),
    );
  }
  return routes;
}
