import { setFlagsFromString } from 'node:v8';

/**
 * Turns off V8's incremental marking in this process. Used by the processes that run the local
 * runtime (`edgeperf emulator`, the bench) and by the measuring process (`local`, `run`, `sweep`);
 * modules keep V8's defaults.
 *
 * Why: with a heap of 27–35 MB, V8 started incremental mark-compacts from idle tasks whenever the
 * old generation's headroom was no larger than the new space (16 of 50 MB; seen with
 * `--trace-incremental-marking`), not when memory ran short.
 * - The bench process (the runtime) ran 37 mark-compacts in a 1 KB bench run; without incremental
 *   marking, 10. The runtime's CPU fell from 21.5 to 14.6 ms per 1,000 messages, and its p99
 *   latency rose from 90 to 110 ms (collections now pause it, for 10–30 ms each).
 * - The measurer ran 2–7 of them per 15 s burst, at about 50 ms of CPU each. How many ran set most
 *   of the run-to-run spread of its own CPU (4.3–8.1% of a core at 2,000 msg/s); without, 4.9–5.0%.
 *   Pauses do not touch its figures: latency is IoT Hub's enqueue time minus the creation time,
 *   both stamped elsewhere.
 * V8 reads the flag whenever marking would start, so setting it at run time takes effect.
 */
export function withoutIncrementalMarking(): void {
  setFlagsFromString('--no-incremental-marking');
}
