/**
 * Encodes an MQTT 3.1.1 PUBLISH packet. edgeHub's server-to-module publishes are written straight
 * to the client's socket instead of going through aedes' publish path: that way nothing ever
 * enters the broker's fan-out, and we choose the packet identifier, so a PUBACK can be matched
 * to the input delivery waiting for it.
 *
 * @param messageId - required for QoS 1 (1..65535).
 * @throws RangeError when the topic is longer than 65535 bytes or the id is out of range.
 */
export function encodePublish(topic: string, payload: Buffer, qos: 0 | 1, messageId?: number): Buffer {
  const topicBytes = Buffer.from(topic, 'utf8');
  if (topicBytes.length > 0xffff) throw new RangeError('MQTT topic longer than 65535 bytes');
  if (qos === 1 && (messageId === undefined || messageId < 1 || messageId > 0xffff))
    throw new RangeError('QoS 1 publish needs a messageId in 1..65535');
  const remaining = 2 + topicBytes.length + (qos === 1 ? 2 : 0) + payload.length;
  const header = Buffer.alloc(1 + varIntLength(remaining) + 2 + topicBytes.length + (qos === 1 ? 2 : 0));
  let at = 0;
  header[at++] = 0x30 | (qos << 1);
  let rest = remaining;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    header[at++] = byte;
  } while (rest > 0);
  header.writeUInt16BE(topicBytes.length, at);
  at += 2;
  topicBytes.copy(header, at);
  at += topicBytes.length;
  if (qos === 1) header.writeUInt16BE(messageId as number, at);
  return Buffer.concat([header, payload]);
}

function varIntLength(n: number): number {
  if (n < 128) return 1;
  if (n < 16_384) return 2;
  if (n < 2_097_152) return 3;
  if (n < 268_435_456) return 4;
  throw new RangeError('MQTT packet larger than 256 MiB');
}
