import { type Command, InvalidArgumentError, Option } from 'commander';
import { intInRange, numberInRange } from '../cli-errors.js';
import type { MeasurementOptions } from '../measure/measurement.js';

/** Flags `local` and `run` share (architecture.md contract). */
export interface MeasureFlags {
  burstLength: number;
  bursts: number;
  burstWaitMs: number;
  targetRate: number;
  payloadLength: number;
  format: 'json' | 'sparkplug';
  devices: number;
  timeout: number;
  json: boolean;
  csv?: string;
  report?: string;
  label: Record<string, string>;
  simulatorModule: string;
  translatorModule: string;
}

/** The simulator's `start` request of a measurement, from the measure flags. */
export function burstOf(flags: MeasureFlags): MeasurementOptions['burst'] {
  return {
    burstLength: flags.burstLength,
    bursts: flags.bursts,
    burstWaitMs: flags.burstWaitMs,
    targetRate: flags.targetRate,
    payloadLength: flags.payloadLength,
    format: flags.format,
    devices: flags.devices,
  };
}

function label(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('must be KEY=VALUE');
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/** Adds the burst, output and module flags to a command. */
export function addMeasureFlags(
  cmd: Command,
  defaults: { burstLength: number; targetRate: number },
): Command {
  return cmd
    .option('--burst-length <n>', 'messages per burst', intInRange(1, 100_000_000), defaults.burstLength)
    .option('--bursts <k>', 'bursts in the run', intInRange(1, 10_000), 1)
    .option('--burst-wait-ms <ms>', 'pause between bursts, ms', intInRange(0, 3_600_000), 1000)
    .option(
      '--target-rate <r>',
      'source rate, messages/s (0 = unpaced)',
      numberInRange(0, 1_000_000),
      defaults.targetRate,
    )
    .option('--payload-length <bytes>', 'message body size, bytes', intInRange(100, 262_144), 1024)
    .addOption(
      new Option('--format <format>', 'source payload format').choices(['json', 'sparkplug']).default('json'),
    )
    .option('--devices <n>', 'simulated field devices (round-robin)', intInRange(1, 100_000), 1)
    .option(
      '--timeout <secs>',
      'end with partial results after this many seconds without new messages',
      intInRange(1, 86_400),
      30,
    )
    .option('--json', 'print exactly one JSON summary on stdout (logs go to stderr)', false)
    .option('--csv <file>', 'write one CSV row per burst (plus a total row) to FILE')
    .option('--report <file>', 'write a self-contained HTML report with plots to FILE')
    .option('--label <key=value>', 'label for the CSV/JSON (repeatable)', label, {})
    .option('--simulator-module <name>', 'module that runs the simulator', 'simulator')
    .option('--translator-module <name>', 'module that runs the translator', 'translator');
}
