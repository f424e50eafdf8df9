import { ConfigError, toError } from '../../common/index.js';
import { compileTopicTemplate } from '../decoders/topic-template.js';
import { isInsideIotEdge, settingsFromEnv } from './env.js';
import {
  changedSections,
  resolveSettings,
  type SettingsSection,
  type TranslatorSettings,
  type TranslatorSettingsInput,
} from './settings.js';
import { mergeDesiredPatch, settingsFromTwin, settingsToReported } from './twin.js';

/** Outcome of applying desired properties. */
export type DesiredOutcome =
  | {
      readonly ok: true;
      readonly settings: TranslatorSettings;
      /** Parts of the module to rebuild; empty when nothing effective changed. */
      readonly changed: ReadonlySet<SettingsSection>;
    }
  | { readonly ok: false; readonly error: ConfigError };

/**
 * The translator's configuration over its life: the env layer (fixed at start) under the twin's
 * desired properties (changing live). An invalid desired document or patch is rejected as a
 * whole and the last good configuration stays in force.
 */
export class TranslatorConfig {
  private readonly envLayer: TranslatorSettingsInput;
  private readonly inContainer: boolean;
  private desired: Record<string, unknown> = {};
  private desiredVersion: number | undefined;
  private lastError: { version: number | undefined; message: string } | undefined;
  private current: TranslatorSettings;

  private constructor(envLayer: TranslatorSettingsInput, inContainer: boolean) {
    this.envLayer = envLayer;
    this.inContainer = inContainer;
    this.current = resolveSettings([envLayer], inContainer);
  }

  /**
   * Reads the env layer and applies the defaults.
   * @throws ConfigError listing every invalid environment variable.
   */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): TranslatorConfig {
    const config = new TranslatorConfig(settingsFromEnv(env), isInsideIotEdge(env));
    validateCrossField(config.current);
    return config;
  }

  /** The settings in force. */
  get settings(): TranslatorSettings {
    return this.current;
  }

  /** Replaces the whole desired document (the first twin read, or the SDK's full-document event). */
  applyDesiredDocument(desired: Record<string, unknown>): DesiredOutcome {
    return this.tryDesired(mergeDesiredPatch({}, desired), versionOf(desired));
  }

  /** Applies a desired patch (merge patch; null deletes a field, reverting it to env or default). */
  applyDesiredPatch(patch: Record<string, unknown>): DesiredOutcome {
    return this.tryDesired(mergeDesiredPatch(this.desired, patch), versionOf(patch));
  }

  /**
   * Reported properties: `{config: {status, desiredVersion, error, effective}}` where `effective`
   * is the settings in force and `error` explains the last rejected desired version (or null).
   */
  reported(): Record<string, unknown> {
    return {
      config: {
        status: this.lastError === undefined ? 'ok' : 'rejected',
        desiredVersion: this.desiredVersion ?? null,
        error: this.lastError === undefined ? null : this.lastError.message,
        rejectedVersion: this.lastError?.version ?? null,
        effective: settingsToReported(this.current),
      },
    };
  }

  private tryDesired(candidate: Record<string, unknown>, version: number | undefined): DesiredOutcome {
    let next: TranslatorSettings;
    try {
      next = resolveSettings([this.envLayer, settingsFromTwin(candidate)], this.inContainer);
      validateCrossField(next);
    } catch (err) {
      const error =
        err instanceof ConfigError
          ? err
          : new ConfigError('twin', [{ field: 'twin', message: toError(err).message }]);
      this.lastError = { version, message: error.message };
      return { ok: false, error };
    }
    const changed = changedSections(this.current, next);
    this.desired = candidate;
    this.desiredVersion = version ?? this.desiredVersion;
    this.lastError = undefined;
    this.current = next;
    return { ok: true, settings: next, changed };
  }
}

function versionOf(doc: Record<string, unknown>): number | undefined {
  return typeof doc.$version === 'number' ? doc.$version : undefined;
}

// Rules that span fields or need a compiler; run on every candidate so a bad one never goes live.
function validateCrossField(s: TranslatorSettings): void {
  if (s.topicTemplate !== '') compileTopicTemplate(s.topicTemplate);
}
