import rhea, { type Message } from 'rhea';
import type { EventInput, StartPosition } from './event-log.js';
import type { StoredEvent } from './partition-log.js';

/** AMQP message format of an Event Hubs batch: one message whose data sections are encoded messages. */
export const BATCH_MESSAGE_FORMAT = 0x80013700;

const ANNOTATION_SEQUENCE = 'x-opt-sequence-number';
const ANNOTATION_OFFSET = 'x-opt-offset';
const ANNOTATION_ENQUEUED = 'x-opt-enqueued-time';
const ANNOTATION_PARTITION_KEY = 'x-opt-partition-key';
const ASSIGNED = new Set([
  ANNOTATION_SEQUENCE,
  ANNOTATION_OFFSET,
  ANNOTATION_ENQUEUED,
  ANNOTATION_PARTITION_KEY,
]);
const AMQP_PROPERTY_NAMES = [
  'message_id',
  'correlation_id',
  'content_type',
  'content_encoding',
  'user_id',
  'subject',
  'to',
  'reply_to',
  'group_id',
] as const;

/** Thrown for a message this endpoint cannot store (bad batch, unsupported body). */
export class MalformedMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedMessageError';
  }
}

/**
 * Decodes what a producer sent into events. `payload` is the decoded message for format 0, the
 * raw bytes for the batch format (each data section is itself an encoded message).
 * @throws MalformedMessageError when the payload cannot be decoded.
 */
export function decodeIncoming(payload: Message | Buffer, format: number): EventInput[] {
  if (format === 0 && !Buffer.isBuffer(payload)) return [toEventInput(payload)];
  if (format !== BATCH_MESSAGE_FORMAT || !Buffer.isBuffer(payload)) {
    throw new MalformedMessageError(`unsupported message format 0x${format.toString(16)}`);
  }
  let envelope: Message;
  try {
    envelope = rhea.message.decode(payload) as unknown as Message;
  } catch (err) {
    throw new MalformedMessageError(`batch envelope does not decode: ${(err as Error).message}`);
  }
  const sections = dataSections(envelope.body);
  const envelopeKey = stringAnnotation(envelope.message_annotations, ANNOTATION_PARTITION_KEY);
  return sections.map((section, i) => {
    let inner: Message;
    try {
      inner = rhea.message.decode(section) as unknown as Message;
    } catch (err) {
      throw new MalformedMessageError(`batch section ${i} does not decode: ${(err as Error).message}`);
    }
    const event = toEventInput(inner);
    return event.partitionKey === undefined && envelopeKey !== undefined
      ? { ...event, partitionKey: envelopeKey }
      : event;
  });
}

/** The partition key a (batch) message carries in its annotations, if any. */
export function partitionKeyOf(payload: Message | Buffer): string | undefined {
  if (Buffer.isBuffer(payload)) {
    try {
      return stringAnnotation(rhea.message.decode(payload).message_annotations, ANNOTATION_PARTITION_KEY);
    } catch {
      return undefined;
    }
  }
  return stringAnnotation(payload.message_annotations, ANNOTATION_PARTITION_KEY);
}

/** Delivery annotations Event Hubs adds when a receiver asked for runtime metrics. */
export interface RuntimeInfo {
  readonly lastSequenceNumber: number;
  readonly lastOffset: string;
  readonly lastEnqueuedTimeMs: number;
}

/** Encodes a stored event as Event Hubs delivers it (data body, x-opt-* annotations). */
export function encodeOutgoing(
  event: StoredEvent,
  runtime?: RuntimeInfo,
  nowMs: number = Date.now(),
): Message {
  const annotations: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(event.annotations)) {
    if (!ASSIGNED.has(k)) annotations[k] = v;
  }
  annotations[ANNOTATION_SEQUENCE] = rhea.types.wrap_long(event.sequenceNumber);
  annotations[ANNOTATION_OFFSET] = event.offset;
  annotations[ANNOTATION_ENQUEUED] = new Date(event.enqueuedTimeMs);
  if (event.partitionKey !== undefined) annotations[ANNOTATION_PARTITION_KEY] = event.partitionKey;
  const message: Message = {
    body: rhea.message.data_section(event.body),
    message_annotations: annotations,
    application_properties: { ...event.properties },
  } as Message;
  for (const name of AMQP_PROPERTY_NAMES) {
    const value = event.amqpProperties[name];
    if (value === undefined) continue;
    // user_id is binary in AMQP.
    (message as unknown as Record<string, unknown>)[name] =
      name === 'user_id' ? Buffer.from(value, 'utf8') : value;
  }
  if (runtime !== undefined) {
    message.delivery_annotations = {
      last_enqueued_sequence_number: rhea.types.wrap_long(runtime.lastSequenceNumber),
      last_enqueued_offset: runtime.lastOffset,
      last_enqueued_time_utc: new Date(runtime.lastEnqueuedTimeMs),
      runtime_info_retrieval_time_utc: new Date(nowMs),
    };
  }
  return message;
}

/** Thrown for a selector filter this endpoint does not understand. */
export class UnsupportedFilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedFilterError';
  }
}

const SELECTOR =
  /^\s*amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>|=)\s*'([^']*)'\s*$/i;

