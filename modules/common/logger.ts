import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

// Secrets that must never reach a log line: keys, SAS signatures, whole connection strings.
const SECRET_PATTERNS: readonly [RegExp, string][] = [
  [/(SharedAccessKey=)[^;"'\s]+/gi, '$1[redacted]'],
  [/(sig=)[^&;"'\s]+/gi, '$1[redacted]'],
  [/(SharedAccessSignature\s+)[^"'\s]+/gi, '$1[redacted]'],
];

/** Removes keys and SAS signatures from a string (connection strings, tokens, URLs, errors). */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** pino level; default from `RuntimeLogLevel` or `LOG_LEVEL`, else `info`. */
  level?: string;
  /** Pretty output for people; default: when stderr is a terminal. JSON otherwise (containers). */
  pretty?: boolean;
}

/**
 * The one logger of a process: JSON lines on stderr (stdout stays free for `--json`), a child per
 * component, secrets redacted from fields and messages.
 */
export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const level = (
    options.level ??
    process.env.RuntimeLogLevel ??
    process.env.LOG_LEVEL ??
    'info'
  ).toLowerCase();
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  return pino(
    {
      name,
      level: normaliseLevel(level),
      redact: {
        paths: [
          'key',
          'sharedAccessKey',
          'connectionString',
          'token',
          'password',
          'sasToken',
          '*.key',
          '*.password',
        ],
        censor: '[redacted]',
      },
      hooks: {
        logMethod(args, method) {
          const redacted = args.map((a) => (typeof a === 'string' ? redactSecrets(a) : a)) as typeof args;
          method.apply(this, redacted);
        },
      },
      ...(pretty
        ? { transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } } }
        : {}),
    },
    pretty ? undefined : pino.destination(2),
  );
}

// IoT Edge writes RuntimeLogLevel as info/debug/warning/error; pino calls warning "warn".
function normaliseLevel(level: string): string {
  if (level === 'warning') return 'warn';
  if (level === 'information') return 'info';
  return ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level) ? level : 'info';
}
