import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from './errors.js';

/**
 * Validates one configuration source against its schema and returns typed settings.
 * Every problem is collected before throwing, so a user fixes a manifest in one pass.
 *
 * @param source - human name of the source, used as the field prefix (`env`, `twin`, `flag`).
 * @throws ConfigError naming each invalid field, the value given and what is allowed.
 */
export function parseSettings<S extends z.ZodType>(schema: S, input: unknown, source: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues: ConfigIssue[] = result.error.issues.map((issue) => {
    const field = [source, ...issue.path.map(String)].join('.');
    const given = valueAt(input, issue.path);
    const shown = given === undefined ? '' : ` (got ${JSON.stringify(given)})`;
    return { field, message: `${issue.message}${shown}` };
  });
  throw new ConfigError(source, issues);
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = input;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}
