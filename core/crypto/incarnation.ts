// A node's incarnation: the number every datagram of this run of the node carries, chosen at
// start so that it grows across restarts. Receivers drop datagrams of an incarnation older than
// the newest they saw from the node, so it must never go back, and a restarted node must be
// accepted at once, so it must go up.
//
// incarnation = max(wall clock in ms, last incarnation + 1), saved durably before the node sends:
// - the wall clock keeps it growing when node.state_dir is lost (a new disk, a wiped directory);
// - the saved value keeps it growing when the wall clock is stepped back (NTP, a wrong RTC at
//   boot), and absorbs a clock set far ahead once: later starts continue from there.
// Only losing both at once (state_dir gone and the clock behind the last start) makes a restarted
// node's datagrams look stale to peers that remember it; they say so in their log and forget it
// when they restart.
import type { StateStore } from '../driver/types.ts';

/** The state key (a file in node.state_dir). */
export const INCARNATION_STATE_KEY = 'incarnation';
/** Incarnations and sequence numbers travel as u48. */
export const U48_MAX = 2 ** 48 - 1;

/** Chooses this start's incarnation and saves it (durably: StateStore.save returns once it is). */
export function nextIncarnation(state: StateStore, wallClockMs: number): number {
  const saved = state.load(INCARNATION_STATE_KEY);
  // A torn or foreign file cannot happen with the store's atomic saves; if it does, the clock decides.
  const last = saved && saved.length === 8 ? new DataView(saved.buffer, saved.byteOffset, 8).getFloat64(0) : -1;
  const prev = Number.isInteger(last) && last >= 0 && last < U48_MAX ? last : -1;
  const inc = Math.max(Math.floor(wallClockMs), prev + 1);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, inc);
  state.save(INCARNATION_STATE_KEY, out);
  return inc;
}
