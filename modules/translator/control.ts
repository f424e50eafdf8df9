import { type Logger, toError } from '../common/index.js';
import type { TranslatorConfig } from './config/live-config.js';
import type { SettingsSection, TranslatorSettings } from './config/settings.js';
import type { MethodResponse, ModuleControlChannel } from './transports/control-channel.js';

/** Options for {@link TranslatorControl}. */
export interface TranslatorControlOptions {
  readonly config: TranslatorConfig;
  /** Payload of `getStats`. */
  readonly stats: () => unknown;
  /** Sends everything buffered; `flush` answers when edgeHub acknowledged it. */
  readonly flush: () => Promise<void>;
  /** Zeroes the counters `getStats` shows. */
  readonly resetStats: () => void;
  /**
   * Puts accepted settings in force (rebuilds the parts in `changed`). A rejection is logged and
   * reported; the config object already holds the new settings, so the caller must leave the
   * module consistent (e.g. keep retrying a transport connect in the background).
   */
  readonly apply: (settings: TranslatorSettings, changed: ReadonlySet<SettingsSection>) => Promise<void>;
  readonly logger: Logger;
}

/** Direct method names the translator serves. */
export const TRANSLATOR_METHODS = ['getStats', 'flush', 'resetStats'] as const;

/**
 * The module's control plane: direct methods `getStats`, `flush`, `resetStats`; desired
 * properties applied live, in order, one at a time; reported properties `config` showing the
 * effective settings or why the last desired version was rejected.
 */
export class TranslatorControl {
  private readonly opts: TranslatorControlOptions;
  private channel: ModuleControlChannel | undefined;
  // Desired patches apply strictly in arrival order.
  private queue: Promise<void> = Promise.resolve();

  constructor(options: TranslatorControlOptions) {
    this.opts = options;
  }

  /**
   * Reads the twin and applies its desired document (call before the pipeline is built so it
   * starts with the desired settings). An invalid document is reported; env settings then apply.
   */
  async loadDesired(channel: ModuleControlChannel): Promise<void> {
    const twin = await channel.getTwin();
    const outcome = this.opts.config.applyDesiredDocument(twin.desired);
    if (!outcome.ok)
      this.opts.logger.error({ err: outcome.error.message }, 'twin desired properties rejected');
  }

  /** Registers the direct methods and the desired-properties listener on a (new) channel, then reports. */
  async bind(channel: ModuleControlChannel): Promise<void> {
    this.channel = channel;
    channel.onMethod('getStats', async () => ({ status: 200, payload: this.opts.stats() }));
    channel.onMethod('flush', () => this.onFlush());
    channel.onMethod('resetStats', async () => {
      this.opts.resetStats();
      return { status: 200, payload: { reset: true, atMs: Date.now() } };
    });
    channel.onDesiredPatch((patch) => {
      if (this.channel !== channel) return;
      this.queue = this.queue.then(() => this.onDesiredPatch(patch));
    });
    await this.report();
  }

  /** Waits for queued desired patches to finish applying. */
  idle(): Promise<void> {
    return this.queue;
  }

  /** Writes the `config` reported property; failures are logged, never thrown. */
  async report(): Promise<void> {
    const channel = this.channel;
    if (!channel) return;
    try {
      await channel.patchReported(this.opts.config.reported());
    } catch (err) {
      this.opts.logger.warn({ err: toError(err).message }, 'cannot update reported properties');
    }
  }

  private async onFlush(): Promise<MethodResponse> {
    const started = Date.now();
    try {
      await this.opts.flush();
      return { status: 200, payload: { flushed: true, durationMs: Date.now() - started } };
    } catch (err) {
      return { status: 500, payload: { flushed: false, error: toError(err).message } };
    }
  }

  private async onDesiredPatch(patch: Record<string, unknown>): Promise<void> {
    const log = this.opts.logger;
    const outcome = this.opts.config.applyDesiredPatch(patch);
    if (!outcome.ok) {
      log.error({ err: outcome.error.message }, 'desired properties patch rejected; last good config stays');
    } else if (outcome.changed.size > 0) {
      log.info({ changed: [...outcome.changed] }, 'applying desired properties');
      try {
        await this.opts.apply(outcome.settings, outcome.changed);
      } catch (err) {
        log.error({ err: toError(err).message }, 'applying desired properties failed');
      }
    }
    await this.report();
  }
}
