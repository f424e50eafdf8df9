import type { EdgeMessage, SystemProperties } from '../message.js';
import { RouteSyntaxError } from './errors.js';

/**
 * The WHERE language of edgeHub routes (Routing.Core grammar Condition.g4), the subset the local
 * runtime models: application properties by bare name, system properties `$name`, `$body.a.b`,
 * literals (strings in single or double quotes, numbers, true/false, null), AND/OR/NOT (also
 * && || !), = != <> < <= > >=, parentheses, and the functions below. Evaluation uses three-valued
 * logic like Routing.Core: a missing property is `undefined`, comparisons with it are undefined,
 * and a route matches only when the condition is exactly `true`.
 */

/** A value during evaluation; `undefined` is Routing.Core's "undefined". */
export type ConditionValue = string | number | boolean | null | undefined;

/** Parsed condition tree. */
export type ConditionNode =
  | { readonly kind: 'literal'; readonly value: string | number | boolean | null }
  | { readonly kind: 'appProperty'; readonly name: string }
  | { readonly kind: 'systemProperty'; readonly name: SystemPropertyName }
  | { readonly kind: 'body'; readonly path: readonly string[] }
  | { readonly kind: 'not'; readonly operand: ConditionNode }
  | {
      readonly kind: 'logical';
      readonly op: 'and' | 'or';
      readonly left: ConditionNode;
      readonly right: ConditionNode;
    }
  | {
      readonly kind: 'compare';
      readonly op: CompareOp;
      readonly left: ConditionNode;
      readonly right: ConditionNode;
    }
  | { readonly kind: 'call'; readonly fn: FunctionName; readonly args: readonly ConditionNode[] };

/** Comparison operators (`<>` is parsed as `!=`). */
export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

// Names as Routing.Core / edgeHub SystemProperties spell them, mapped to our message fields.
const SYSTEM_PROPERTIES = {
  messageid: 'messageId',
  correlationid: 'correlationId',
  userid: 'userId',
  to: 'to',
  contenttype: 'contentType',
  contentencoding: 'contentEncoding',
  connectiondeviceid: 'connectionDeviceId',
  connectionmoduleid: 'connectionModuleId',
  outputname: 'outputName',
  expirytimeutc: 'expiryTimeUtc',
  creationtimeutc: 'creationTimeUtc',
} as const satisfies Record<string, keyof SystemProperties>;

/** System properties a condition can name with `$`. */
export type SystemPropertyName = (typeof SYSTEM_PROPERTIES)[keyof typeof SYSTEM_PROPERTIES];

const FUNCTIONS = {
  is_defined: 1,
  is_string: 1,
  is_number: 1,
  is_bool: 1,
  is_null: 1,
  contains: 2,
  starts_with: 2,
  ends_with: 2,
  lower: 1,
  upper: 1,
  length: 1,
} as const;

/** Built-in functions, upper-case as users write them. */
export type FunctionName = keyof typeof FUNCTIONS;

type Token =
  | { t: 'ident'; v: string; at: number }
  | { t: 'sys'; v: string; at: number }
  | { t: 'str'; v: string; at: number }
  | { t: 'num'; v: number; at: number }
  | { t: 'op'; v: string; at: number }
  | { t: 'end'; at: number };

