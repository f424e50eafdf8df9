#!/usr/bin/env node
import type { Command } from 'commander';
import { buildProgram } from './program.js';

const program = buildProgram();
// commander exits 1 on a parse error; the contract says 2 for bad arguments. Subcommands do not
// inherit exitOverride once added, so apply it to the whole tree.
const applyExit = (c: Command): void => {
  c.exitOverride((err) => {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) {
      process.exit(0);
    }
    process.exit(2);
  });
  c.showHelpAfterError('(run with --help for usage)');
  for (const sub of c.commands) applyExit(sub);
};
applyExit(program);
await program.parseAsync(process.argv);
