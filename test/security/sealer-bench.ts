// Micro benchmark of the per-datagram sealing path: ns per seal and per open, with and without a
// key, at a small and a full-frame payload. Prints; asserts nothing (not a test: CI never runs
// it). Run: npx tsx test/security/sealer-bench.ts [--rounds N] [--against PATH/TO/OTHER/sealer.ts]
// With --against, the rounds of both sealers alternate in one process, so a busy machine slows
// both alike (an older sealer takes the new arguments and ignores what it does not know).
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as current from '../../core/crypto/sealer.ts';

type SealerModule = Pick<typeof current, 'createSealer' | 'cryptoReady'>;

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '9' }, against: { type: 'string' } } });
const ROUNDS = Number(values.rounds);
const key = randomBytes(32);
const nodes = [1, 2, 3];

const modules: Array<[string, SealerModule]> = [['this', current]];
if (values.against) modules.unshift(['other', await import(pathToFileURL(resolve(values.against)).href) as SealerModule]);
for (const [, m] of modules) await m.cryptoReady();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** One round: n seals by node 1, then n opens by node 2 (fresh sealers: every datagram is new). */
function round(m: SealerModule, encrypted: boolean, payload: Uint8Array, n: number): [number, number] {
  const base = { clusterName: 'bench', nodes, incarnation: 1, ...(encrypted ? { key } : {}) };
  const tx = m.createSealer({ ...base, nodeId: 1 });
  const rx = m.createSealer({ ...base, nodeId: 2 });
  const sealed: Uint8Array[] = new Array(n);
  let t = performance.now();
  for (let i = 0; i < n; i++) sealed[i] = tx.seal(payload, 0);
  const seal = ((performance.now() - t) * 1e6) / n;
  let ok = 0;
  t = performance.now();
  for (let i = 0; i < n; i++) if (rx.open(sealed[i], 1) !== undefined) ok++;
  const open = ((performance.now() - t) * 1e6) / n;
  if (ok !== n) throw new Error(`opened ${ok} of ${n}`);
  return [seal, open];
}

console.log(`sealer micro benchmark: median of ${ROUNDS} rounds, ns per datagram`);
console.log(`${'sealer'.padEnd(7)} ${'mode'.padEnd(10)} bytes    seal    open`);
for (const encrypted of [false, true]) {
  for (const [size, n] of [[100, 100_000], [1400, 20_000]] as const) {
    const payload = randomBytes(size);
    const times = modules.map(() => ({ seal: [] as number[], open: [] as number[] }));
    for (const [, m] of modules) round(m, encrypted, payload, Math.min(n, 5000)); // warm up
    for (let r = 0; r < ROUNDS; r++) {
      modules.forEach(([, m], i) => {
        const [s, o] = round(m, encrypted, payload, n);
        times[i].seal.push(s);
        times[i].open.push(o);
      });
    }
    modules.forEach(([label], i) => {
      console.log(`${label.padEnd(7)} ${(encrypted ? 'sealed' : 'plaintext').padEnd(10)} ${String(size).padStart(5)} ${median(times[i].seal).toFixed(0).padStart(7)} ${median(times[i].open).toFixed(0).padStart(7)}`);
    });
  }
}