/** Tokenises `text` from `start`; offsets are absolute in `text`. */
function tokenize(text: string, start: number, end: number): Token[] {
  const out: Token[] = [];
  let i = start;
  while (i < end) {
    const c = text.charAt(i);
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1;
      let value = '';
      for (;;) {
        if (j >= end) throw new RouteSyntaxError(i, 'unterminated string literal');
        const d = text.charAt(j);
        if (d === c) {
          // A doubled quote inside a string is a literal quote.
          if (text.charAt(j + 1) === c && j + 1 < end) {
            value += c;
            j += 2;
            continue;
          }
          break;
        }
        if (d === '\\' && j + 1 < end) {
          value += text.charAt(j + 1);
          j += 2;
          continue;
        }
        value += d;
        j++;
      }
      out.push({ t: 'str', v: value, at: i });
      i = j + 1;
      continue;
    }
    const num = /^-?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/.exec(text.slice(i, end));
    const prev = out.at(-1);
    const minusIsSign = c !== '-' || prev === undefined || prev.t === 'op';
    if (num && (c !== '-' || minusIsSign)) {
      out.push({ t: 'num', v: Number(num[0]), at: i });
      i += num[0].length;
      continue;
    }
    if (c === '$') {
      const m = /^\$[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_$-]+)*/.exec(text.slice(i, end));
      if (!m) throw new RouteSyntaxError(i, "expected a system property name after '$'");
      out.push({ t: 'sys', v: m[0].slice(1), at: i });
      i += m[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_.-]*/.exec(text.slice(i, end));
    if (id) {
      out.push({ t: 'ident', v: id[0], at: i });
      i += id[0].length;
      continue;
    }
    // `[name]` quotes a property name with characters an identifier cannot hold.
    if (c === '[') {
      const close = text.indexOf(']', i + 1);
      if (close < 0 || close >= end) throw new RouteSyntaxError(i, "unterminated '[' property name");
      out.push({ t: 'ident', v: text.slice(i + 1, close), at: i });
      i = close + 1;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (['<=', '>=', '<>', '!=', '&&', '||', '=='].includes(two)) {
      out.push({ t: 'op', v: two, at: i });
      i += 2;
      continue;
    }
    if ('=<>!(),'.includes(c)) {
      out.push({ t: 'op', v: c, at: i });
      i++;
      continue;
    }
    throw new RouteSyntaxError(i, `unexpected character '${c}'`);
  }
  out.push({ t: 'end', at: end });
  return out;
}

/** Result of {@link parseCondition}: the tree and where parsing stopped. */
export interface ParsedCondition {
  readonly node: ConditionNode;
  /** Absolute offset of the first token not consumed (the `INTO` keyword, or `end`). */
  readonly stopOffset: number;
}

/**
 * Parses a condition from `text[start, end)`. Stops before a bare `INTO` keyword when `stopAtInto`.
 * @throws RouteSyntaxError with an absolute offset.
 */
