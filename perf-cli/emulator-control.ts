import type { LocalEdgeRuntime } from '../emulator/index.js';
import type { Logger } from '../modules/common/index.js';

/**
 * Control messages `edgeperf local` sends to the runtime it spawned (over the child's IPC channel),
 * for fault injection. Each gets one reply `{ id, ok, detail }`.
 */
export type ControlRequest =
  | { readonly id: number; readonly op: 'kill-module'; readonly module: string }
  | { readonly id: number; readonly op: 'outage'; readonly durationMs: number }
  | { readonly id: number; readonly op: 'stats' };

export interface ControlReply {
  readonly id: number;
  readonly ok: boolean;
  readonly detail: unknown;
}

/** Serves control requests when the process has an IPC channel; otherwise does nothing. */
export function handleControlMessages(runtime: LocalEdgeRuntime, logger: Logger): void {
  if (typeof process.send !== 'function') return;
  process.on('message', (raw: unknown) => {
    const req = raw as ControlRequest;
    const reply = (ok: boolean, detail: unknown) =>
      process.send?.({ id: req.id, ok, detail } satisfies ControlReply);
    try {
      switch (req.op) {
        case 'kill-module': {
          const killed = runtime.supervisor?.kill(req.module, 'SIGKILL') ?? false;
          logger.warn({ module: req.module, killed }, 'fault: SIGKILL module');
          reply(killed, killed ? `SIGKILL sent to ${req.module}` : `${req.module} is not running`);
          return;
        }
        case 'outage':
          runtime.link?.startOutage(req.durationMs);
          logger.warn({ durationMs: req.durationMs }, 'fault: uplink outage');
          reply(true, `uplink down for ${req.durationMs} ms`);
          return;
        case 'stats':
          reply(true, {
            ingest: runtime.ingest?.getStats(),
            link: runtime.link?.getStats(),
            modules: runtime.supervisor?.states(),
          });
          return;
        default:
          reply(false, `unknown control op ${(req as { op?: unknown }).op}`);
      }
    } catch (err) {
      reply(false, (err as Error).message);
    }
  });
}
