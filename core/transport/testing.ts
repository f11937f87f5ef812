// Helpers for tests that use real UDP on loopback: a free port, and waiting for a condition.
import dgram from 'node:dgram';

/** A UDP port free on 127.0.0.1 right now (the kernel's pick); likely free on 127.0.0.N too. */
export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/**
 * Polls until `cond()` holds. The limit only stops a hung test: what the test asserts is the
 * condition, never how fast it came.
 */
export async function waitFor(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > limitMs) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
