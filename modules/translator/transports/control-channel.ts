import type { UpstreamTransport } from '../upstream-transport.js';

/** Answer to a direct method call: HTTP-like status and a JSON payload (≤ 128 KB, edge-facts §9). */
export interface MethodResponse {
  readonly status: number;
  readonly payload: unknown;
}

/** Handles one direct method call; its payload is the parsed JSON request body (or null). */
export type MethodHandler = (payload: unknown) => Promise<MethodResponse>;

/** The module twin as a control channel reads it. */
export interface TwinDocument {
  /** Desired properties including `$version`. */
  readonly desired: Record<string, unknown>;
  readonly reported: Record<string, unknown>;
}

/**
 * Direct methods and twin over the module's one connection to edgeHub. edgeHub keeps one
 * connection per identity (a new one replaces the old), so control must share the transport's
 * connection instead of opening its own.
 */
export interface ModuleControlChannel {
  /** Registers a direct method; call after the transport connected. */
  onMethod(name: string, handler: MethodHandler): void;
  /** Reads the full twin. @throws when edgeHub does not answer. */
  getTwin(): Promise<TwinDocument>;
  /** Subscribes to desired-property patches (each carries `$version`). */
  onDesiredPatch(handler: (patch: Record<string, unknown>) => void): void;
  /** Merges a reported-properties patch (null deletes). */
  patchReported(patch: Record<string, unknown>): Promise<void>;
}

/** An upstream transport that also carries direct methods and the twin. */
export interface ControllableTransport extends UpstreamTransport {
  readonly control: ModuleControlChannel;
}

/** Exponential backoff with full jitter: min(maxMs, minMs·2^attempt) scaled by a random 0.5–1. */
export function backoffDelayMs(
  attempt: number,
  minMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.5 + random() / 2));
}
