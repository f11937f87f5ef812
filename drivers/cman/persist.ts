// What the cman driver keeps across restarts (StateStore key 'cman'): the incarnation, so that
// peers tell a restarted node from its old self, and the last ring seq, so that ring seqs keep
// increasing at this node. Layout: u8 version, u32 incarnation, f64 ring seq (an integer < 2^53).
import type { StateStore } from '../../core/driver/types.ts';

const KEY = 'cman';
const VERSION = 1;
const BYTES = 13;

export interface Persisted {
  readonly incarnation: number;
  readonly ringSeq: number;
}

export function loadPersisted(store: StateStore): Persisted {
  const b = store.load(KEY);
  if (!b || b.length !== BYTES || b[0] !== VERSION) return { incarnation: 0, ringSeq: 0 };
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ringSeq = view.getFloat64(5);
  if (!Number.isSafeInteger(ringSeq) || ringSeq < 0) return { incarnation: view.getUint32(1), ringSeq: 0 };
  return { incarnation: view.getUint32(1), ringSeq };
}

export function savePersisted(store: StateStore, p: Persisted): void {
  const b = new Uint8Array(BYTES);
  const view = new DataView(b.buffer);
  b[0] = VERSION;
  view.setUint32(1, p.incarnation >>> 0);
  view.setFloat64(5, p.ringSeq);
  store.save(KEY, b);
}
