import { setFlagsFromString } from 'node:v8';

/**
 * Raises V8's interrupt budget (the bytecode a function runs before V8 considers optimising it)
 * from 132 KB to 1 MB in the measuring process (`local`, `run`, `sweep`).
 *
 * Why: edgeperf's hot path is native (`JSON.parse` of the batches it receives); its JavaScript is
 * lukewarm SDK and AMQP code that reached the default budget a few functions at a time all through
 * a run. `perf record` of a 2,000 msg/s run found TurboFan's compiler threads busy for 12% of the
 * measurer's CPU 15 s into the burst. With the larger budget only the code that is really hot is
 * compiled: paired runs, old and new alternating three times, measured 5.1, 5.3, 5.4% of a core
 * with the default and 5.0, 4.9, 4.9% with 1 MB (`--no-opt` gave the same, but leaves heavier
 * runs in the baseline tier). V8 reads the budget when it next resets a function's counter, so
 * setting it at start-up takes effect for everything that has not yet run.
 */
export function withFewerOptimisations(): void {
  setFlagsFromString('--interrupt-budget=1000000');
}
