// Random datagram loss for `afcluster bench --loss`: an iptables rule on the loopback INPUT chain
// that drops the cluster's UDP datagrams (its one port, on which every daemon listens at its own
// 127.0.0.N) with a given probability (`-m statistic --mode random`), as a lossy network would.
// Every copy is dropped independently at its receiver, like the simulator's loss. The rule is
// always removed: when the measurement ends, on an error, and at exit (Ctrl-C included).
import { execFileSync } from 'node:child_process';
import { UsageError } from '../command.ts';
import { atExit } from './proc.ts';

/** Marks our rules, so that a rule is never confused with another's. */
export const RULE_COMMENT = 'afcluster-bench-loss';

/** `--loss 0,5,20`: loss rates in percent, 0 <= P < 100, into ascending probabilities (pure). */
export function parseLoss(value: string): number[] {
  const items = value.split(',').map((s) => s.trim());
  const out = items.map((s) => {
    const p = Number(s);
    if (s === '' || !Number.isFinite(p) || p < 0 || p >= 100) {
      throw new UsageError(`--loss ${value}: expected loss rates in percent from 0 to below 100, e.g. 0,5,20`);
    }
    return p / 100;
  });
  if (new Set(out).size !== out.length) throw new UsageError(`--loss ${value}: a rate is listed twice`);
  return out.sort((a, b) => a - b);
}

/** iptables arguments that insert (-I) or delete (-D) the rule for `port` (pure). */
export function lossRuleArgs(op: '-I' | '-D', port: number, probability: number): string[] {
  if (!(probability > 0 && probability < 1)) throw new RangeError(`loss probability ${probability}: expected 0 < p < 1`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`port ${port}: expected 1..65535`);
  return [
    '-w', op, 'INPUT', '-i', 'lo', '-p', 'udp', '--dport', String(port),
    '-m', 'statistic', '--mode', 'random', '--probability', probability.toFixed(6),
    '-m', 'comment', '--comment', RULE_COMMENT, '-j', 'DROP',
  ];
}

export interface IptablesRunner {
  (args: readonly string[]): void;
}

const runIptables: IptablesRunner = (args) => {
  execFileSync('iptables', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
};

/** Refuses early, with what to do, when loss cannot be made here: not root, or no iptables. */
export function checkLossPossible(run: IptablesRunner = runIptables, uid = process.getuid?.() ?? -1): void {
  if (uid !== 0) {
    throw new UsageError('--loss drops datagrams with an iptables rule on loopback, which needs root: run the bench as root (sudo), or leave --loss out');
  }
  try {
    run(['-w', '-L', 'INPUT', '-n']);
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UsageError(missing
      ? '--loss needs iptables (e.g. apt-get install iptables), which was not found on PATH'
      : `--loss: iptables cannot list the INPUT chain here (${(e as Error).message.split('\n')[0]}); it needs CAP_NET_ADMIN`);
  }
}

/** One installed rule; remove() is idempotent and also runs at exit if it was not called. */
export class LossRule {
  private removed = false;
  private readonly forget: () => void;

  private constructor(private readonly port: number, private readonly probability: number, private readonly run: IptablesRunner) {
    this.forget = atExit(() => this.remove());
  }

  /** Installs the rule, or does nothing for a probability of 0 (returns undefined). */
  static install(port: number, probability: number, run: IptablesRunner = runIptables): LossRule | undefined {
    if (probability === 0) return undefined;
    const args = lossRuleArgs('-I', port, probability);
    run(args);
    return new LossRule(port, probability, run);
  }

  remove(): void {
    if (this.removed) return;
    this.removed = true;
    this.forget();
    try {
      this.run(lossRuleArgs('-D', this.port, this.probability));
    } catch (e) {
      process.stderr.write(`afcluster bench: could not remove the loss rule (iptables ${lossRuleArgs('-D', this.port, this.probability).join(' ')}): ${(e as Error).message}\n`);
    }
  }
}
