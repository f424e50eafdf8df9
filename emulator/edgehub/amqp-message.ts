import type { Message as AmqpMessage } from 'rhea';
import rhea from 'rhea';
import type { HubCore } from './contracts.js';
import type { EdgeMessage, SystemProperties } from './message.js';

/** What an endpoint hands to {@link HubCore.receive}: a message without runtime-stamped fields. */
export type IncomingMessage = Parameters<HubCore['receive']>[1];

/** Application property the Node SDK puts the output name in (azure-iot-device-amqp `sendOutputEvent`). */
export const OUTPUT_NAME_PROPERTY = 'iothub-outputname';
/** Annotation some SDKs use for the output name instead (azure-iot-sdk-node modules design doc). */
export const OUTPUT_NAME_ANNOTATION = 'x-opt-output-name';
/** Annotation the SDK reads the input name from (edge-facts §7). */
export const INPUT_NAME_ANNOTATION = 'x-opt-input-name';

/**
 * The bytes of an AMQP body: one data section (what the SDKs send), several data sections
 * (concatenated), a binary or string amqp-value; anything else is JSON-encoded.
 */
export function bodyBytes(body: unknown): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (isDataSection(body)) {
    const content = body.content;
    // rhea gathers several data sections into one Section whose content is an array.
    return Array.isArray(content) ? Buffer.concat(content.filter((c) => Buffer.isBuffer(c))) : content;
  }
  return Buffer.from(JSON.stringify(body), 'utf8');
}

interface DataSection {
  readonly typecode: number;
  readonly content: Buffer | unknown[];
}

function isDataSection(value: unknown): value is DataSection {
  if (typeof value !== 'object' || value === null) return false;
  const { typecode, content } = value as { typecode?: unknown; content?: unknown };
  return typecode === 0x75 && (Buffer.isBuffer(content) || Array.isArray(content));
}

/**
 * A message id or correlation id as text: AMQP uuids (16-byte buffers, what the SDK sends for
 * uuid-shaped ids) become their canonical string, numbers their decimal form.
 */
export function idText(id: unknown): string | undefined {
  if (id === undefined || id === null) return undefined;
  if (Buffer.isBuffer(id)) return id.length === 16 ? rhea.uuid_to_string(id) : id.toString('utf8');
  return String(id);
}

function timeText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const date = value instanceof Date ? value : new Date(value as string | number);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/**
 * Converts a telemetry/output message a module sent into what the core receives: body bytes,
 * application properties as strings (the output-name property moved to `system.outputName`),
 * AMQP properties mapped to IoT Hub system properties.
 */
export function toIncomingMessage(msg: AmqpMessage): IncomingMessage {
  const properties: Record<string, string> = {};
  let outputName: string | undefined;
  for (const [key, value] of Object.entries(msg.application_properties ?? {})) {
    if (value === undefined || value === null) continue;
    if (key === OUTPUT_NAME_PROPERTY) outputName = String(value);
    else properties[key] = typeof value === 'string' ? value : String(value);
  }
  const annotated = msg.message_annotations?.[OUTPUT_NAME_ANNOTATION];
  if (outputName === undefined && annotated !== undefined && annotated !== null)
    outputName = String(annotated);
  const system: Omit<SystemProperties, 'connectionDeviceId' | 'connectionModuleId' | 'receivedAtMs'> = {};
  const messageId = idText(msg.message_id);
  if (messageId !== undefined) system.messageId = messageId;
  const correlationId = idText(msg.correlation_id);
  if (correlationId !== undefined) system.correlationId = correlationId;
  if (msg.content_type !== undefined && msg.content_type !== null)
    system.contentType = String(msg.content_type);
  if (msg.content_encoding !== undefined && msg.content_encoding !== null)
    system.contentEncoding = String(msg.content_encoding);
  const userId = idText(msg.user_id);
  if (userId !== undefined) system.userId = userId;
  if (msg.to !== undefined && msg.to !== null) system.to = String(msg.to);
  const expiry = timeText(msg.absolute_expiry_time);
  if (expiry !== undefined) system.expiryTimeUtc = expiry;
  const created = timeText(msg.creation_time);
  if (created !== undefined) system.creationTimeUtc = created;
  if (outputName !== undefined) system.outputName = outputName;
  return { body: bodyBytes(msg.body), properties, system };
}

/**
 * Builds the AMQP message for a module input (edge-facts §7): the input name in annotation
 * `x-opt-input-name`, the original sender in `iothub-connection-device-id`/`-module-id`,
 * application properties as sent, system properties mapped back to AMQP properties.
 */
export function toInputAmqpMessage(input: string, message: EdgeMessage): AmqpMessage {
  const s = message.system;
  const annotations: Record<string, unknown> = {
    [INPUT_NAME_ANNOTATION]: input,
    'iothub-connection-device-id': s.connectionDeviceId,
    'iothub-enqueuedtime': new Date(s.receivedAtMs),
  };
  if (s.connectionModuleId !== undefined) annotations['iothub-connection-module-id'] = s.connectionModuleId;
  const out: AmqpMessage = {
    body: rhea.message.data_section(message.body),
    application_properties: { ...message.properties },
    message_annotations: annotations,
  };
  if (s.messageId !== undefined) out.message_id = s.messageId;
  if (s.correlationId !== undefined) out.correlation_id = s.correlationId;
  if (s.contentType !== undefined) out.content_type = s.contentType;
  if (s.contentEncoding !== undefined) out.content_encoding = s.contentEncoding;
  if (s.expiryTimeUtc !== undefined) {
    const d = new Date(s.expiryTimeUtc);
    if (!Number.isNaN(d.getTime())) out.absolute_expiry_time = d;
  }
  if (s.creationTimeUtc !== undefined) {
    const d = new Date(s.creationTimeUtc);
    if (!Number.isNaN(d.getTime())) out.creation_time = d;
  }
  return out;
}

/** A JSON body as a data section, the way IoT Hub sends method requests and twin documents. */
export function jsonDataSection(value: unknown): unknown {
  return rhea.message.data_section(Buffer.from(JSON.stringify(value ?? null), 'utf8'));
}

/** Parses a JSON body; returns the text itself when it is not JSON, undefined when empty. */
export function parseJsonBody(body: unknown): unknown {
  const bytes = bodyBytes(body);
  if (bytes.length === 0) return undefined;
  const text = bytes.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
