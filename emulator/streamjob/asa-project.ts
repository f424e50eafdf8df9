import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { parseSettings } from '../../modules/common/index.js';
import type { EventOrderingOptions } from './engine.js';

const jobConfigSchema = z.object({
  EventsLateArrivalMaxDelayInSeconds: z.number().int().min(-1).max(1_814_399).default(5),
  EventsOutOfOrderMaxDelayInSeconds: z.number().int().min(0).max(599).default(0),
  EventsOutOfOrderPolicy: z.enum(['Adjust', 'Drop']).default('Adjust'),
});

/**
 * Reads the event-ordering settings of an ASA `JobConfig.json`. A late-arrival delay of -1
 * (ASA's "wait indefinitely") is mapped to the largest allowed value (about 21 days).
 * @throws ConfigError naming every invalid field; Error when the file cannot be read or parsed.
 */
export async function readJobConfig(path: string): Promise<Required<EventOrderingOptions>> {
  const raw: unknown = JSON.parse(await readFile(path, 'utf8'));
  const parsed = parseSettings(jobConfigSchema, raw, path);
  const late = parsed.EventsLateArrivalMaxDelayInSeconds;
  return {
    lateArrivalMaxDelaySecs: late < 0 ? 1_814_399 : late,
    outOfOrderMaxDelaySecs: parsed.EventsOutOfOrderMaxDelayInSeconds,
    outOfOrderPolicy: parsed.EventsOutOfOrderPolicy,
  };
}

/**
 * Parses an ASA JSON data file (input mock or expected output): a JSON array, one JSON value, or
 * line-separated JSON values (the Event Hub output's `LineSeparated` format).
 * @throws SyntaxError when a line is not JSON.
 */
export function parseAsaJson(text: string): unknown[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  try {
    const whole: unknown = JSON.parse(trimmed);
    return Array.isArray(whole) ? whole : [whole];
  } catch {
    return trimmed
      .split(/\r?\n/)
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as unknown);
  }
}
