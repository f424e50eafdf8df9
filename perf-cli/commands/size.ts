import Table from 'cli-table3';
import { Command } from 'commander';
import { action, intInRange, numberInRange } from '../cli-errors.js';
import {
  DEFAULT_OVERHEAD_BYTES_PER_MESSAGE,
  DEFAULT_USABLE_DISK_FRACTION,
  formatBytes,
  formatDuration,
  type QueueSizing,
  sizeQueues,
} from '../manifest/sizing.js';

interface SizeFlags {
  readonly rate: number;
  readonly payloadLength: number;
  readonly ttlSecs: number;
  readonly queues: number;
  readonly recordsPerMessage: number;
  readonly overheadBytes: number;
  readonly diskGb?: number;
  readonly usableFraction: number;
  readonly json: boolean;
}

/** The human table of a sizing. */
export function renderSizing(s: QueueSizing): string {
  const t = new Table({ style: { head: [], border: [] } });
  t.push(
    [
      'inputs',
      `${s.ratePerSec} msg/s × ${s.payloadLength} B × ${s.ttlSecs} s (${formatDuration(s.ttlSecs)}) × ${s.queues} queue(s)`,
    ],
    [
      'stored messages',
      `${s.storedMessagesPerSec.toFixed(1)}/s per queue (${s.recordsPerMessage} record(s) each), ${Math.round(s.messagesPerQueue)} per queue at the end of the TTL`,
    ],
    ['payload (rule of #835)', formatBytes(s.payloadBytes)],
    [
      'overhead',
      `${formatBytes(s.overheadBytes)} (${s.overheadBytesPerMessage} B per stored message, an estimate)`,
    ],
    ['disk, worst case', `${formatBytes(s.diskBytes)} (uplink down for the whole TTL)`],
    [
      'RAM, in-memory store',
      `${formatBytes(s.ramBytes)} (UsePersistentStorage=false; .NET object overhead not counted)`,
    ],
    ['growth during an outage', `${formatBytes(s.bytesPerSec)}/s`],
  );
  if (s.diskSizeBytes !== undefined && s.maxTtlSecs !== undefined) {
    t.push(
      [
        'disk',
        `${formatBytes(s.diskSizeBytes)}, ${Math.round((s.usableDiskFraction ?? 0) * 100)}% usable = ${formatBytes(s.usableDiskBytes ?? 0)}`,
      ],
      ['fits', s.fits ? 'yes' : 'NO'],
      ['longest TTL that fits', `${s.maxTtlSecs} s (${formatDuration(s.maxTtlSecs)})`],
    );
  }
  return `${t.toString()}\nGB = 10^9 bytes, GiB = 2^30 bytes.\n`;
}

/** `edgeperf size`: worst-case disk and RAM of edgeHub's queues, and the longest TTL a disk holds. */
export function sizeCommand(): Command {
  return new Command('size')
    .description(
      "Size edgeHub's store-and-forward queues for an outage as long as the TTL: rate × size × TTL per endpoint+priority queue (Azure/iotedge#835) plus per-message overhead.",
    )
    .requiredOption('--rate <msg/s>', 'source messages per second, 0–1000000', numberInRange(0, 1_000_000))
    .option('--payload-length <bytes>', 'bytes per source message, 1–262144', intInRange(1, 262_144), 1024)
    .option('--ttl-secs <s>', 'time to live in seconds, 0–4294967295', intInRange(0, 4_294_967_295), 7200)
    .option(
      '--queues <n>',
      'endpoint+priority queues each receiving the whole rate, 1–100',
      intInRange(1, 100),
      1,
    )
    .option(
      '--records-per-message <n>',
      'source messages per stored message (application batching), 1–100000',
      intInRange(1, 100_000),
      1,
    )
    .option(
      '--overhead-bytes <bytes>',
      'storage overhead per stored message, 0–65536 (an estimate)',
      intInRange(0, 65_536),
      DEFAULT_OVERHEAD_BYTES_PER_MESSAGE,
    )
    .option(
      '--disk-gb <GB>',
      'disk size in GB (10^9 bytes), 0.001–1000000: prints whether it fits and the longest TTL that does',
      numberInRange(0.001, 1_000_000),
    )
    .option(
      '--usable-fraction <f>',
      'share of the disk the queues may fill, 0.01–1',
      numberInRange(0.01, 1),
      DEFAULT_USABLE_DISK_FRACTION,
    )
    .option('--json', 'print one JSON object', false)
    .action(
      action(async (flags: SizeFlags) => {
        const s = sizeQueues({
          ratePerSec: flags.rate,
          payloadLength: flags.payloadLength,
          ttlSecs: flags.ttlSecs,
          queues: flags.queues,
          recordsPerMessage: flags.recordsPerMessage,
          overheadBytesPerMessage: flags.overheadBytes,
          ...(flags.diskGb !== undefined
            ? { diskGb: flags.diskGb, usableDiskFraction: flags.usableFraction }
            : {}),
        });
        process.stdout.write(flags.json ? `${JSON.stringify(s)}\n` : renderSizing(s));
      }),
    );
}
