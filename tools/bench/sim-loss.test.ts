// Proves the simulator's loss curve: a row replays exactly from its seed, loss alone changes no configuration of totem, and the markdown row shows the share of the lossless rate.
import { describe, expect, test } from 'vitest';
import { builtinRegistry } from '../../drivers/builtin.ts';
import { formatLossRow, simLoss, type SimLossRow } from './sim-loss.ts';

const totem = builtinRegistry().get('totem');
const row = (loss: number): SimLossRow => simLoss({ driver: totem, nodes: 3, size: 1300, loss, mtu: 1444, windowMs: 100, pings: 10, seed: 7 });

describe('sim --loss-curve', () => {
  test('same seed, same row; 5% loss delivers every lone message and changes no configuration', () => {
    const a = row(0.05);
    expect(row(0.05)).toEqual(a);
    expect(a.pingsLost).toBe(0);
    expect(a.confChanges).toBe(0);
    expect(a.tpPerSec).toBeGreaterThan(0);
  });

  test('a markdown row with the share of the lossless rate', () => {
    const lossless = { ...row(0), tpPerSec: 1000 };
    const r: SimLossRow = { ...lossless, loss: 0.2, tpPerSec: 250, mbPerSec: 0.325, pingsLost: 2 };
    const cells = formatLossRow(r, lossless).split('|').map((c) => c.trim());
    expect(cells.slice(1, 7)).toEqual(['totem', '1300', '20%', '250', '0.33', '25.0%']);
    expect(formatLossRow(r, lossless)).toContain('(2 lost)');
  });
});
