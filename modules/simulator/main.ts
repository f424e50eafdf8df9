#!/usr/bin/env node
// Entry point of the simulator module image and of `node dist/modules/simulator/main.js --standalone`.
import { main } from './cli.js';

await main();
