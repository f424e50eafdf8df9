/** A twin property document; `$version` is kept alongside the properties as IoT Hub shows it. */
export type TwinProperties = Record<string, unknown>;

/** True for a plain JSON object (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * JSON merge patch (RFC 7396) as IoT Hub applies it to twin properties: objects merge
 * recursively, `null` deletes, anything else replaces. Keys starting with `$` in the patch are
 * ignored (they are metadata such as `$version`). Returns a new object; inputs are not changed.
 */
export function mergePatch(target: TwinProperties, patch: TwinProperties): TwinProperties {
  const out: TwinProperties = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) continue;
    if (value === null) {
      delete out[key];
    } else if (isPlainObject(value)) {
      const current = out[key];
      out[key] = mergePatch(isPlainObject(current) ? current : {}, value);
    } else {
      out[key] = value;
    }
  }
  return out;
}

/** Drops `$`-prefixed metadata keys at the top level. */
export function withoutMetadata(props: TwinProperties): TwinProperties {
  return Object.fromEntries(Object.entries(props).filter(([k]) => !k.startsWith('$')));
}