export function parseCondition(
  text: string,
  start: number,
  end: number,
  stopAtInto = false,
): ParsedCondition {
  const tokens = tokenize(text, start, end);
  let pos = 0;
  const peek = (): Token => tokens[pos] as Token;
  const next = (): Token => tokens[pos++] as Token;
  const isKeyword = (tok: Token, kw: string): boolean => tok.t === 'ident' && tok.v.toUpperCase() === kw;
  const isOp = (tok: Token, ...ops: string[]): boolean => tok.t === 'op' && ops.includes(tok.v);
  const atStop = (tok: Token): boolean => tok.t === 'end' || (stopAtInto && isKeyword(tok, 'INTO'));
  const describe = (tok: Token): string =>
    tok.t === 'end' ? 'end of condition' : `'${text.slice(tok.at, tok.at + 12).split(/\s/)[0]}'`;

  const parseOr = (): ConditionNode => {
    let left = parseAnd();
    while (isKeyword(peek(), 'OR') || isOp(peek(), '||')) {
      next();
      left = { kind: 'logical', op: 'or', left, right: parseAnd() };
    }
    return left;
  };
  const parseAnd = (): ConditionNode => {
    let left = parseNot();
    while (isKeyword(peek(), 'AND') || isOp(peek(), '&&')) {
      next();
      left = { kind: 'logical', op: 'and', left, right: parseNot() };
    }
    return left;
  };
  const parseNot = (): ConditionNode => {
    if (isKeyword(peek(), 'NOT') || isOp(peek(), '!')) {
      next();
      return { kind: 'not', operand: parseNot() };
    }
    return parseComparison();
  };
  const parseComparison = (): ConditionNode => {
    const left = parsePrimary();
    const tok = peek();
    if (isOp(tok, '=', '==', '!=', '<>', '<', '<=', '>', '>=')) {
      next();
      const raw = (tok as { v: string }).v;
      const op: CompareOp = raw === '==' ? '=' : raw === '<>' ? '!=' : (raw as CompareOp);
      return { kind: 'compare', op, left, right: parsePrimary() };
    }
    return left;
  };
  const parsePrimary = (): ConditionNode => {
    const tok = next();
    switch (tok.t) {
      case 'str':
        return { kind: 'literal', value: tok.v };
      case 'num':
        return { kind: 'literal', value: tok.v };
      case 'sys':
        return systemNode(tok.v, tok.at);
      case 'op':
        if (tok.v === '(') {
          const inner = parseOr();
          const close = next();
          if (!isOp(close, ')'))
            throw new RouteSyntaxError(close.at, `expected ')' but found ${describe(close)}`);
          return inner;
        }
        throw new RouteSyntaxError(tok.at, `expected a value but found '${tok.v}'`);
      case 'ident': {
        const upper = tok.v.toUpperCase();
        if (upper === 'TRUE') return { kind: 'literal', value: true };
        if (upper === 'FALSE') return { kind: 'literal', value: false };
        if (upper === 'NULL') return { kind: 'literal', value: null };
        if (isOp(peek(), '(')) return parseCall(tok.v, tok.at);
        if (['AND', 'OR', 'NOT', 'INTO'].includes(upper)) {
          throw new RouteSyntaxError(tok.at, `expected a value but found keyword ${upper}`);
        }
        return { kind: 'appProperty', name: tok.v };
      }
      case 'end':
        throw new RouteSyntaxError(tok.at, 'expected a value but the condition ended');
    }
  };
  const parseCall = (name: string, at: number): ConditionNode => {
    const fn = name.toLowerCase();
    if (!(fn in FUNCTIONS)) {
      throw new RouteSyntaxError(
        at,
        `unknown function ${name} (allowed: ${Object.keys(FUNCTIONS).join(', ').toUpperCase()})`,
      );
    }
    next(); // (
    const args: ConditionNode[] = [];
    if (!isOp(peek(), ')')) {
      for (;;) {
        args.push(parseOr());
        if (isOp(peek(), ',')) {
          next();
          continue;
        }
        break;
      }
    }
    const close = next();
    if (!isOp(close, ')'))
      throw new RouteSyntaxError(close.at, `expected ')' or ',' but found ${describe(close)}`);
    const arity = FUNCTIONS[fn as FunctionName];
    if (args.length !== arity) {
      throw new RouteSyntaxError(at, `${name.toUpperCase()} takes ${arity} argument(s), got ${args.length}`);
    }
    return { kind: 'call', fn: fn as FunctionName, args };
  };

  if (atStop(peek())) throw new RouteSyntaxError(peek().at, 'WHERE needs a condition');
  const node = parseOr();
  const stop = peek();
  if (!atStop(stop)) {
    throw new RouteSyntaxError(
      stop.at,
      `unexpected ${describe(stop)}${stopAtInto ? ' (expected AND, OR or INTO)' : ''}`,
    );
  }
  return { node, stopOffset: stop.at };
}

function systemNode(name: string, at: number): ConditionNode {
  const [head = '', ...rest] = name.split('.');
  if (head.toLowerCase() === 'body') {
    if (rest.length === 0)
      throw new RouteSyntaxError(at, "'$body' needs a property path, e.g. $body.temperature");
    return { kind: 'body', path: rest };
  }
  if (rest.length > 0) throw new RouteSyntaxError(at, `'$${name}' is not a system property`);
  const mapped = SYSTEM_PROPERTIES[head.toLowerCase() as keyof typeof SYSTEM_PROPERTIES];
  if (mapped === undefined) {
    throw new RouteSyntaxError(
      at,
      `unknown system property '$${head}' (allowed: ${Object.keys(SYSTEM_PROPERTIES)
        .map((k) => `$${SYSTEM_PROPERTIES[k as keyof typeof SYSTEM_PROPERTIES]}`)
        .join(', ')}, $body.<path>)`,
    );
  }
  return { kind: 'systemProperty', name: mapped };
}

// Routing.Core decodes $body only for JSON in one of these encodings (edge-facts §4).
const BODY_ENCODINGS: Readonly<Record<string, BufferEncoding | 'utf-32'>> = {
  'utf-8': 'utf8',
  'utf-16': 'utf16le',
  'utf-32': 'utf-32',
};

const bodyCache = new WeakMap<EdgeMessage, unknown>();
const UNPARSABLE = Symbol('unparsable');

