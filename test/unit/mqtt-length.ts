/** MQTT's variable-length "remaining length" (3.1.1 §2.2.3), written from the spec for tests. */
export function remainingLength(n: number): Buffer {
  const out: number[] = [];
  let rest = n;
  do {
    let b = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) b |= 0x80;
    out.push(b);
  } while (rest > 0);
  return Buffer.from(out);
}
