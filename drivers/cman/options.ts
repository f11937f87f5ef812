// The [cman] config section: every key has a default and a stated range.
import { z } from 'zod';
import { framesWithin } from '../../core/driver/packing.ts';

/** Parsed [cman] section, camelCase with the unit last. */
export interface CmanOptions {
  readonly ackTimeoutMs: number;
  readonly ackDelayMs: number;
  readonly resendMax: number;
  readonly heartbeatMs: number;
  readonly deadAfterMissed: number;
  readonly windowMax: number;
  readonly windowBytes: number;
  readonly queueMessagesMax: number;
  readonly queueBytesMax: number;
  readonly partialBytesMax: number;
  readonly serveAgreedAsFifo: boolean;
}

const MIB = 1024 * 1024;

/** TOML keys (snake_case). Strict: an unknown key is an error, not silently ignored. */
const section = z.strictObject({
  ack_timeout_ms: z.number().int().min(10).max(60_000).default(200).meta({ doc: 'A frame not acked by some member within this time is resent to that member.' }),
  ack_delay_ms: z.number().int().min(0).max(1000).default(0).meta({ doc: 'Receivers hold acks this long to batch them (0 = at the end of the current event).' }),
  resend_max: z.number().int().min(1).max(1000).default(30).meta({ doc: 'Resends of one frame to one member before that member is declared down.' }),
  heartbeat_ms: z.number().int().min(10).max(60_000).default(250).meta({ doc: 'Interval between heartbeats.' }),
  dead_after_missed: z.number().int().min(2).max(100).default(4).meta({ doc: 'Heartbeat intervals without hearing a node before it is declared down.' }),
  window_max: z.number().int().min(1).max(4096).default(64).meta({ doc: 'Data frames a sender may have unacked at once.' }),
  window_bytes: z.number().int().min(64 * 1024).max(1024 * MIB).default(MIB).meta({ doc: 'Bytes a sender may have unacked at once: with large frames (a large MTU) window_max is lowered to fit.' }),
  queue_messages_max: z.number().int().min(1).max(1_000_000).default(1024).meta({ doc: 'Messages waiting for window room before multicast returns EAGAIN.' }),
  queue_bytes_max: z.number().int().min(1024).max(1024 * MIB).default(4 * MIB).meta({ doc: 'Bytes waiting for window room before multicast returns EAGAIN.' }),
  partial_bytes_max: z.number().int().min(1024).max(1024 * MIB).default(8 * MIB).meta({ doc: 'Bytes of partly reassembled large messages across all senders, counted as the sizes their first fragments announce (the frames the fragments arrived in stay in memory meanwhile, up to 64 per message).' }),
  serve_agreed_as_fifo: z.boolean().default(true).meta({ doc: 'Accept \'agreed\' sends and serve them in FIFO order (reported as \'fifo\'); false = EOPNOTSUPP.' }),
}).refine((o) => o.ack_delay_ms * 2 <= o.ack_timeout_ms, {
  message: 'ack_delay_ms must be at most half of ack_timeout_ms, or every frame is resent',
  path: ['ack_delay_ms'],
});

export const cmanOptionsSchema = section.transform((o): CmanOptions => ({
  ackTimeoutMs: o.ack_timeout_ms,
  ackDelayMs: o.ack_delay_ms,
  resendMax: o.resend_max,
  heartbeatMs: o.heartbeat_ms,
  deadAfterMissed: o.dead_after_missed,
  windowMax: o.window_max,
  windowBytes: o.window_bytes,
  queueMessagesMax: o.queue_messages_max,
  queueBytesMax: o.queue_bytes_max,
  partialBytesMax: o.partial_bytes_max,
  serveAgreedAsFifo: o.serve_agreed_as_fifo,
}));

/** window_max for frames of `frameBytes`, lowered so that a sender's unacked frames are at most
 *  window_bytes (64 frames of 1.4 KiB are 90 KiB; of 64 KiB, 4 MiB: more than a receiver's socket
 *  buffer holds). Sender and receivers compute it alike from the same configuration. */
export function frameWindowMax(o: CmanOptions, frameBytes: number): number {
  return framesWithin(o.windowBytes, frameBytes, o.windowMax);
}