function parsedBody(message: EdgeMessage): unknown {
  if (bodyCache.has(message)) return bodyCache.get(message);
  let value: unknown = UNPARSABLE;
  const type = message.system.contentType?.split(';')[0]?.trim().toLowerCase();
  const encoding = BODY_ENCODINGS[message.system.contentEncoding?.trim().toLowerCase() ?? ''];
  if (type === 'application/json' && encoding !== undefined) {
    try {
      const text = encoding === 'utf-32' ? decodeUtf32(message.body) : message.body.toString(encoding);
      value = JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch {
      value = UNPARSABLE;
    }
  }
  bodyCache.set(message, value);
  return value;
}

function decodeUtf32(buf: Buffer): string {
  let out = '';
  for (let i = 0; i + 3 < buf.length; i += 4) out += String.fromCodePoint(buf.readUInt32LE(i));
  return out;
}

function evalNode(node: ConditionNode, message: EdgeMessage): ConditionValue {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'appProperty': {
      const props = message.properties;
      return Object.hasOwn(props, node.name) ? props[node.name] : undefined;
    }
    case 'systemProperty': {
      const v = message.system[node.name];
      return v === undefined ? undefined : String(v);
    }
    case 'body': {
      let cur = parsedBody(message);
      if (cur === UNPARSABLE) return undefined;
      for (const key of node.path) {
        if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, key)) return undefined;
        cur = (cur as Record<string, unknown>)[key];
      }
      return typeof cur === 'string' || typeof cur === 'number' || typeof cur === 'boolean' || cur === null
        ? cur
        : undefined;
    }
    case 'not': {
      const v = evalNode(node.operand, message);
      return typeof v === 'boolean' ? !v : undefined;
    }
    case 'logical': {
      const l = evalNode(node.left, message);
      if (node.op === 'and') {
        if (l === false) return false;
        const r = evalNode(node.right, message);
        if (r === false) return false;
        return l === true && r === true ? true : undefined;
      }
      if (l === true) return true;
      const r = evalNode(node.right, message);
      if (r === true) return true;
      return l === false && r === false ? false : undefined;
    }
    case 'compare':
      return compare(node.op, evalNode(node.left, message), evalNode(node.right, message));
    case 'call':
      return call(node.fn, node.args, message);
  }
}

function compare(op: CompareOp, l: ConditionValue, r: ConditionValue): ConditionValue {
  if (l === undefined || r === undefined) return undefined;
  // Values of different types are never equal and never ordered (no implicit conversion).
  if (typeof l !== typeof r || l === null || r === null) {
    if (op === '=') return l === r;
    if (op === '!=') return l !== r;
    return undefined;
  }
  switch (op) {
    case '=':
      return l === r;
    case '!=':
      return l !== r;
    case '<':
      return l < r;
    case '<=':
      return l <= r;
    case '>':
      return l > r;
    case '>=':
      return l >= r;
  }
}

function call(fn: FunctionName, args: readonly ConditionNode[], message: EdgeMessage): ConditionValue {
  const a = args.map((x) => evalNode(x, message));
  const [x, y] = a;
  switch (fn) {
    case 'is_defined':
      return x !== undefined;
    case 'is_string':
      return typeof x === 'string';
    case 'is_number':
      return typeof x === 'number';
    case 'is_bool':
      return typeof x === 'boolean';
    case 'is_null':
      return x === null;
    case 'contains':
      return typeof x === 'string' && typeof y === 'string' ? x.includes(y) : undefined;
    case 'starts_with':
      return typeof x === 'string' && typeof y === 'string' ? x.startsWith(y) : undefined;
    case 'ends_with':
      return typeof x === 'string' && typeof y === 'string' ? x.endsWith(y) : undefined;
    case 'lower':
      return typeof x === 'string' ? x.toLowerCase() : undefined;
    case 'upper':
      return typeof x === 'string' ? x.toUpperCase() : undefined;
    case 'length':
      return typeof x === 'string' ? x.length : undefined;
  }
}

/**
 * Evaluates a condition against a message. True only when the condition is exactly `true`
 * (undefined and non-boolean results do not match, as in Routing.Core).
 */
export function evaluateCondition(node: ConditionNode, message: EdgeMessage): boolean {
  return evalNode(node, message) === true;
}
