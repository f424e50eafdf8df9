/** One logical message as the query's `Messages` step sees it. */
export interface LogicalMessage {
  readonly sid: string;
  readonly burst: number;
  readonly seq: number;
  readonly createdMs: number;
  readonly payloadBytes: number;
}

const ISO = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * Parses an ASA datetime (ISO 8601 string, up to 7 fractional digits, or a Date) into unix ms,
 * keeping the sub-millisecond fraction (window boundaries depend on it). A string without a zone
 * is UTC, as ASA reads it.
 * @returns undefined when the value is not a datetime.
 */
export function parseAsaTime(value: unknown): number | undefined {
  if (value instanceof Date) {
    const ms = value.getTime();
    return Number.isFinite(ms) ? ms : undefined;
  }
  if (typeof value !== 'string') return undefined;
  const m = ISO.exec(value.trim());
  if (m === null) return undefined;
  const base = Date.parse(`${m[1]}${m[3] === undefined ? 'Z' : m[3]}`);
  if (!Number.isFinite(base)) return undefined;
  const fraction = m[2] === undefined ? 0 : Number(`0.${m[2]}`) * 1000;
  return base + fraction;
}

/** `TRY_CAST(x AS bigint)`: integers and integer strings; anything else is NULL (undefined). */
function tryBigint(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : undefined;
  if (typeof v === 'string' && /^\s*-?\d{1,15}\s*$/.test(v)) return Number(v);
  return undefined;
}

/** `TRY_CAST(x AS nvarchar(max))`: strings, numbers and booleans; records and arrays are NULL. */
function tryString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** `LEN(TRY_CAST(x AS nvarchar(max)))`: characters without trailing blanks; NULL stays NULL. */
function len(v: unknown): number | undefined {
  const s = tryString(v);
  return s === undefined ? undefined : s.replace(/ +$/, '').length;
}

function field(v: unknown, name: string): unknown {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)[name]
    : undefined;
}

function message(record: unknown, payloadBytes: number): LogicalMessage | undefined {
  const perf = field(record, 'perf');
  const sid = tryString(field(perf, 'sid'));
  const burst = tryBigint(field(perf, 'burst'));
  const seq = tryBigint(field(perf, 'seq'));
  const createdMs = tryBigint(field(perf, 'ts'));
  if (sid === undefined || burst === undefined || seq === undefined || createdMs === undefined)
    return undefined;
  return { sid, burst, seq, createdMs, payloadBytes };
}

/**
 * The logical messages of one input event, as the query's `Batched` and `Plain` steps select
 * them: every element of a `records` array, or the event itself when it has no `records`.
 * Elements or events without a usable `perf` (sid, burst, seq, ts) are counted as ignored.
 */
export function logicalMessagesOf(body: Readonly<Record<string, unknown>>): {
  messages: LogicalMessage[];
  ignored: number;
} {
  const messages: LogicalMessage[] = [];
  let ignored = 0;
  const records = body.records;
  if (Array.isArray(records)) {
    for (const r of records) {
      const m = message(r, len(field(field(r, 'data'), 'payload')) ?? 0);
      if (m === undefined) ignored++;
      else messages.push(m);
    }
  } else if (records === undefined || records === null) {
    const m = message(body, len(field(body.data, 'payload')) ?? len(body.payload) ?? 0);
    if (m === undefined) ignored++;
    else messages.push(m);
  } else {
    ignored++;
  }
  return { messages, ignored };
}

/** System properties of an event read from IoT Hub's built-in endpoint (as @azure/event-hubs exposes them). */
export interface BuiltInEndpointEvent {
  /** The raw body. */
  readonly body: Uint8Array;
  /** Event Hubs enqueue time of the endpoint (`x-opt-enqueued-time`). */
  readonly enqueuedTimeUtc: Date;
  /** `iothub-enqueuedtime`, `iothub-connection-device-id`, `iothub-connection-module-id`, … */
  readonly systemProperties?: Readonly<Record<string, unknown>>;
  readonly partitionId?: string;
}

/**
 * Maps an event of the built-in endpoint to the shape ASA's IoT Hub input gives the query: the
 * JSON body's fields plus `EventEnqueuedUtcTime`, `PartitionId` and the `IoTHub` record.
 * @throws SyntaxError when the body is not JSON; TypeError when it is not a JSON object.
 */
export function toAsaInputEvent(event: BuiltInEndpointEvent): Record<string, unknown> {
  const parsed: unknown = JSON.parse(Buffer.from(event.body).toString('utf8'));
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new TypeError('event body is not a JSON object');
  }
  const sp = event.systemProperties ?? {};
  const hubEnqueued = sp['iothub-enqueuedtime'];
  const enqueued =
    typeof hubEnqueued === 'number' || hubEnqueued instanceof Date
      ? new Date(hubEnqueued)
      : typeof hubEnqueued === 'string'
        ? new Date(hubEnqueued)
        : event.enqueuedTimeUtc;
  const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  return {
    ...(parsed as Record<string, unknown>),
    EventProcessedUtcTime: new Date().toISOString(),
    PartitionId: event.partitionId === undefined ? 0 : Number(event.partitionId),
    EventEnqueuedUtcTime: event.enqueuedTimeUtc.toISOString(),
    IoTHub: {
      MessageId: text(sp['message-id']) ?? text(sp.messageId),
      CorrelationId: text(sp['correlation-id']) ?? text(sp.correlationId),
      ConnectionDeviceId: text(sp['iothub-connection-device-id']),
      ConnectionModuleId: text(sp['iothub-connection-module-id']),
      ConnectionDeviceGenerationId: text(sp['iothub-connection-auth-generation-id']),
      EnqueuedTime: Number.isFinite(enqueued.getTime()) ? enqueued.toISOString() : null,
    },
  };
}
