import { Command } from 'commander';
import { registerDeployCommand } from './commands/deploy.js';
import { registerEmulatorCommand } from './commands/emulator.js';
import { lintCommand } from './commands/lint.js';
import { registerLocalCommand } from './commands/local.js';
import { manifestCommand } from './commands/manifest.js';
import { reportCommand } from './commands/report.js';
import { registerRunCommand } from './commands/run.js';
import { sizeCommand } from './commands/size.js';
import { registerSweepCommand } from './commands/sweep.js';

/**
 * Builds the `edgeperf` command tree. Each command lives in `commands/<name>.ts` and registers
 * itself here; tests call this with `exitOverride()` to parse without exiting.
 */
export function buildProgram(): Command {
  const program = new Command('edgeperf')
    .description(
      'Measure and tune high-rate Azure IoT Edge telemetry, against Azure or a local edge runtime.',
    )
    .option('--verbose', 'print stack traces and debug logs', false)
    .showHelpAfterError('(run with --help for usage)');
  // Commands register below, one line each.
  program.addCommand(manifestCommand());
  program.addCommand(lintCommand());
  program.addCommand(sizeCommand());
  program.addCommand(reportCommand());
  registerEmulatorCommand(program);
  registerLocalCommand(program);
  registerRunCommand(program);
  registerSweepCommand(program);
  registerDeployCommand(program);
  return program;
}
