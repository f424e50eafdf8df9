const QUOTE = 0x22;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/**
 * The bytes to cut from a JSON object's text to remove its first top-level member `name`, with
 * the one comma that separated it from its neighbours: `[start, end)`. Undefined when there is no
 * such member or the text is not an object. The scan stops where the member ends, so the caller
 * checks that `"name"` does not occur again after `end` if a repeated member matters.
 *
 * Only for text that `JSON.parse` accepted and that holds no backslash: then every `"` opens or
 * closes a string, and braces inside strings are never mistaken for structure.
 */
export function topLevelMemberRange(text: Uint8Array, name: Uint8Array): [number, number] | undefined {
  const n = text.length;
  let i = text.indexOf(OPEN_OBJECT);
  if (i === -1) return undefined;
  let depth = 0;
  let expectKey = false;
  // The `{` or `,` before the key being read (depth 1), and where the wanted key starts.
  let lastDelimiter = i;
  let memberStart = -1;
  for (; i < n; i++) {
    const c = text[i];
    if (c === QUOTE) {
      let close = i + 1;
      while (close < n && text[close] !== QUOTE) close++;
      if (close === n) return undefined;
      if (depth === 1 && expectKey) {
        expectKey = false;
        if (memberStart === -1 && isName(text, i + 1, close, name)) memberStart = i;
      }
      i = close;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      depth++;
      if (depth === 1) {
        if (c !== OPEN_OBJECT) return undefined;
        expectKey = true;
        lastDelimiter = i;
      }
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      if (depth === 1) return memberStart === -1 ? undefined : cut(text, lastDelimiter, memberStart, i);
      depth--;
    } else if (c === COMMA && depth === 1) {
      if (memberStart !== -1) return cut(text, lastDelimiter, memberStart, i);
      lastDelimiter = i;
      expectKey = true;
    }
  }
  return undefined;
}

function isName(text: Uint8Array, from: number, to: number, name: Uint8Array): boolean {
  if (to - from !== name.length) return false;
  for (let k = 0; k < name.length; k++) if (text[from + k] !== name[k]) return false;
  return true;
}

/** The cut for a member whose key starts at `keyStart` and whose value ends before `end`. */
function cut(text: Uint8Array, delimiter: number, keyStart: number, end: number): [number, number] {
  // After another member: cut from the comma before it. First member: cut through the comma after.
  if (text[delimiter] === COMMA) return [delimiter, end];
  return [keyStart, text[end] === COMMA ? end + 1 : end];
}
