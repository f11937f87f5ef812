// The one reader every codec uses (bridge, groups, lock service, totem, cman). Big-endian, as
// all of afcluster's wire formats are. Small integers are read byte by byte: no DataView per
// datagram on the per-message paths (one is made lazily for u64 and f64 only).
// Pure: memory only, so the protocol cores may use it.

/** Malformed input: the bytes ran out, bytes were left over, or a value is out of range. */
export class WireError extends Error {
  constructor(message: string, readonly kind: 'truncated' | 'trailing' | 'invalid' = 'invalid') {
    super(message);
  }
}

export class Reader {
  /** One reader that stays alive. Readers live for one datagram, and V8 forgets the shape of an
   *  object that has none alive at a full collection, throwing away the optimised code of every
   *  function that used it: under load, every decoder, several times a second (docs/BENCH.md). */
  private static readonly keepShape = new Reader(new Uint8Array(0));
  at: number;
  private dv?: DataView;

  constructor(readonly bytes: Uint8Array, start = 0) {
    this.at = start;
  }

  /** Bytes not read yet. */
  get left(): number { return this.bytes.length - this.at; }

  /** Throws a truncation WireError unless `n` more bytes are there. */
  need(n: number): void {
    if (this.at + n > this.bytes.length) throw new WireError('truncated', 'truncated');
  }

  u8(): number { this.need(1); return this.bytes[this.at++]; }

  u16(): number {
    this.need(2);
    const b = this.bytes, at = this.at;
    this.at += 2;
    return (b[at] << 8) | b[at + 1];
  }

  u32(): number {
    this.need(4);
    const b = this.bytes, at = this.at;
    this.at += 4;
    return b[at] * 0x1000000 + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);
  }

  /** 48 bits as u16 high, u32 low (sequence numbers). */
  u48(): number { const high = this.u16(); return high * 0x100000000 + this.u32(); }

  /** u64 that must stay below 2^53 (afcluster never writes more). */
  u64(): number {
    const high = this.u32();
    if (high > 0x1fffff) throw new WireError('64-bit value above 2^53');
    return high * 0x100000000 + this.u32();
  }

  f64(): number {
    this.need(8);
    const v = this.view().getFloat64(this.at);
    this.at += 8;
    return v;
  }

  /** `n` bytes as a view into the input (no copy). */
  raw(n: number): Uint8Array {
    this.need(n);
    const v = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }

  /** Everything left, as a view. */
  rest(): Uint8Array { return this.raw(this.left); }

  /** A u32 count of items of at least `itemBytes` each, refused when the input cannot hold them. */
  count32(itemBytes: number): number {
    const n = this.u32();
    if (n * itemBytes > this.left) throw new WireError('list longer than the datagram', 'truncated');
    return n;
  }

  member(): { nodeId: number; pid: number; port: number } {
    return { nodeId: this.u32(), pid: this.u32(), port: this.u32() };
  }

  /** Throws unless every byte was read. */
  end(): void {
    if (this.at !== this.bytes.length) throw new WireError(`${this.bytes.length - this.at} trailing bytes`, 'trailing');
  }

  private view(): DataView {
    this.dv ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    return this.dv;
  }
}
