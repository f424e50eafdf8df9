import { InvalidArgumentError } from 'commander';
import { EdgePerfError, redactSecrets, toError } from '../modules/common/index.js';

/**
 * Wraps a command action: known errors print one line on stderr and set the exit code
 * (2 bad arguments, 3 loss, 1 other); a stack only with `--verbose`.
 */
export function action<A extends unknown[]>(
  fn: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      const e = toError(err);
      const verbose = process.argv.includes('--verbose');
      process.stderr.write(`edgeperf: ${redactSecrets(e.message)}\n`);
      if (verbose && e.stack) process.stderr.write(`${redactSecrets(e.stack)}\n`);
      process.exitCode = e instanceof EdgePerfError ? e.exitCode : 1;
    }
  };
}

/** commander parser for an integer flag within [min, max]; the error names the range. */
export function intInRange(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    }
    return n;
  };
}

/** commander parser for a number flag within [min, max]; the error names the range. */
export function numberInRange(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`must be a number from ${min} to ${max}`);
    }
    return n;
  };
}
