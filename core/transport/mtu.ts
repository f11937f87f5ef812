// cluster.mtu = "auto": the MTU of the network interface that holds the node's address, read
// once at start, as a kernel-level transport (knet) learns its path MTU. On loopback that is
// 65536 (capped to the 65535 an IP packet can carry), so frames are 64 KiB and a large message
// costs one datagram per 64 KiB instead of one per 1.4 KiB; on a LAN it is 1500, or 9000 with
// jumbo frames. Every node of a cluster must see the same MTU (one network segment does).
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';

/** The MTU used when "auto" finds no interface (an address not on this host, a wildcard). */
export const MTU_FALLBACK = 1500;
/** The largest IP packet: a larger interface MTU (loopback's 65536) still carries at most this. */
export const MTU_MAX = 65535;

export interface InterfaceAddress {
  readonly address: string;
  readonly netmask: string;
  readonly family: string;
}

export interface ResolvedMtu {
  readonly mtu: number;
  /** Where the figure came from: "configured", "interface lo", or why the fallback was used. */
  readonly source: string;
}

/** The bytes of an IPv4 or IPv6 literal (IPv4-mapped IPv6 as IPv4), or undefined. */
function addressBytes(addr: string): number[] | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  if (mapped) addr = mapped[1];
  if (isIPv4(addr)) return addr.split('.').map(Number);
  if (!isIPv6(addr)) return undefined;
  const bare = addr.replace(/%.*$/, '');
  const [head, tail] = bare.includes('::') ? bare.split('::') : [bare, undefined];
  const words = (s: string | undefined) => (s ? s.split(':') : []);
  const h = words(head);
  const t = words(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.flatMap((w) => { const v = parseInt(w, 16); return [v >> 8, v & 0xff]; });
}

/** Is `addr` in the subnet of `iface` (its address under its netmask)? */
export function inSubnet(addr: string, iface: InterfaceAddress): boolean {
  const a = addressBytes(addr);
  const b = addressBytes(iface.address);
  const m = addressBytes(iface.netmask);
  if (!a || !b || !m || a.length !== b.length || b.length !== m.length) return false;
  return a.every((byte, i) => (byte & m[i]) === (b[i] & m[i]));
}

/**
 * The interface that holds `addr`: the one with that exact address, else the one whose subnet
 * contains it (127.0.0.2 is loopback's though only 127.0.0.1 is listed).
 */
export function interfaceOf(addr: string, ifaces: Readonly<Record<string, readonly InterfaceAddress[] | undefined>>): string | undefined {
  const want = addressBytes(addr)?.join();
  if (want === undefined) return undefined; // not an IP literal
  const entries = Object.entries(ifaces);
  for (const [name, list] of entries) if (list?.some((i) => addressBytes(i.address)?.join() === want)) return name;
  for (const [name, list] of entries) if (list?.some((i) => inSubnet(addr, i))) return name;
  return undefined;
}

/** cluster.mtu as configured (a number) or found ("auto"), with where it came from. */
export function resolveMtu(configured: number | 'auto', addr: string,
  readMtu: (iface: string) => number = (iface) => Number(readFileSync(`/sys/class/net/${iface}/mtu`, 'utf8').trim()),
  ifaces: Readonly<Record<string, readonly InterfaceAddress[] | undefined>> = networkInterfaces()): ResolvedMtu {
  if (configured !== 'auto') return { mtu: configured, source: 'configured' };
  const name = interfaceOf(addr, ifaces);
  if (name === undefined) return { mtu: MTU_FALLBACK, source: `no interface of this host holds ${addr}: ${MTU_FALLBACK} assumed` };
  let mtu: number;
  try {
    mtu = readMtu(name);
  } catch (e) {
    return { mtu: MTU_FALLBACK, source: `the MTU of interface ${name} is unreadable (${(e as Error).message}): ${MTU_FALLBACK} assumed` };
  }
  if (!Number.isInteger(mtu) || mtu < 576) return { mtu: MTU_FALLBACK, source: `interface ${name} reports MTU ${mtu}: ${MTU_FALLBACK} assumed` };
  return { mtu: Math.min(mtu, MTU_MAX), source: `interface ${name}` };
}
