// The [totem] config section: every timer and limit, with a default and a stated range.
// Defaults follow corosync's LAN values (docs/TOTEM.md, "Timers") scaled for a
// modern LAN; docs/drivers/totem.md gives a fast profile for loopback.
import { z } from 'zod';
import { framesWithin } from '../../core/driver/packing.ts';

/** Parsed [totem] section, camelCase with the unit last. */
export interface TotemOptions {
  readonly tokenMs: number;
  readonly tokenRetransmitMs: number;
  readonly tokenRetransmitMinMs: number;
  readonly tokenCopiesOnLoss: number;
  readonly holdMs: number;
  readonly parkMs: number;
  readonly consensusMs: number;
  readonly joinMs: number;
  readonly mergeMs: number;
  readonly failRecvConst: number;
  readonly seqnoUnchangedConst: number;
  readonly windowSize: number;
  readonly maxMessages: number;
  readonly windowBytes: number;
  readonly missCountConst: number;
  readonly sendQueueMax: number;
  readonly sendQueueBytesMax: number;
  readonly retransmitListMax: number;
  readonly outstandingMax: number;
  readonly partialBytesMax: number;
  readonly acceleratedWindow: number;
}

const MIB = 1024 * 1024;
const int = (min: number, max: number, def: number) => z.number().int().min(min).max(max).default(def);

/** TOML keys (snake_case). Strict: an unknown key is an error, not silently ignored. */
const section = z.strictObject({
  token_ms: int(10, 600_000, 1000).meta({ doc: 'Token loss timeout: no token for this long and the ring is declared broken (GATHER).' }),
  token_retransmit_ms: int(1, 60_000, 238).meta({ doc: 'The longest wait before the last token sent is re-sent (until a newer one comes back); the commit token is re-sent at this interval.' }),
  token_retransmit_min_ms: z.number().min(0.1).max(60_000).default(1).meta({ doc: 'The shortest wait before the last token is re-sent: the wait is twice the median of the ring\'s recent rotations, within this floor and token_retransmit_ms, doubling at each re-send of one token. Set it to token_retransmit_ms for a fixed interval.' }),
  token_copies_on_loss: int(1, 4, 2).meta({ doc: 'Copies of each token sent while the ring shows loss (token re-sends or retransmission requests in the last 64 visits); 1 sends one always.' }),
  hold_ms: int(0, 60_000, 180).meta({ doc: 'On an idle ring the representative holds the token this long per rotation.' }),
  park_ms: z.number().min(0).max(60_000).default(1).meta({ doc: 'A lone sender\'s token: after a visit that sent a single agreed message, this node\'s last queued, on a ring where no other node sent or queued anything for 8 visits, the token waits here up to this long for the node\'s next message, which then goes at once instead of a rotation later (a run of such waits ends at max_messages frames or a quarter of token_ms); a node that wants the token meanwhile gets it by a hold cancel. 0 forwards it at once; set 0 while a running cluster is upgraded from a version without it. The timer\'s resolution is a millisecond.' }),
  consensus_ms: int(10, 600_000, 1200).meta({ doc: 'GATHER gives nodes that have not agreed this long before declaring them failed.' }),
  join_ms: int(1, 60_000, 50).meta({ doc: 'Interval between join messages in GATHER.' }),
  merge_ms: int(1, 600_000, 200).meta({ doc: 'An idle ring\'s representative announces its ring this often, so rings find each other.' }),
  fail_recv_const: int(2, 100_000, 2500).meta({ doc: 'Visits with aru stuck at this node before it declares itself unable to receive.' }),
  seqno_unchanged_const: int(1, 100_000, 5).meta({ doc: 'Idle rotations before the representative starts holding the token.' }),
  window_size: int(1, 10_000, 50).meta({ doc: 'Messages (frames) the whole ring may send in one rotation.' }),
  max_messages: int(1, 10_000, 17).meta({ doc: 'Messages (frames) one node may send in one visit of the token.' }),
  window_bytes: int(64 * 1024, 1024 * MIB, MIB).meta({ doc: 'Bytes the whole ring may send in one rotation: with large frames (a large MTU) window_size is lowered to fit, and max_messages to at most window_size.' }),
  miss_count_const: int(1, 1000, 2).meta({ doc: 'Visits a gap must be seen before it is requested (messages may still be in flight).' }),
  send_queue_max: int(1, 1_000_000, 2048).meta({ doc: 'Application messages queued before multicast returns EAGAIN.' }),
  send_queue_bytes_max: int(1024, 1024 * MIB, 4 * MIB).meta({ doc: 'Bytes queued before multicast returns EAGAIN.' }),
  retransmit_list_max: int(1, 1000, 30).meta({ doc: 'Entries in the token\'s retransmission request list.' }),
  outstanding_max: int(8, 1_000_000, 500).meta({ doc: 'Frames a ring may have sent but not yet known received by all (seq - aru).' }),
  partial_bytes_max: int(1024, 1024 * MIB, 8 * MIB).meta({ doc: 'Bytes of partly reassembled large messages across all senders, counted as the sizes their first fragments announce (the frames the fragments arrived in stay in memory meanwhile, up to 64 per message).' }),
  accelerated_window: int(0, 10_000, 0).meta({ doc: 'Accelerated Ring: frames of a visit multicast after the token is forwarded (0 = classic).' }),
}).refine((o) => o.token_retransmit_ms < o.token_ms, {
  message: 'token_retransmit_ms must be below token_ms, or a lost token is never re-sent in time',
  path: ['token_retransmit_ms'],
}).refine((o) => o.token_retransmit_min_ms <= o.token_retransmit_ms, {
  message: 'token_retransmit_min_ms must be at most token_retransmit_ms', path: ['token_retransmit_min_ms'],
}).refine((o) => o.consensus_ms > o.join_ms, {
  message: 'consensus_ms must exceed join_ms, or consensus times out before a join is re-sent',
  path: ['consensus_ms'],
}).refine((o) => o.max_messages <= o.window_size, {
  message: 'max_messages must be at most window_size', path: ['max_messages'],
}).refine((o) => o.window_size <= o.outstanding_max, {
  message: 'outstanding_max must be at least window_size', path: ['outstanding_max'],
}).refine((o) => o.park_ms < o.token_ms / 2, {
  message: 'park_ms must be below half of token_ms, or a parked token looks lost', path: ['park_ms'],
}).refine((o) => o.hold_ms < o.token_ms / 2, {
  message: 'hold_ms must be below half of token_ms, or a held token looks lost', path: ['hold_ms'],
});

