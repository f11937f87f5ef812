// The sends (and the parts of large ones) a socket has in flight to its daemon, by request id, in
// the order they were sent.
//
// A ring of two arrays, not a Map: a Map that takes one entry and drops another per message
// rehashes into a new table every few hundred of them, and the table, alive when the next
// scavenge comes, is promoted. With one sender at 100 B those tables were two thirds of the bytes
// the sending client's scavenges promoted (1.8 MB each), and its scavenges took 4 ms against
// 0.4 in a client that only receives (docs/BENCH.md, "The sends in flight without a Map").
//
// Ids increase (modulo 2^32) in the order entries are added: the socket allocates each one just
// before it sends. Replies come in that order too, so the one answered is nearly always the
// oldest; one answered out of order (a reply lost, an entry timed out) leaves a hole that the
// head steps over once everything before it is answered, and that a full ring drops when it copies
// its entries together. Lookups are a binary search over the positions between the oldest entry
// and the newest.

export class Inflight<T> {
  private ids: Uint32Array;
  private items: (T | undefined)[];
  private mask: number;
  /** Positions, not indices: the entry at position p is at index p & mask; head is the oldest
   *  entry still in flight (none when head === tail). */
  private head = 0;
  private tail = 0;
  private live = 0;

  /** `capacity`: a power of two, the positions between the oldest entry and the newest it holds
   *  (answered ones in between included). When they run out, the entries still in flight are
   *  moved together, into twice the room only when they fill over half of it: one reply that
   *  never comes holds the head until its timeout, and the room stays within about twice the
   *  most entries ever in flight at once. */
  constructor(capacity = 1024) {
    if (!Number.isInteger(Math.log2(capacity)) || capacity < 1) throw new RangeError(`capacity ${capacity}: expected a power of two`);
    this.ids = new Uint32Array(capacity);
    this.items = new Array<T | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
  }

  /** Entries in flight. */
  get size(): number { return this.live; }

  /** The positions it has room for now. */
  get capacity(): number { return this.items.length; }

  /** Adds the entry sent last: `id` follows every id in flight (modulo 2^32). */
  push(id: number, item: T): void {
    if (this.tail - this.head === this.items.length) this.compact();
    const i = this.tail & this.mask;
    this.ids[i] = id;
    this.items[i] = item;
    this.tail++;
    this.live++;
  }

  has(id: number): boolean {
    return this.find(id) >= 0;
  }

  /** Removes the entry with this id and returns it (undefined when none is in flight). */
  take(id: number): T | undefined {
    const p = this.find(id);
    if (p < 0) return undefined;
    const i = p & this.mask;
    const item = this.items[i];
    this.items[i] = undefined;
    this.live--;
    this.skipAnswered();
    return item;
  }

  /** The oldest entry in flight and its id, or undefined. */
  oldest(): { readonly id: number; readonly item: T } | undefined {
    if (this.live === 0) return undefined;
    const i = this.head & this.mask;
    return { id: this.ids[i], item: this.items[i] as T };
  }

  /** Every entry in flight, oldest first. */
  values(): T[] {
    const out: T[] = [];
    for (let p = this.head; p < this.tail; p++) {
      const item = this.items[p & this.mask];
      if (item !== undefined) out.push(item);
    }
    return out;
  }

  clear(): void {
    this.items.fill(undefined);
    this.head = this.tail = this.live = 0;
  }

  /** The position of the entry with this id, or -1. */
  private find(id: number): number {
    if (this.live === 0) return -1;
    const first = this.ids[this.head & this.mask];
    const want = (id - first) >>> 0; // how far past the oldest id, modulo 2^32
    if (want === 0) return this.head; // the usual answer: replies come in order (the head is never a hole)
    let lo = this.head, hi = this.tail - 1;
    while (lo <= hi) {
      const mid = lo + ((hi - lo) >>> 1);
      const at = (this.ids[mid & this.mask] - first) >>> 0;
      if (at === want) return this.items[mid & this.mask] === undefined ? -1 : mid;
      if (at < want) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  }

  /** The head moves past entries already answered (all of them when none is left). */
  private skipAnswered(): void {
    if (this.live === 0) { this.head = this.tail = 0; return; }
    while (this.items[this.head & this.mask] === undefined) this.head++;
  }

  /** The entries in flight moved together, in order: into new arrays of twice the room when they
   *  fill over half of it, else forward in these (each moves to a position before its own, so
   *  none is overwritten before it is moved). */
  private compact(): void {
    if (this.live * 2 > this.items.length) { this.grow(); return; }
    let w = this.head;
    for (let p = this.head; p < this.tail; p++) {
      const i = p & this.mask;
      const item = this.items[i];
      if (item === undefined) continue;
      if (w !== p) {
        const j = w & this.mask;
        this.ids[j] = this.ids[i];
        this.items[j] = item;
        this.items[i] = undefined;
      }
      w++;
    }
    this.tail = w;
  }

  private grow(): void {
    const room = this.items.length * 2;
    const ids = new Uint32Array(room);
    const items = new Array<T | undefined>(room).fill(undefined);
    let n = 0;
    for (let p = this.head; p < this.tail; p++) {
      const item = this.items[p & this.mask];
      if (item === undefined) continue;
      ids[n] = this.ids[p & this.mask];
      items[n++] = item;
    }
    this.ids = ids;
    this.items = items;
    this.mask = room - 1;
    this.head = 0;
    this.tail = n;
  }
}