/**
 * Parses the `apache.org:selector-filter:string` expression consumers send
 * (`amqp.annotation.x-opt-offset > '-1'`, `… >= '42'`, `…x-opt-enqueued-time > '1700000000000'`).
 * Undefined means no filter: start at the earliest event.
 * @throws UnsupportedFilterError for anything else.
 */
export function parseSelector(expression: string | undefined): StartPosition {
  if (expression === undefined) return { kind: 'earliest' };
  const match = SELECTOR.exec(expression);
  if (match === null) throw new UnsupportedFilterError(`unsupported selector filter: ${expression}`);
  const [, field = '', op = '', value = ''] = match;
  const inclusive = op !== '>';
  switch (field.toLowerCase()) {
    case 'offset':
      if (value === '@latest') return { kind: 'latest' };
      if (value === '-1' && !inclusive) return { kind: 'earliest' };
      if (!/^\d+$/.test(value))
        throw new UnsupportedFilterError(`offset must be digits, -1 or @latest: '${value}'`);
      return { kind: 'offset', offset: value, inclusive };
    case 'sequence-number':
      if (!/^-?\d+$/.test(value))
        throw new UnsupportedFilterError(`sequence number must be an integer: '${value}'`);
      return { kind: 'sequence', sequenceNumber: Number(value), inclusive };
    default: {
      const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
      if (!Number.isFinite(ms))
        throw new UnsupportedFilterError(`enqueued time must be epoch ms: '${value}'`);
      return { kind: 'enqueued', enqueuedTimeMs: ms, inclusive };
    }
  }
}

/** Extracts the selector expression from a (rhea-unwrapped) source filter map. */
export function selectorOf(filter: unknown): string | undefined {
  if (filter === null || typeof filter !== 'object') return undefined;
  for (const [key, raw] of Object.entries(filter as Record<string, unknown>)) {
    if (!/selector-filter/i.test(key)) continue;
    const value = unwrapDescribed(raw);
    if (typeof value === 'string') return value;
  }
  return undefined;
}

function unwrapDescribed(raw: unknown): unknown {
  let v = raw;
  // A described value may arrive wrapped once or twice depending on how rhea unwrapped the terminus.
  for (let i = 0; i < 3 && v !== null && typeof v === 'object' && 'value' in v; i++) {
    v = (v as { value: unknown }).value;
  }
  return v;
}

function toEventInput(msg: Message): EventInput {
  const amqpProperties: Record<string, string | undefined> = {};
  for (const name of AMQP_PROPERTY_NAMES) {
    const value: unknown = msg[name];
    if (value === undefined || value === null) continue;
    amqpProperties[name] = Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
  }
  const annotations: Record<string, string | number | boolean | Date> = {};
  let partitionKey: string | undefined;
  for (const [k, v] of Object.entries(msg.message_annotations ?? {})) {
    if (k === ANNOTATION_PARTITION_KEY) {
      if (typeof v === 'string') partitionKey = v;
      continue;
    }
    // Producers cannot set the service-assigned annotations, nor the idempotent-producer ones.
    if (ASSIGNED.has(k) || k.startsWith('com.microsoft:')) continue;
    const scalar = toScalar(v, true);
    if (scalar !== undefined) annotations[k] = scalar;
  }
  const properties: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(msg.application_properties ?? {})) {
    const scalar = toScalar(v, false);
    if (scalar !== undefined) properties[k] = scalar as string | number | boolean;
  }
  return {
    body: bodyBytes(msg.body),
    properties,
    annotations,
    amqpProperties,
    ...(partitionKey === undefined ? {} : { partitionKey }),
  };
}

function toScalar(v: unknown, allowDate: boolean): string | number | boolean | Date | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  // The client turns dates in application properties into epoch ms anyway.
  if (v instanceof Date) return allowDate ? v : v.getTime();
  if (Buffer.isBuffer(v)) return v.toString('base64');
  return JSON.stringify(v);
}

function dataSections(body: unknown): Buffer[] {
  if (isSection(body)) {
    if (body.typecode !== 0x75) throw new MalformedMessageError('batch body must be data sections');
    const content = body.multiple ? body.content : [body.content];
    if (!Array.isArray(content) || !content.every((c) => Buffer.isBuffer(c))) {
      throw new MalformedMessageError('batch data sections must be binary');
    }
    return content as Buffer[];
  }
  if (Buffer.isBuffer(body)) return [body];
  throw new MalformedMessageError('batch body must be data sections');
}

interface SectionLike {
  typecode: number;
  content: unknown;
  multiple?: boolean;
}

function isSection(v: unknown): v is SectionLike {
  return v !== null && typeof v === 'object' && 'typecode' in v && 'content' in v;
}

function bodyBytes(body: unknown): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body;
  if (isSection(body)) {
    if (body.typecode === 0x75) {
      const parts = body.multiple && Array.isArray(body.content) ? body.content : [body.content];
      return Buffer.concat(parts.filter((p): p is Buffer => Buffer.isBuffer(p)));
    }
    return Buffer.from(JSON.stringify(body.content), 'utf8');
  }
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.from(JSON.stringify(body), 'utf8');
}

function stringAnnotation(annotations: Record<string, unknown> | undefined, key: string): string | undefined {
  const v = annotations?.[key];
  return typeof v === 'string' ? v : undefined;
}
