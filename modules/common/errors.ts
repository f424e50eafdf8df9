/**
 * The project's error classes. Every error carries a stable `code`; the CLI maps `exitCode`
 * to its process exit status (architecture.md: 2 bad arguments, 3 loss, 1 other failures).
 */
export class EdgePerfError extends Error {
  /** Stable machine-readable code, e.g. `E_CONFIG`. */
  readonly code: string;
  /** Exit status the CLI uses when this error ends a command. */
  readonly exitCode: number;

  constructor(code: string, message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EdgePerfError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** One invalid field: where it is, what was given and what is allowed. */
export interface ConfigIssue {
  /** Dotted path of the field, prefixed by its source (`env.MaxBatchBytes`, `twin.batch.maxMessages`). */
  readonly field: string;
  /** What is wrong and what is allowed. */
  readonly message: string;
}

/** Invalid configuration from one source, with every problem found reported at once (style.md §4). */
export class ConfigError extends EdgePerfError {
  readonly issues: readonly ConfigIssue[];

  constructor(source: string, issues: readonly ConfigIssue[]) {
    super('E_CONFIG', `invalid ${source}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, {
      exitCode: 2,
    });
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** Normalises anything thrown into an Error (only Error objects are thrown in this project). */
export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
