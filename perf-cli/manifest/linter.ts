import { LINT_RULES, type LintContext, type LintFinding } from './lint-rules.js';
import { HUB_PTR, isObject, jsonPointer, queueLoads, viewManifest } from './manifest-model.js';
import { DEFAULT_OVERHEAD_BYTES_PER_MESSAGE, DEFAULT_USABLE_DISK_FRACTION } from './sizing.js';

/** Options of {@link lintManifest}. */
export interface LintOptions {
  /** Disk for edgeHub's store, GB (10^9 bytes); without it the disk rule is skipped. */
  readonly diskGb?: number;
  /** Source messages per second; default: the simulator's desired `config.targetRate` in the manifest, else rate rules are skipped. */
  readonly ratePerSec?: number;
  /** Bytes per source message; default: the simulator's desired `config.payloadLength`, else 1024. */
  readonly payloadLength?: number;
  /** RAM budget of an in-memory store, GB, when storeLimits.maxSizeBytes is absent; default 2. */
  readonly ramGb?: number;
  /** Share of the disk the queues may fill before a warning; default 0.8. */
  readonly usableDiskFraction?: number;
  /** Per-stored-message overhead, bytes; default 256. */
  readonly overheadBytesPerMessage?: number;
  /** The input is a deployment template (`${MODULES.x}`): object createOptions are allowed. Default false. */
  readonly template?: boolean;
}

/** A rule that did not run and why. */
export interface SkippedRule {
  readonly rule: string;
  readonly reason: string;
}

/** What `edgeperf lint` found. */
export interface LintResult {
  readonly findings: readonly LintFinding[];
  readonly errors: number;
  readonly warnings: number;
  readonly skipped: readonly SkippedRule[];
  /** The inputs the rate and disk rules used, and where the rate came from. */
  readonly inputs: {
    readonly ratePerSec?: number;
    readonly payloadLength?: number;
    readonly diskGb?: number;
    readonly rateSource: 'flags' | 'manifest' | 'none';
  };
}

/** Default RAM budget of an in-memory store, GB. */
export const DEFAULT_RAM_GB = 2;
const DEFAULT_PAYLOAD_LENGTH = 1024;

function simulatorConfig(content: Record<string, unknown>): { rate?: number; payload?: number } {
  for (const [name, twin] of Object.entries(content)) {
    if (name.startsWith('$') || !isObject(twin)) continue;
    const desired = twin['properties.desired'];
    const config = isObject(desired) ? desired.config : undefined;
    if (!isObject(config) || typeof config.targetRate !== 'number' || config.targetRate <= 0) continue;
    return {
      rate: config.targetRate,
      ...(typeof config.payloadLength === 'number' ? { payload: config.payloadLength } : {}),
    };
  }
  return {};
}

/**
 * Checks a deployment manifest (parsed JSON) for performance and disk-safety problems, like
 * `iotedge check` does for connectivity. Never throws on a malformed manifest: shape problems are
 * findings (rule `manifest-shape`).
 */
export function lintManifest(manifest: unknown, options: LintOptions = {}): LintResult {
  const view = viewManifest(manifest);
  const shape: LintFinding[] = [];
  const root = isObject(manifest) ? manifest : undefined;
  if (!root || (!isObject(root.modulesContent) && !isObject(root.content))) {
    shape.push({
      rule: 'manifest-shape',
      severity: 'error',
      pointer: '',
      message: 'not a deployment manifest: expected a JSON object with modulesContent',
      fix: 'lint the output of `edgeperf manifest` or a deployment.json with modulesContent.$edgeAgent and $edgeHub',
    });
  } else {
    for (const [key, ptr] of [
      ['$edgeAgent', ['modulesContent', '$edgeAgent', 'properties.desired']],
      ['$edgeHub', HUB_PTR],
    ] as const) {
      const twin = view.content[key];
      if (!isObject(twin) || !isObject(twin['properties.desired'])) {
        shape.push({
          rule: 'manifest-shape',
          severity: 'error',
          pointer: jsonPointer(...ptr),
          message: `modulesContent.${key} has no "properties.desired" object`,
          fix: `add modulesContent.${key}["properties.desired"] (see deployment/deployment.template.json)`,
        });
      }
    }
  }
  const fromManifest = simulatorConfig(view.content);
  const rate = options.ratePerSec ?? fromManifest.rate;
  const payload = options.payloadLength ?? fromManifest.payload ?? DEFAULT_PAYLOAD_LENGTH;
  const ctx: LintContext = {
    view,
    ...(rate !== undefined
      ? { ratePerSec: rate, payloadLength: payload, queues: queueLoads(view, rate, payload) }
      : {}),
    ...(options.diskGb !== undefined ? { diskGb: options.diskGb } : {}),
    ramGb: options.ramGb ?? DEFAULT_RAM_GB,
    usableDiskFraction: options.usableDiskFraction ?? DEFAULT_USABLE_DISK_FRACTION,
    overheadBytesPerMessage: options.overheadBytesPerMessage ?? DEFAULT_OVERHEAD_BYTES_PER_MESSAGE,
    template: options.template ?? false,
  };
  const findings: LintFinding[] = [...shape];
  const skipped: SkippedRule[] = [];
  for (const rule of LINT_RULES) {
    const missing = rule.needs.filter((n) =>
      n === 'rate' ? rate === undefined : options.diskGb === undefined,
    );
    if (missing.length > 0) {
      skipped.push({
        rule: rule.id,
        reason: missing
          .map((n) => (n === 'rate' ? 'needs --rate (and --payload-length)' : 'needs --disk-gb'))
          .join(', '),
      });
      continue;
    }
    findings.push(...rule.check(ctx));
  }
  return {
    findings,
    errors: findings.filter((f) => f.severity === 'error').length,
    warnings: findings.filter((f) => f.severity === 'warning').length,
    skipped,
    inputs: {
      ...(rate !== undefined ? { ratePerSec: rate, payloadLength: payload } : {}),
      ...(options.diskGb !== undefined ? { diskGb: options.diskGb } : {}),
      rateSource: options.ratePerSec !== undefined ? 'flags' : rate !== undefined ? 'manifest' : 'none',
    },
  };
}

/** Exit status of `edgeperf lint`: 2 with errors, 1 with warnings under `strict`, else 0. */
export function lintExitCode(result: LintResult, strict: boolean): 0 | 1 | 2 {
  if (result.errors > 0) return 2;
  if (strict && result.warnings > 0) return 1;
  return 0;
}
