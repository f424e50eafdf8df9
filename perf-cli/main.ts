#!/usr/bin/env node
import { buildProgram } from './program.js';

const program = buildProgram();
// commander exits 1 on a parse error; the contract says 2 for bad arguments.
program.exitOverride((err) => {
  if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) {
    process.exit(0);
  }
  process.exit(2);
});
await program.parseAsync(process.argv);
