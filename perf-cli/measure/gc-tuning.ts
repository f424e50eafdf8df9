import { setFlagsFromString } from 'node:v8';

/**
 * Turns off V8's incremental marking in this process (the measurer, not the runtime it starts).
 *
 * Why: edgeperf is a consumer that sits mostly idle between Event Hubs batches. V8 kept starting
 * incremental mark-compacts from idle tasks with the old generation far below its limit (27 of
 * 36 MB, `--trace-incremental-marking`), two to seven per 15 s burst. Each cost about 50 ms of CPU
 * across threads, and how many ran decided most of the run-to-run spread of edgeperf's own CPU
 * (4.3–5.8% of a core at 2,000 msg/s). Without incremental marking V8 collects only when a limit
 * is reached: 1–2 collections per run and 3.9–4.0%. The longer atomic pauses this allows (tens of
 * ms) do not touch any figure: latency is IoT Hub's enqueue time minus the creation time, both
 * stamped elsewhere. The flag is read on every marking start, so setting it at run time works.
 */
export function tuneGcForMeasuring(): void {
  setFlagsFromString('--no-incremental-marking');
}
