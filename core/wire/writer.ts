// The one writer every codec uses. It writes into a byte array it is given (so a caller can
// write a header into room it reserved in front of a payload: no copy of the payload) or that it
// allocates from the pool (bytes.ts), or into one it grows (rare, large messages such as lock
// snapshots). Big-endian, byte by byte; a DataView only for f64. Pure: memory only.
import { allocBytesToFill } from './bytes.ts';

export class Writer {
  /** One writer that stays alive, as Reader keeps one: the encoders' optimised code outlives a
   *  full collection that finds no writer in use. */
  private static readonly keepShape = new Writer(new Uint8Array(0));
  at: number;
  private dv?: DataView;

  /** Writes into `bytes` from `start`; `growable` doubles the array when it runs out. */
  constructor(public bytes: Uint8Array, start = 0, private readonly growable = false) {
    this.at = start;
  }

  /** A writer over `size` fresh bytes, which done() insists are all written (so they need no zeroing:
   *  every method writes each byte it passes, and a writer that throws is thrown away). */
  static fixed(size: number): Writer { return new Writer(allocBytesToFill(size)); }

  /** A writer that grows as needed; done() returns the bytes written. */
  static growable(initial = 256): Writer { return new Writer(new Uint8Array(initial), 0, true); }

  u8(v: number): this { this.room(1); this.bytes[this.at++] = v; return this; }

  u16(v: number): this {
    this.room(2);
    const b = this.bytes, at = this.at;
    b[at] = v >>> 8; b[at + 1] = v;
    this.at += 2;
    return this;
  }

  u32(v: number): this {
    this.room(4);
    const b = this.bytes, at = this.at;
    b[at] = v >>> 24; b[at + 1] = v >>> 16; b[at + 2] = v >>> 8; b[at + 3] = v;
    this.at += 4;
    return this;
  }

  /** 48 bits as u16 high, u32 low. */
  u48(v: number): this { return this.u16(Math.floor(v / 0x100000000)).u32(v % 0x100000000); }

  /** Below 2^53. */
  u64(v: number): this { return this.u32(Math.floor(v / 0x100000000)).u32(v % 0x100000000); }

  f64(v: number): this {
    this.room(8);
    this.view().setFloat64(this.at, v);
    this.at += 8;
    return this;
  }

  raw(b: Uint8Array): this { this.room(b.length); this.bytes.set(b, this.at); this.at += b.length; return this; }

  /** u16 length, then the bytes. */
  str16(b: Uint8Array): this {
    if (b.length > 0xffff) throw new RangeError('wire: string longer than 65535 bytes');
    return this.u16(b.length).raw(b);
  }

  member(m: { readonly nodeId: number; readonly pid: number; readonly port: number }): this {
    return this.u32(m.nodeId).u32(m.pid).u32(m.port);
  }

  /** The bytes written: a fixed writer must have filled its array exactly (a codec bug otherwise). */
  done(): Uint8Array {
    if (this.growable) return this.bytes.slice(0, this.at);
    if (this.at !== this.bytes.length) throw new Error(`wire: wrote ${this.at} of ${this.bytes.length} bytes`);
    return this.bytes;
  }

  private room(n: number): void {
    if (this.at + n <= this.bytes.length) return;
    if (!this.growable) throw new RangeError(`wire: writing ${n} bytes at ${this.at} of ${this.bytes.length}`);
    const next = new Uint8Array(Math.max(this.bytes.length * 2, this.at + n));
    next.set(this.bytes.subarray(0, this.at));
    this.bytes = next;
    this.dv = undefined;
  }

  private view(): DataView {
    this.dv ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    return this.dv;
  }
}