export const totemOptionsSchema = section.transform((o): TotemOptions => ({
  tokenMs: o.token_ms,
  tokenRetransmitMs: o.token_retransmit_ms,
  tokenRetransmitMinMs: o.token_retransmit_min_ms,
  tokenCopiesOnLoss: o.token_copies_on_loss,
  holdMs: o.hold_ms,
  parkMs: o.park_ms,
  consensusMs: o.consensus_ms,
  joinMs: o.join_ms,
  mergeMs: o.merge_ms,
  failRecvConst: o.fail_recv_const,
  seqnoUnchangedConst: o.seqno_unchanged_const,
  windowSize: o.window_size,
  maxMessages: o.max_messages,
  windowBytes: o.window_bytes,
  missCountConst: o.miss_count_const,
  sendQueueMax: o.send_queue_max,
  sendQueueBytesMax: o.send_queue_bytes_max,
  retransmitListMax: o.retransmit_list_max,
  outstandingMax: o.outstanding_max,
  partialBytesMax: o.partial_bytes_max,
  acceleratedWindow: o.accelerated_window,
}));

/**
 * The window in frames for frames of `frameBytes`: window_size, lowered so that a rotation
 * carries at most window_bytes (at MTU 1500 the bound is far off: 50 frames are 70 KiB; at 65535
 * it gives 16 frames of 64 KiB), and max_messages at most that. A receiver's socket buffer holds
 * about a rotation, so a window of 3.2 MiB would overflow it. max_messages is not cut further:
 * a node alone with a backlog may fill the window, and busy nodes share it (allowance()).
 */
export function frameWindow(o: TotemOptions, frameBytes: number): { readonly windowSize: number; readonly maxMessages: number } {
  const windowSize = framesWithin(o.windowBytes, frameBytes, o.windowSize);
  return { windowSize, maxMessages: Math.min(o.maxMessages, windowSize) };
}

/** The fast profile for loopback and the simulator (docs/drivers/totem.md). */
export const FAST_PROFILE = {
  token_ms: 200, token_retransmit_ms: 30, hold_ms: 20, consensus_ms: 240, join_ms: 15,
  merge_ms: 60, fail_recv_const: 50, miss_count_const: 2, seqno_unchanged_const: 3,
} as const;
